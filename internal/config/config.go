// Package config reads the function's configuration from environment variables, once,
// into a typed Config. Load reports every problem at once.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/cwlogs"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/logsource"
	"github.com/eks-unauthorized-access/detector/internal/store"
	"github.com/eks-unauthorized-access/detector/internal/suppress"
)

// Defaults of the optional variables.
const (
	DefaultRetention = store.DefaultRetention
	// DefaultRedeliveryHorizon is how long after its first delivery the template lets a
	// delivery come back: the failure queue keeps it 14 days (MessageRetentionPeriod
	// 1209600) after Lambda gave up, which is at most 6 hours (MaximumEventAgeInSeconds
	// 21600) after the first attempt.
	DefaultRedeliveryHorizon     = 14*24*time.Hour + 6*time.Hour
	DefaultClaimLease            = 30 * time.Second
	DefaultWriteConcurrency      = store.DefaultConcurrency
	DefaultMaxAggregatesPerAlert = 20
	// DefaultMaxGroups is ALERT_MAX_GROUPS when it is not set: alert groups per log group
	// and window that get an alert of their own before the others are folded into one.
	DefaultMaxGroups    = 20
	MaxWriteConcurrency = 64
	// DefaultEscalateAt are the thresholds of ESCALATE_AT when it is not set.
	DefaultEscalateAt = "10,100,1000"
)

// Config is the function's configuration.
type Config struct {
	// TableName is the DynamoDB table (TABLE_NAME, required).
	TableName string
	// TopicARN is the SNS topic alerts are published to (TOPIC_ARN, required).
	TopicARN string
	// AlertGroupBy decides which aggregates share one alert (ALERT_GROUP_BY).
	AlertGroupBy aggregate.GroupBy
	// Retention is how long items stay in the table after the later of their window's end
	// and their last write (RETENTION). It is at least RedeliveryHorizon.
	Retention time.Duration
	// RedeliveryHorizon is the longest time after which a delivery can come back
	// (REDELIVERY_HORIZON): the failure queue's message retention plus the maximum event
	// age of asynchronous invocations. A delivery that comes back later than Retention
	// after its items were last written would be counted and alerted again.
	RedeliveryHorizon time.Duration
	// MaxDecompressedBytes caps the inflated size of one invocation (MAX_DECOMPRESSED_BYTES).
	MaxDecompressedBytes int64
	// MatchMode selects the detection's match condition (MATCH_MODE).
	MatchMode detect.Mode
	// Suppressions are the inline suppression entries (SUPPRESSIONS): a suppression file
	// (JSON document) or bare CEL expressions one a line, named env-1, env-2, …
	Suppressions []suppress.Entry
	// SuppressionsParameter names an SSM parameter holding more suppressions, in the same
	// formats (SUPPRESSIONS_PARAMETER).
	SuppressionsParameter string
	// SuppressionsReloadInterval is the least time between two reads of the parameter
	// (SUPPRESSIONS_RELOAD_INTERVAL, default suppress.DefaultReloadInterval).
	SuppressionsReloadInterval time.Duration
	// ClaimLease is how long a claim on an alert group is held before another invocation
	// may take it over (CLAIM_LEASE).
	ClaimLease time.Duration
	// WriteConcurrency bounds the DynamoDB writes in flight (WRITE_CONCURRENCY).
	WriteConcurrency int
	// MaxAggregatesPerAlert bounds the aggregates listed in one alert
	// (MAX_AGGREGATES_PER_ALERT); the others are counted in totals only.
	MaxAggregatesPerAlert int
	// MaxRowsPerGroup bounds the aggregates (Splunk rows) stored per alert group and window
	// (MAX_ROWS_PER_GROUP); the events of further rows are counted in one overflow row.
	MaxRowsPerGroup int
	// MaxGroups is the flood guard (ALERT_MAX_GROUPS): per log group and window, the alert
	// groups that get an alert of their own; the others are folded into one "many users"
	// alert, published once.
	MaxGroups int
	// LogLevel is the minimum level logged: Lambda's AWS_LAMBDA_LOG_LEVEL (the template's
	// ApplicationLogLevel), else LOG_LEVEL.
	LogLevel slog.Level
	// Region is the AWS region (AWS_REGION, set by Lambda); copied into alerts.
	Region string
	// EscalateAt are the attempts in a window at which a group's alert is followed by an
	// update, ascending (ESCALATE_AT, comma-separated; DefaultEscalateAt when unset, "off"
	// for none).
	EscalateAt []int64
	// ReportHeartbeat makes the hourly report publish for a window without matches
	// (REPORT_HEARTBEAT, true or false; default false).
	ReportHeartbeat bool
	// Sources accepts the log groups (LOG_GROUP_PATTERNS) and log streams
	// (LOG_STREAM_PATTERNS) whose log events may raise alerts: comma-separated patterns in
	// which * stands for any run of characters but "/". The defaults are
	// logsource.DefaultLogGroupPatterns and logsource.DefaultLogStreamPatterns.
	Sources *logsource.Filter
	// SecurityHub imports each alert group as a Security Hub finding (SECURITY_HUB, on or
	// off; default off). It needs AccountID.
	SecurityHub bool
	// AccountID is the function's AWS account (ACCOUNT_ID): the account of the Security
	// Hub findings and of their product ARN.
	AccountID string
	// EventBusName is the EventBridge bus every alert is put on (EVENT_BUS_NAME, a name or
	// an ARN; "default" for the account's default bus); empty turns the output off.
	EventBusName string
}

