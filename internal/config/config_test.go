package config_test

import (
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/config"
	"github.com/eks-unauthorized-access/detector/internal/cwlogs"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/logsource"
	"github.com/eks-unauthorized-access/detector/internal/suppress"
)

const topic = "arn:aws:sns:eu-west-1:123456789012:eks-unauthorized-access"

func env(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

func TestLoad(t *testing.T) {
	defaults := config.Config{
		TableName:                  "detector",
		TopicARN:                   topic,
		AlertGroupBy:               aggregate.GroupByUser,
		Retention:                  15 * 24 * time.Hour,
		RedeliveryHorizon:          342 * time.Hour,
		MaxDecompressedBytes:       cwlogs.DefaultMaxDecompressedBytes,
		MatchMode:                  detect.ModeSeed,
		ClaimLease:                 30 * time.Second,
		WriteConcurrency:           8,
		SuppressionsReloadInterval: time.Minute,
		MaxAggregatesPerAlert:      20,
		MaxRowsPerGroup:            100,
		MaxGroups:                  20,
		LogLevel:                   slog.LevelInfo,
		Region:                     "eu-west-1",
		EscalateAt:                 []int64{10, 100, 1000},
		Sources:                    logsource.Default(),
	}
	base := map[string]string{"TABLE_NAME": "detector", "TOPIC_ARN": topic, "AWS_REGION": "eu-west-1"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name string
		vars map[string]string
		edit func(*config.Config)
	}{
		{"defaults", base, func(*config.Config) {}},
		{"group by user and source IP", with(map[string]string{"ALERT_GROUP_BY": "user, src_ip"}), func(c *config.Config) { c.AlertGroupBy = aggregate.GroupByUserSrcIP }},
		{"group by aggregate", with(map[string]string{"ALERT_GROUP_BY": "aggregate"}), func(c *config.Config) { c.AlertGroupBy = aggregate.GroupByAggregate }},
		// The same parser as replay: case and spaces do not matter.
		{"Lambda's log level", with(map[string]string{"AWS_LAMBDA_LOG_LEVEL": "WARN", "LOG_LEVEL": "debug"}), func(c *config.Config) { c.LogLevel = slog.LevelWarn }},
		{"Lambda's TRACE", with(map[string]string{"AWS_LAMBDA_LOG_LEVEL": "TRACE"}), func(c *config.Config) { c.LogLevel = slog.LevelDebug }},
		{"group by User", with(map[string]string{"ALERT_GROUP_BY": "User"}), func(c *config.Config) { c.AlertGroupBy = aggregate.GroupByUser }},
		{"group by USER, SRC_IP", with(map[string]string{"ALERT_GROUP_BY": " USER, SRC_IP "}), func(c *config.Config) { c.AlertGroupBy = aggregate.GroupByUserSrcIP }},
		{"Security Hub on", with(map[string]string{"SECURITY_HUB": "on", "ACCOUNT_ID": "111122223333"}), func(c *config.Config) { c.SecurityHub, c.AccountID = true, "111122223333" }},
		{"Security Hub off", with(map[string]string{"SECURITY_HUB": "off"}), func(c *config.Config) {}},
		{"event bus", with(map[string]string{"EVENT_BUS_NAME": " security "}), func(c *config.Config) { c.EventBusName = "security" }},
		{"escalation off", with(map[string]string{"ESCALATE_AT": "off"}), func(c *config.Config) { c.EscalateAt = nil }},
		{"escalation thresholds", with(map[string]string{"ESCALATE_AT": " 5, 50 "}), func(c *config.Config) { c.EscalateAt = []int64{5, 50} }},
		{"retention as duration", with(map[string]string{"RETENTION": "360h"}), func(c *config.Config) { c.Retention = 360 * time.Hour }},
		{"retention in days", with(map[string]string{"RETENTION": "30"}), func(c *config.Config) { c.Retention = 30 * 24 * time.Hour }},
		{"retention in days with unit", with(map[string]string{"RETENTION": "400d"}), func(c *config.Config) { c.Retention = 400 * 24 * time.Hour }},
		{"retention equal to the horizon", with(map[string]string{"RETENTION": "342h"}), func(c *config.Config) { c.Retention = 342 * time.Hour }},
		{"short retention with a short horizon", with(map[string]string{"RETENTION": "36h", "REDELIVERY_HORIZON": "6h"}), func(c *config.Config) {
			c.Retention = 36 * time.Hour
			c.RedeliveryHorizon = 6 * time.Hour
		}},
		{"no failure destination", with(map[string]string{"RETENTION": "1h", "REDELIVERY_HORIZON": "0"}), func(c *config.Config) {
			c.Retention = time.Hour
			c.RedeliveryHorizon = 0
		}},
		{"everything set", with(map[string]string{
			"MAX_DECOMPRESSED_BYTES":       "1048576",
			"MATCH_MODE":                   "authz",
			"SUPPRESSIONS":                 "# CI deployer\nuser == \"system:serviceaccount:ci:deployer\"\n\n  src_ip.startsWith(\"10.\")  \n",
			"SUPPRESSIONS_PARAMETER":       "/detector/suppressions",
			"SUPPRESSIONS_RELOAD_INTERVAL": "5m",
			"CLAIM_LEASE":                  "5m",
			"WRITE_CONCURRENCY":            "16",
			"MAX_AGGREGATES_PER_ALERT":     "50",
			"MAX_ROWS_PER_GROUP":           "500",
			"ALERT_MAX_GROUPS":             "5",
			"LOG_LEVEL":                    "debug",
		}), func(c *config.Config) {
			c.MaxDecompressedBytes = 1 << 20
			c.MatchMode = detect.ModeAuthz
			c.Suppressions = suppress.Named("env", []string{`user == "system:serviceaccount:ci:deployer"`, `src_ip.startsWith("10.")`})
			c.SuppressionsParameter = "/detector/suppressions"
			c.SuppressionsReloadInterval = 5 * time.Minute
			c.ClaimLease = 5 * time.Minute
			c.WriteConcurrency = 16
			c.MaxAggregatesPerAlert = 50
			c.MaxRowsPerGroup = 500
			c.MaxGroups = 5
			c.LogLevel = slog.LevelDebug
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := config.Load(env(tc.vars))
			if err != nil {
				t.Fatal(err)
			}
			want := defaults
			tc.edit(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Load =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

// TestRetentionCoversRedelivery: a retention shorter than the time a delivery can come
// back is refused at start-up, since the redriven delivery would be counted again.
func TestRetentionCoversRedelivery(t *testing.T) {
	for _, tc := range []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"RETENTION": "168h"}, "RETENTION: 168h0m0s is shorter than REDELIVERY_HORIZON 342h0m0s"},
		{map[string]string{"RETENTION": "14d"}, "RETENTION: 336h0m0s is shorter than REDELIVERY_HORIZON 342h0m0s"},
		{map[string]string{"RETENTION": "20d", "REDELIVERY_HORIZON": "21d"}, "RETENTION: 480h0m0s is shorter than REDELIVERY_HORIZON 504h0m0s"},
		{map[string]string{"REDELIVERY_HORIZON": "16d"}, "RETENTION: 360h0m0s is shorter than REDELIVERY_HORIZON 384h0m0s"},
		{map[string]string{"RETENTION": "0h"}, "RETENTION: 0s is outside 1h0m0s..3650d"},
		{map[string]string{"REDELIVERY_HORIZON": "soon"}, "REDELIVERY_HORIZON: \"soon\" is neither"},
	} {
		vars := map[string]string{"TABLE_NAME": "detector", "TOPIC_ARN": topic}
		for k, v := range tc.vars {
			vars[k] = v
		}
		_, err := config.Load(env(vars))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%v) = %v, want an error containing %q", tc.vars, err, tc.want)
		}
	}
}

// TestSecurityHubNeedsAccount: the findings' account and product ARN come from ACCOUNT_ID.
func TestSecurityHubNeedsAccount(t *testing.T) {
	for _, account := range []string{"", "12345", "1111222233334", "11112222333x"} {
		_, err := config.Load(env(map[string]string{"TABLE_NAME": "t", "TOPIC_ARN": "arn:aws:sns:us-east-1:111122223333:t", "SECURITY_HUB": "on", "ACCOUNT_ID": account}))
		if err == nil || !strings.Contains(err.Error(), "ACCOUNT_ID") {
			t.Errorf("ACCOUNT_ID %q: error %v, want one naming ACCOUNT_ID", account, err)
		}
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	_, err := config.Load(env(map[string]string{
		"TOPIC_ARN":                    "eks-alerts",
		"ALERT_GROUP_BY":               "cluster",
		"RETENTION":                    "forever",
		"MAX_DECOMPRESSED_BYTES":       "-1",
		"MATCH_MODE":                   "fuzzy",
		"CLAIM_LEASE":                  "0s",
		"WRITE_CONCURRENCY":            "1000",
		"MAX_AGGREGATES_PER_ALERT":     "many",
		"MAX_ROWS_PER_GROUP":           "5000",
		"LOG_LEVEL":                    "loud",
		"ESCALATE_AT":                  "100,10",
		"SUPPRESSIONS":                 `{"suppressions": [{"name": "a b", "expression": "true", "owner": "me"}]}`,
		"SUPPRESSIONS_RELOAD_INTERVAL": "often",
		"SECURITY_HUB":                 "maybe",
	}))
	if err == nil {
		t.Fatal("Load succeeded")
	}
	for _, name := range []string{
		"TABLE_NAME: required", "TOPIC_ARN", "ALERT_GROUP_BY", "RETENTION", "MAX_DECOMPRESSED_BYTES",
		"MATCH_MODE", "CLAIM_LEASE", "WRITE_CONCURRENCY", "MAX_AGGREGATES_PER_ALERT", "MAX_ROWS_PER_GROUP", "LOG_LEVEL",
		"ESCALATE_AT: 10 does not exceed 100",
		"SUPPRESSIONS: suppression 1: reason is required", `name "a b" is not`, "SUPPRESSIONS_RELOAD_INTERVAL",
		"SECURITY_HUB: \"maybe\" is not on or off",
	} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not mention %s:\n%v", name, err)
		}
	}
}
