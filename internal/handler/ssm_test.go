package handler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/eks-unauthorized-access/detector/infra/local"
	"github.com/eks-unauthorized-access/detector/infra/local/localtest"
	"github.com/eks-unauthorized-access/detector/internal/alert"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/handler"
	"github.com/eks-unauthorized-access/detector/internal/notify"
	"github.com/eks-unauthorized-access/detector/internal/pipeline"
	"github.com/eks-unauthorized-access/detector/internal/store"
	"github.com/eks-unauthorized-access/detector/internal/suppress"
)

// TestSuppressionsParameter loads the suppressions as the function does at start-up,
// from a String and from a SecureString parameter in moto's Parameter Store, and runs a
// delivery through the real pipeline, DynamoDB Local and moto's SNS: the user the
// parameter names is neither stored nor alerted, and the other one is.
func TestSuppressionsParameter(t *testing.T) {
	ctx := context.Background()
	paramTypes := []ssmtypes.ParameterType{ssmtypes.ParameterTypeString, ssmtypes.ParameterTypeSecureString}
	topics := make([]string, len(paramTypes))
	for i, typ := range paramTypes {
		topics[i] = "ssm-" + string(typ)
	}
	db, moto := localtest.DynamoDBForTest(t), localtest.MotoForTest(t, topics...)
	event := delivery(t, []string{
		auditLine(t, "ci-bot", "192.0.2.10", time.Minute, nil),
		auditLine(t, "mallory", "203.0.113.66", 2*time.Minute, nil),
	}, nil)

	for i, typ := range paramTypes {
		t.Run(string(typ), func(t *testing.T) {
			name := "/detector/suppressions-" + string(typ)
			_, err := moto.SSMClient().PutParameter(ctx, &ssm.PutParameterInput{
				Name: aws.String(name), Type: typ,
				Value: aws.String("# the CI robot creates what it may not, by design\nuser == \"ci-bot\" && src_ip == \"192.0.2.10\"\n"),
			})
			if err != nil {
				t.Fatal(err)
			}
			filter, err := suppress.Load(ctx, moto.SSMClient(), nil, name)
			if err != nil {
				t.Fatal(err)
			}
			r := newRig(t, db.Endpoint, moto, topics[i])
			r.opts.Suppressor = filter
			if err := invokeWith(r.handler(nil, nil), event, "req-"+string(typ), 30*time.Second); err != nil {
				t.Fatal(err)
			}
			if got, want := alertUsers(r.notifications(t)), []string{"mallory"}; !slices.Equal(got, want) {
				t.Errorf("alerts for %q, want %q", got, want)
			}
			var stored []string
			for k, n := range r.counts(t, "ci-bot", "mallory") {
				user, _, _ := strings.Cut(k, " ")
				stored = append(stored, fmt.Sprintf("%s=%d", user, n))
			}
			if want := []string{"mallory=1"}; !slices.Equal(stored, want) {
				t.Errorf("aggregates stored: %q, want %q", stored, want)
			}
			sums := r.summaries(t)
			if len(sums) != 1 || sums[0]["matches"] != 2.0 || sums[0]["suppressed"] != 1.0 {
				t.Errorf("summary = %v, want 2 matches, 1 suppressed", sums)
			}
		})
	}
}

// suppressionFile is a suppression file as an operator writes it: an enforced entry, a
// dry-run one, and one with an expiry.
func suppressionFile(expires time.Time, entries ...string) string {
	all := map[string]string{
		"ci-bot":      `{"name": "ci-bot", "expression": "user == \"ci-bot\"", "owner": "platform", "reason": "CI by design"}`,
		"try-mallory": `{"name": "try-mallory", "expression": "user == \"mallory\"", "owner": "secops", "reason": "trial", "dryRun": true}`,
		"mallory":     `{"name": "mallory", "expression": "user == \"mallory\"", "owner": "secops", "reason": "confirmed"}`,
		"temp-eve":    `{"name": "temp-eve", "expression": "user == \"eve\"", "owner": "secops", "reason": "migration", "expires": "` + expires.Format(time.RFC3339) + `"}`,
		"broken":      `{"name": "broken", "expression": "user ==", "owner": "secops", "reason": "typo"}`,
	}
	parts := make([]string, len(entries))
	for i, e := range entries {
		parts[i] = all[e]
	}
	return `{"suppressions": [` + strings.Join(parts, ",") + `]}`
}