// Load reads the configuration through getenv (os.Getenv in the function) and returns
// every problem found, joined.
func Load(getenv func(string) string) (Config, error) {
	l := loader{getenv: getenv}
	c := Config{
		TableName:                  l.required("TABLE_NAME"),
		TopicARN:                   l.topicARN("TOPIC_ARN"),
		AlertGroupBy:               l.groupBy("ALERT_GROUP_BY"),
		Retention:                  l.days("RETENTION", DefaultRetention, time.Hour),
		RedeliveryHorizon:          l.days("REDELIVERY_HORIZON", DefaultRedeliveryHorizon, 0),
		MaxDecompressedBytes:       int64(l.positive("MAX_DECOMPRESSED_BYTES", cwlogs.DefaultMaxDecompressedBytes, 1<<40)),
		MatchMode:                  l.matchMode("MATCH_MODE"),
		Suppressions:               l.suppressions("SUPPRESSIONS"),
		SuppressionsParameter:      strings.TrimSpace(getenv("SUPPRESSIONS_PARAMETER")),
		SuppressionsReloadInterval: l.duration("SUPPRESSIONS_RELOAD_INTERVAL", suppress.DefaultReloadInterval),
		ClaimLease:                 l.duration("CLAIM_LEASE", DefaultClaimLease),
		WriteConcurrency:           l.positive("WRITE_CONCURRENCY", DefaultWriteConcurrency, MaxWriteConcurrency),
		MaxAggregatesPerAlert:      l.positive("MAX_AGGREGATES_PER_ALERT", DefaultMaxAggregatesPerAlert, 1000),
		MaxRowsPerGroup:            l.positive("MAX_ROWS_PER_GROUP", store.DefaultMaxRowsPerGroup, store.MaxMaxRowsPerGroup),
		MaxGroups:                  l.positive("ALERT_MAX_GROUPS", DefaultMaxGroups, 100000),
		LogLevel:                   l.logLevel("LOG_LEVEL"),
		Region:                     strings.TrimSpace(getenv("AWS_REGION")),
		EscalateAt:                 l.thresholds("ESCALATE_AT"),
		ReportHeartbeat:            l.boolean("REPORT_HEARTBEAT"),
		Sources:                    l.sources("LOG_GROUP_PATTERNS", "LOG_STREAM_PATTERNS"),
		SecurityHub:                l.onOff("SECURITY_HUB"),
		AccountID:                  l.get("ACCOUNT_ID"),
		EventBusName:               l.get("EVENT_BUS_NAME"),
	}
	if c.SecurityHub && !isAccountID(c.AccountID) {
		l.fail("ACCOUNT_ID", "%q is not a 12-digit AWS account id, which SECURITY_HUB=on needs", c.AccountID)
	}
	if c.Retention > 0 && c.Retention < c.RedeliveryHorizon {
		l.fail("RETENTION", "%s is shorter than REDELIVERY_HORIZON %s (the failure queue's retention plus the maximum event age): "+
			"a delivery redriven that late would find its items expired and be counted and alerted again", c.Retention, c.RedeliveryHorizon)
	}
	if err := errors.Join(l.errs...); err != nil {
		return Config{}, fmt.Errorf("load configuration: %w", err)
	}
	return c, nil
}

// loader collects the problems found while reading variables.
type loader struct {
	getenv func(string) string
	errs   []error
}

func (l *loader) get(name string) string { return strings.TrimSpace(l.getenv(name)) }

func (l *loader) fail(name, format string, args ...any) {
	l.errs = append(l.errs, fmt.Errorf("%s: "+format, append([]any{name}, args...)...))
}

func (l *loader) required(name string) string {
	v := l.get(name)
	if v == "" {
		l.fail(name, "required")
	}
	return v
}

func (l *loader) topicARN(name string) string {
	v := l.required(name)
	if v != "" && !strings.HasPrefix(v, "arn:") {
		l.fail(name, "%q is not an ARN", v)
	}
	return v
}

// groupBy reads the alert grouping with aggregate.ParseGroupBy, the one parser replay uses
// too (case and spaces do not matter).
func (l *loader) groupBy(name string) aggregate.GroupBy {
	g, err := aggregate.ParseGroupBy(l.get(name))
	if err != nil {
		l.fail(name, "%v", err)
		return ""
	}
	return g
}

func (l *loader) matchMode(name string) detect.Mode {
	v := detect.Mode(strings.ToLower(l.get(name)))
	switch v {
	case "":
		return detect.ModeSeed
	case detect.ModeSeed, detect.ModeAuthz, detect.ModeBroad:
		return v
	}
	l.fail(name, "%q is not one of seed, authz, broad", v)
	return ""
}

// days accepts a Go duration ("360h") or a number of days ("15" or "15d"), from least to
// 3650 days.
func (l *loader) days(name string, def, least time.Duration) time.Duration {
	v := l.get(name)
	if v == "" {
		return def
	}
	var d time.Duration
	days, err := strconv.Atoi(strings.TrimSuffix(v, "d"))
	if err == nil {
		d = time.Duration(days) * 24 * time.Hour
	} else if d, err = time.ParseDuration(v); err != nil {
		l.fail(name, "%q is neither a duration (168h) nor a number of days (7d)", v)
		return 0
	}
	if d < least || d > 3650*24*time.Hour {
		l.fail(name, "%s is outside %s..3650d", d, least)
		return 0
	}
	return d
}

// suppressions reads a suppression file or bare expressions (see suppress.ParseEntries);
// the expressions are compiled later, with the parameter's.
func (l *loader) suppressions(name string) []suppress.Entry {
	entries, err := suppress.ParseEntries(l.getenv(name), "env")
	if err != nil {
		l.fail(name, "%v", err)
	}
	return entries
}

func (l *loader) duration(name string, def time.Duration) time.Duration {
	v := l.get(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		l.fail(name, "%q is not a positive duration (e.g. 2m)", v)
		return 0
	}
	return d
}

// positive reads an integer in 1..max.
func (l *loader) positive(name string, def, max int) int {
	v := l.get(name)
	if v == "" {
		return def
	}
	i, err := strconv.Atoi(v)
	if err != nil || i < 1 || i > max {
		l.fail(name, "%q is not an integer in 1..%d", v, max)
		return 0
	}
	return i
}

// sources reads the two pattern lists; an unset variable takes its default.
func (l *loader) sources(groupsVar, streamsVar string) *logsource.Filter {
	list := func(name string, def []string) []string {
		v := l.get(name)
		if v == "" {
			return def
		}
		var out []string
		for _, p := range strings.Split(v, ",") {
			out = append(out, strings.TrimSpace(p))
		}
		return out
	}
	groups := list(groupsVar, logsource.DefaultLogGroupPatterns)
	streams := list(streamsVar, logsource.DefaultLogStreamPatterns)
	f, err := logsource.New(groups, streams)
	if err != nil {
		l.fail(groupsVar+"/"+streamsVar, "%v", err)
		return nil
	}
	return f
}

// logLevel reads the platform's level first: Lambda sets AWS_LAMBDA_LOG_LEVEL from the
// function's ApplicationLogLevel (JSON log format), with TRACE and FATAL beyond slog's
// levels; name (LOG_LEVEL) is for runs outside Lambda.
func (l *loader) logLevel(name string) slog.Level {
	src, v := platformLogLevel, l.get(platformLogLevel)
	if v == "" {
		src, v = name, l.get(name)
	}
	switch strings.ToUpper(v) {
	case "":
		return slog.LevelInfo
	case "TRACE":
		return slog.LevelDebug
	case "FATAL":
		return slog.LevelError
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(v)); err != nil {
		l.fail(src, "%q is not one of debug, info, warn, error", v)
		return slog.LevelInfo
	}
	return level
}

// platformLogLevel is the variable Lambda sets from the function's ApplicationLogLevel.
const platformLogLevel = "AWS_LAMBDA_LOG_LEVEL"

// thresholds reads ascending positive integers separated by commas; "" means
// DefaultEscalateAt and "off" (or "none") none. The template turns an empty parameter
// into "off".
func (l *loader) thresholds(name string) []int64 {
	v := l.get(name)
	switch strings.ToLower(v) {
	case "":
		v = DefaultEscalateAt
	case "off", "none":
		return nil
	}
	var out []int64
	for _, f := range strings.Split(v, ",") {
		t, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err != nil || t < 1 {
			l.fail(name, "%q is not a positive integer", strings.TrimSpace(f))
			return nil
		}
		if len(out) > 0 && t <= out[len(out)-1] {
			l.fail(name, "%d does not exceed %d: list the thresholds in ascending order", t, out[len(out)-1])
			return nil
		}
		out = append(out, t)
	}
	return out
}

// onOff reads a switch: on or off (also true or false); off when unset.
func (l *loader) onOff(name string) bool {
	switch strings.ToLower(l.get(name)) {
	case "", "off", "false":
		return false
	case "on", "true":
		return true
	}
	l.fail(name, "%q is not on or off", l.get(name))
	return false
}

// isAccountID reports whether s is a 12-digit AWS account id.
func isAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func (l *loader) boolean(name string) bool {
	v := l.get(name)
	if v == "" {
		return false
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		l.fail(name, "%q is not true or false", v)
	}
	return b
}