// TestSuppressionsReloaded runs deliveries through one handler (the real pipeline,
// DynamoDB Local, moto's SNS) whose suppressions come from moto's Parameter Store, changing
// the parameter and the clock between them, without building a new handler:
//
//  1. an enforced entry suppresses, a dry-run entry suppresses nothing and tags the alert,
//     and the hit counts are in the EMF records and the summary line;
//  2. past its expiry an entry stops suppressing and is reported; a new version of the
//     parameter applies after the reload interval;
//  3. a version that does not compile is rejected: the last good set stays in use, and
//     the metric the alarm watches says so.
func TestSuppressionsReloaded(t *testing.T) {
	ctx := context.Background()
	db, moto := localtest.DynamoDBForTest(t), localtest.MotoForTest(t, "reload")
	const name = "/detector/reloaded-suppressions"
	now := hourNow.Add(10 * time.Minute)
	expires := now.Add(time.Hour)
	put := func(value string, overwrite bool) {
		t.Helper()
		_, err := moto.SSMClient().PutParameter(ctx, &ssm.PutParameterInput{
			Name: aws.String(name), Type: ssmtypes.ParameterTypeString, Value: aws.String(value), Overwrite: aws.Bool(overwrite),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	put(suppressionFile(expires, "ci-bot", "try-mallory", "temp-eve"), false)
	reloader, err := suppress.NewReloader(ctx, moto.SSMClient(), nil, name,
		suppress.ReloadOptions{Interval: time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, db.Endpoint, moto, "reload")
	r.opts.Suppressor = reloader
	var emf bytes.Buffer
	h := handler.New(handler.Options{
		Processor:    pipeline.New(r.opts),
		Store:        store.New(r.client(nil), store.Options{Table: r.table}),
		Publisher:    notify.New(moto.SNSClient(), moto.TopicARN("reload")),
		Rule:         detect.UnauthorizedAccess,
		Alert:        alert.Options{Region: local.Region},
		ClaimLease:   time.Minute,
		Logger:       handler.NewLogger(r.log, slog.LevelInfo),
		Metrics:      &emf,
		FunctionName: "detector",
		Suppressions: reloader,
	})
	deliver := func(n int, users ...string) {
		t.Helper()
		lines, ids := make([]string, len(users)), make([]string, len(users))
		for i, u := range users {
			lines[i] = auditLine(t, u, "203.0.113.9", time.Duration(n)*time.Minute+time.Duration(i)*time.Second, nil)
			ids[i] = fmt.Sprintf("%055d%d", n*10+i, n)
		}
		if err := invokeWith(h, delivery(t, lines, ids), fmt.Sprintf("req-%d", n), 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	records := func() (main map[string]any, perEntry map[string]map[string]any) {
		t.Helper()
		perEntry = map[string]map[string]any{}
		for _, line := range strings.Split(strings.TrimSpace(emf.String()), "\n") {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("EMF line %q: %v", line, err)
			}
			if name, ok := rec["Suppression"].(string); ok {
				perEntry[name] = rec
			} else {
				main = rec
			}
		}
		emf.Reset()
		return main, perEntry
	}

	// 1. Enforced, dry-run and temporary entries at work.
	deliver(1, "ci-bot", "mallory", "eve")
	ns := r.notifications(t)
	if got := alertUsers(ns); !slices.Equal(got, []string{"mallory"}) {
		t.Fatalf("alerts for %q, want mallory only (the dry-run entry suppresses nothing)", got)
	}
	var a alert.Alert
	if err := json.Unmarshal([]byte(ns[0].Message), &a); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.WouldSuppressBy, []string{"try-mallory"}) {
		t.Errorf("alert wouldSuppressBy = %q, want [try-mallory]", a.WouldSuppressBy)
	}
	main, perEntry := records()
	if main["Suppressed"] != 2.0 || main["SuppressionsExpired"] != 0.0 || main["SuppressionUpdateRejected"] != 0.0 {
		t.Errorf("EMF record %v, want 2 suppressed, none expired or rejected", main)
	}
	for entry, want := range map[string][2]float64{"ci-bot": {1, 0}, "temp-eve": {1, 0}, "try-mallory": {0, 1}} {
		rec := perEntry[entry]
		if rec["SuppressionHits"] != want[0] || rec["SuppressionDryRunHits"] != want[1] || rec["FunctionName"] != "detector" {
			t.Errorf("EMF record of %s = %v, want hits %v, dry-run hits %v", entry, rec, want[0], want[1])
		}
	}
	sums := r.summaries(t)
	last := sums[len(sums)-1]
	if fmt.Sprint(last["suppressedBy"]) != "map[ci-bot:1 temp-eve:1]" || fmt.Sprint(last["wouldSuppress"]) != "map[try-mallory:1]" || last["suppressionsVersion"] != 1.0 {
		t.Errorf("summary %v, want hits by name and version 1", last)
	}

	// 2. Past eve's expiry, with mallory's entry enforced in a new version.
	put(suppressionFile(expires, "ci-bot", "mallory", "temp-eve"), true)
	now = expires
	deliver(2, "ci-bot", "mallory", "eve")
	if got := alertUsers(r.notifications(t)); !slices.Equal(got, []string{"eve"}) {
		t.Errorf("alerts for %q after the reload and eve's expiry, want eve only", got)
	}
	main, perEntry = records()
	if main["SuppressionsExpired"] != 1.0 || perEntry["mallory"]["SuppressionHits"] != 1.0 || perEntry["temp-eve"] != nil {
		t.Errorf("EMF: %v, per entry %v; want one expired entry, mallory's hit, none for temp-eve", main, perEntry)
	}
	logs := r.log.String()
	for _, want := range []string{`"message":"suppressions updated","parameterVersion":2`, `"message":"suppression expired`, `"suppression":"temp-eve"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}

	// 3. A broken update keeps the last good set.
	put(suppressionFile(expires, "ci-bot", "broken"), true)
	now = now.Add(time.Minute)
	deliver(3, "mallory", "ci-bot")
	if got := alertUsers(r.notifications(t)); len(got) != 0 {
		t.Errorf("alerts for %q after a broken update, want none (version 2 still in use)", got)
	}
	main, _ = records()
	if main["SuppressionUpdateRejected"] != 1.0 || main["Suppressed"] != 2.0 {
		t.Errorf("EMF record %v, want the update rejected and 2 suppressed", main)
	}
	sums = r.summaries(t)
	last = sums[len(sums)-1]
	if last["suppressionsVersion"] != 2.0 || last["suppressionsRejectedVersion"] != 3.0 {
		t.Errorf("summary %v, want version 2 in use, 3 rejected", last)
	}
	if !strings.Contains(r.log.String(), `"message":"suppressions update rejected; the previous set stays in use"`) {
		t.Errorf("log lacks the rejection:\n%s", r.log.String())
	}
}
