package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eks-unauthorized-access/detector/bench/workload"
	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/alert"
	"github.com/eks-unauthorized-access/detector/internal/golden"
	"github.com/eks-unauthorized-access/detector/internal/version"
)

func TestReplayGolden(t *testing.T) {
	raw, _ := filepath.Glob("../../events/raw/*.jsonl")
	all, _ := filepath.Glob("../../events/*-*.json") // the Lambda events, not env.json
	// Leave out the negative samples of the Kinesis path: a corrupt record (which replay
	// refuses, as the function fails that record) and a forged log group (which the
	// function rejects by its log group patterns; replay reads any log group).
	events := slices.DeleteFunc(all, func(name string) bool {
		return strings.Contains(name, "corrupt") || strings.Contains(name, "forged")
	})
	if len(raw) == 0 || len(events) == 0 {
		t.Fatal("no sample inputs in events/")
	}
	for _, tc := range []struct {
		golden  string
		args    []string
		stdin   string
		exit    int
		summary string   // expected in the stderr summary
		errs    []string // expected FILE:LINE prefixes on stderr, in order
	}{
		{golden: "raw-splunk", args: append([]string{"--format", "splunk"}, raw...),
			summary: "21 audit events, 17 matches"},
		{golden: "raw-authz-splunk", args: append([]string{"--match-mode", "authz"}, raw...),
			summary: "21 audit events, 16 matches"},
		// By default replay runs the function's path: lines the prefilter rejects are not
		// parsed; --parse-all parses and counts every line.
		{golden: "events-json", args: append([]string{"--format", "json"}, events...),
			summary: "8 payloads (1 control), 30 log events, 23 audit events, 23 matches (0 suppressed, 0 duplicate log events)"},
		{golden: "events-json", args: append([]string{"--format", "json", "--parse-all"}, events...),
			summary: "8 payloads (1 control), 30 log events, 27 audit events, 23 matches (0 suppressed, 0 duplicate log events), 3 log events skipped (not_audit=1 not_json=1 truncated=1)"},
		{golden: "events-group-by-user-src-ip", args: []string{"--format", "json", "--group-by", "user,src_ip", "../../events/cloudwatch-iam-user.json"},
			summary: "4 matches"},
		{golden: "raw-alerts", args: append([]string{"--format", "alerts", "--region", "eu-west-1", "--now", "2026-11-24T10:00:00Z"}, raw...),
			summary: "21 audit events, 17 matches (0 suppressed"},
		// The hourly reports of the sample windows, as the report function publishes them.
		{golden: "raw-report", args: append([]string{"--format", "report", "--now", "2026-11-24T10:10:00Z"}, raw...),
			summary: "21 audit events, 17 matches (0 suppressed"},
		// EKS user.extra: an assumed role behind a proxy (five requests, one peer, five
		// X-Forwarded-For values: one alert) and a service-account token used from a pod.
		{golden: "identity-alerts", args: []string{"--format", "alerts", "--group-by", "user,src_ip", "--region", "eu-west-1", "--now", "2026-11-24T12:10:00Z", "testdata/identity.jsonl"},
			summary: "6 audit events, 6 matches"},
		{golden: "raw-suppressed-splunk", args: append([]string{"--suppress", `user == "alice"`, "--suppress", `user.startsWith("system:serviceaccount:ci:")`}, raw...),
			summary: "17 matches (13 suppressed"},
		{golden: "stdin-splunk", args: nil, stdin: mustRead(t, "../../events/cloudwatch-mixed-batch.json"),
			summary: "2 matches"},
		{golden: "bad-input", args: []string{"--parse-all", "testdata/bad-input.jsonl"}, exit: 1,
			summary: "3 audit events, 3 matches (0 suppressed, 1 duplicate log events), 1 log events skipped (not_json=1), 5 input lines not decoded",
			errs: []string{"testdata/bad-input.jsonl:2: not JSON", "testdata/bad-input.jsonl:4: not a JSON object",
				"testdata/bad-input.jsonl:5: parse audit line: not an audit event", "testdata/bad-input.jsonl:6: decode lambda event:",
				"testdata/bad-input.jsonl:8: parse subscription message:"}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tc.args, strings.NewReader(tc.stdin), &stdout, &stderr); code != tc.exit {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.exit, stderr.String())
			}
			lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
			if got := lines[len(lines)-1]; !strings.Contains(got, tc.summary) {
				t.Errorf("summary %q lacks %q", got, tc.summary)
			}
			if len(lines)-1 != len(tc.errs) {
				t.Fatalf("stderr has %d error lines, want %d:\n%s", len(lines)-1, len(tc.errs), stderr.String())
			}
			for i, prefix := range tc.errs {
				if !strings.HasPrefix(lines[i], prefix) {
					t.Errorf("stderr line %q, want prefix %q", lines[i], prefix)
				}
			}
			file := filepath.Join("testdata", tc.golden+".golden")
			golden.Check(t, file, stdout.Bytes())
		})
	}
}

func TestReplayUsage(t *testing.T) {
	for _, args := range [][]string{{"--format", "xml"}, {"--match-mode", "strict"}, {"--group-by", "cluster"}, {"--nope"},
		{"--suppress", "user =="}, {"--suppress", "user == 1"}, {"--now", "yesterday"}, {"--suppress-file", "testdata/missing"}} {
		var stdout, stderr bytes.Buffer
		if code := run(args, strings.NewReader(""), &stdout, &stderr); code != exitUsage || stdout.Len() != 0 {
			t.Errorf("%v: exit %d, stdout %q", args, code, stdout.String())
		}
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestReplayVersion(t *testing.T) {
	var out, errOut strings.Builder
	if code := run([]string{"--version"}, strings.NewReader(""), &out, &errOut); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if got, want := out.String(), "replay "+version.Version+"\n"; got != want || version.Version == "" {
		t.Errorf("replay --version = %q, want %q", got, want)
	}
}

// TestReplaySuppressionErrors: an expression that fails at run time keeps the match and
// replay says so, naming the expression (the function only counts such failures).
func TestReplaySuppressionErrors(t *testing.T) {
	var out, errOut strings.Builder
	code := run([]string{"--suppress", `int(user) > 0`, "../../events/raw/anonymous-forbidden.jsonl"}, strings.NewReader(""), &out, &errOut)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), "suppression evaluations failed") {
		t.Errorf("stderr does not report the failed evaluations:\n%s", errOut.String())
	}
	if !strings.Contains(out.String(), "system:anonymous") {
		t.Errorf("the matches were not kept:\n%s", out.String())
	}
}

// TestReplayReportRowsAreTheSplunkRows: on the same input, the rows of each window's
// report (every part, merged over clusters) are exactly the --format splunk rows of that
// window, multi-value fields expanded; each part fits in one SNS message and carries the
// seed's risk fields on every row. The input spans several windows and clusters, and a
// generated file makes windows large enough to be split into parts.
func TestReplayReportRowsAreTheSplunkRows(t *testing.T) {
	raw, _ := filepath.Glob("../../events/raw/*.jsonl")
	inputs := append(raw, "../../events/cloudwatch-iam-user.json", "../../events/kinesis-multi-cluster.json", bulkAuditLines(t, 3, 400))
	runFormat := func(f string) []string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if code := run(append([]string{"--format", f, "--now", "2026-11-24T12:00:00Z"}, inputs...), strings.NewReader(""), &stdout, &stderr); code != exitOK {
			t.Fatalf("--format %s: exit %d: %s", f, code, stderr.String())
		}
		return strings.Split(strings.TrimSpace(stdout.String()), "\n")
	}
	// The splunk rows, by window.
	want := map[string][]aggregate.Row{}
	for _, line := range runFormat("splunk") {
		var r aggregate.Row
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		want[r.Window] = append(want[r.Window], r)
	}
	// The reports' rows, by window, merged over clusters and parts.
	merged := map[string]map[aggregate.Row]int64{}
	parts := map[string][]int{}
	attempts := map[string]int64{}
	for _, line := range runFormat("report") {
		var m alert.Message
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		if m.Size() > alert.MaxPublishBytes {
			t.Errorf("a report part is %d bytes", m.Size())
		}
		var body map[string]string
		if err := json.Unmarshal([]byte(m.Message), &body); err != nil {
			t.Fatal(err)
		}
		var r alert.Report
		if err := json.Unmarshal([]byte(body["sqs"]), &r); err != nil {
			t.Fatal(err)
		}
		w := r.Window.Start.Format(time.RFC3339)
		if r.Kind != alert.KindReport || m.MessageAttributes["alertKind"].StringValue != "report" || r.ID != m.MessageAttributes["alertId"].StringValue {
			t.Errorf("window %s part %d: kind %q, attributes %v", w, r.Part, r.Kind, m.MessageAttributes)
		}
		parts[w] = append(parts[w], r.Part)
		if len(parts[w]) == 1 {
			attempts[w] = r.Attempts
		}
		if merged[w] == nil {
			merged[w] = map[aggregate.Row]int64{}
		}
		for _, row := range r.RowsInPart {
			if row.RiskScore != 49 || row.RiskObject.Field != "user" || row.RiskObject.Value != row.User ||
				row.ThreatObject.Field != "src_ip" || row.ThreatObject.Value != row.SrcIP ||
				row.RiskMessage != "Unauthorized access to Kubernetes from user "+row.User {
				t.Fatalf("risk fields of %+v", row)
			}
			c := row.Row
			n := c.Count
			c.Count = 0
			merged[w][c] += n
		}
	}
	if len(want) < 3 || len(merged) != len(want) {
		t.Fatalf("reports for %d windows, splunk rows for %d windows", len(merged), len(want))
	}
	split := false
	for w, rows := range want {
		var got []aggregate.Row
		for r, n := range merged[w] {
			r.Count = n
			got = append(got, r)
		}
		var sum int64
		for _, r := range rows {
			sum += r.Count
		}
		slices.SortFunc(got, compareRows)
		slices.SortFunc(rows, compareRows)
		if !slices.Equal(got, rows) {
			t.Errorf("window %s: %d report rows, %d splunk rows, or they differ", w, len(got), len(rows))
		}
		if attempts[w] != sum {
			t.Errorf("window %s: report says %d attempts, the splunk rows count %d", w, attempts[w], sum)
		}
		for i, p := range parts[w] {
			if p != i+1 {
				t.Errorf("window %s: parts %v, want 1..%d in order", w, parts[w], len(parts[w]))
				break
			}
		}
		split = split || len(parts[w]) > 1
	}
	if !split {
		t.Error("no window's report was split into parts")
	}
}

func compareRows(x, y aggregate.Row) int {
	a, _ := json.Marshal(x)
	b, _ := json.Marshal(y)
	return bytes.Compare(a, b)
}

// bulkAuditLines writes perWindow denied creates in each of windows hours (from a fixed
// hour), each from two source IPs and in two groups (four Splunk rows each), and returns
// the file's path.
func bulkAuditLines(t *testing.T, windows, perWindow int) string {
	t.Helper()
	start := time.Date(2030, 5, 6, 10, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for w := range windows {
		for i := range perWindow {
			at := start.Add(time.Duration(w)*time.Hour + time.Duration(i)*time.Second)
			err := enc.Encode(map[string]any{
				"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": fmt.Sprintf("bulk-%d-%d", w, i),
				"stage": "ResponseComplete", "requestURI": fmt.Sprintf("/api/v1/namespaces/ns-%d/secrets", i%9), "verb": "create",
				"user":      map[string]any{"username": fmt.Sprintf("scanner-%d", i%5), "uid": "uid-1", "groups": []string{"system:authenticated", "team-x"}},
				"sourceIPs": []string{fmt.Sprintf("198.51.100.%d", i%50), "10.0.0.1"}, "userAgent": "scan/1.0",
				"objectRef":                map[string]any{"resource": "secrets", "namespace": fmt.Sprintf("ns-%d", i%9), "apiVersion": "v1"},
				"responseStatus":           map[string]any{"metadata": map[string]any{}, "status": "Failure", "message": "secrets is forbidden", "reason": "Forbidden", "code": 403},
				"requestReceivedTimestamp": at.Format(time.RFC3339Nano), "stageTimestamp": at.Format(time.RFC3339Nano),
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	name := filepath.Join(t.TempDir(), "bulk.jsonl")
	if err := os.WriteFile(name, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

// TestSuppressFileReview: --suppress-file applies the file as the function would at --now
// (an expired entry and a dry-run entry suppress nothing) and reviews each entry: how many
// matches it suppresses on its own, with the first examples (user, source IPs, time).
func TestSuppressFileReview(t *testing.T) {
	raw, err := filepath.Glob("../../events/raw/*.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	review := func(now string) (string, string) {
		var out, errOut bytes.Buffer
		args := append([]string{"--suppress-file", "testdata/review.suppressions.json", "--now", now}, raw...)
		if code := run(args, strings.NewReader(""), &out, &errOut); code != exitOK {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
		return out.String(), errOut.String()
	}
	_, before := review("2026-11-30T10:00:00Z")
	for _, want := range []string{
		"17 matches (12 suppressed",
		`suppression alice (expires 2026-12-01T00:00:00Z, owner "secops"): would suppress 12 matches on its own` + "\n" + `  user="alice" src_ip=`,
		`suppression ci (dry run, owner "platform"): would suppress 1 matches on its own` + "\n" + `  user="system:serviceaccount:ci:`,
		`suppression nobody (owner "secops"): would suppress 0 matches on its own` + "\n",
	} {
		if !strings.Contains(before, want) {
			t.Errorf("stderr lacks %q:\n%s", want, before)
		}
	}
	if n := strings.Count(before, `  user="alice"`); n != maxExamples {
		t.Errorf("%d examples for alice, want %d", n, maxExamples)
	}
	// docs/suppressions.md shows this review in its operator workflow.
	doc, err := os.ReadFile("../../docs/suppressions.md")
	if err != nil {
		t.Fatal(err)
	}
	if indented := "   " + strings.ReplaceAll(strings.TrimRight(before, "\n"), "\n", "\n   ") + "\n"; !strings.Contains(string(doc), indented) {
		t.Errorf("docs/suppressions.md does not show this review:\n%s", indented)
	}
	// On and after its expiry date the entry suppresses nothing; the review still shows it.
	_, after := review("2026-12-01T00:00:00Z")
	if !strings.Contains(after, "17 matches (0 suppressed") || !strings.Contains(after, "suppression alice (expired 2026-12-01T00:00:00Z") {
		t.Errorf("after the expiry:\n%s", after)
	}
	for _, secret := range []string{"requestObject", "requestURI", "forbidden:"} {
		if strings.Contains(before, secret) {
			t.Errorf("the review shows %s:\n%s", secret, before)
		}
	}
}

// TestReplayIdentity checks the alerts of testdata/identity.jsonl (golden identity-alerts):
// one alert for the five requests through one peer, showing the role, the session as the
// caller's choice, the access key and its CloudTrail link; one for the service-account
// token, showing its pod and node; and nothing of user.extra but the listed identifiers.
func TestReplayIdentity(t *testing.T) {
	var stdout, stderr bytes.Buffer
	args := []string{"--format", "alerts", "--group-by", "user,src_ip", "--region", "eu-west-1", "--now", "2026-11-24T12:10:00Z", "testdata/identity.jsonl"}
	if code := run(args, strings.NewReader(""), &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var msgs []alert.Message
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var m alert.Message
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	if len(msgs) != 2 {
		t.Fatalf("%d alerts, want 2 (five X-Forwarded-For values through one peer are one alert)", len(msgs))
	}
	var channels map[string]string
	for _, m := range msgs {
		if strings.Contains(m.Message, "NOT-AN-IDENTIFIER") {
			t.Errorf("an unlisted user.extra key reached the alert %q", m.Subject)
		}
	}
	if err := json.Unmarshal([]byte(msgs[0].Message), &channels); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []string{"email", "https", "sqs"} {
		for _, want := range []string{"role/CI-Deploy", "build-7781", "ASIAQEXAMPLEKEY00042",
			"https://eu-west-1.console.aws.amazon.com/cloudtrailv2/home?region=eu-west-1#/events?AccessKeyId=ASIAQEXAMPLEKEY00042",
			"198.51.100.77"} {
			if !strings.Contains(channels[ch], want) {
				t.Errorf("%s alert of ci-deploy lacks %q", ch, want)
			}
		}
	}
	if !strings.Contains(channels["email"], "chosen by the caller") || !strings.Contains(channels["sqs"], `"sessionNameCallerChosen":true`) {
		t.Error("the session is not marked as chosen by the caller")
	}
	if err := json.Unmarshal([]byte(msgs[1].Message), &channels); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []string{"email", "https", "sqs"} {
		for _, want := range []string{"web-7d4b9c-x2x9p", "ip-10-0-3-17"} {
			if !strings.Contains(channels[ch], want) {
				t.Errorf("%s alert of the service account lacks %q", ch, want)
			}
		}
	}
}

// TestReplayWorkers: Lambda events are decoded in parallel, and everything is added in
// input order, so the output and the error lines do not depend on the number of workers:
// redeliveries decoded by different workers still count once, and what depends on order
// (the identity and log stream an aggregate keeps) is that of the input.
func TestReplayWorkers(t *testing.T) {
	var in strings.Builder
	var events []string
	for seed := uint64(1); seed <= 8; seed++ {
		events = append(events, string(workload.New(seed).Delivery(300_000).Event))
	}
	raw := strings.TrimSpace(mustRead(t, "../../events/raw/anonymous-forbidden.jsonl"))
	for i, ev := range events {
		in.WriteString(ev + "\n")
		switch i % 4 {
		case 1:
			in.WriteString("not json\n")
		case 2:
			in.WriteString(`{"awslogs":{"data":"bm90IGd6aXA="}}` + "\n") // not gzip
		case 3:
			in.WriteString(raw + "\n")
		}
	}
	for _, ev := range events[2:5] { // redelivered
		in.WriteString(ev + "\n")
	}
	var outs, errs []string
	for _, workers := range []string{"1", "4"} {
		var stdout, stderr bytes.Buffer
		if code := run([]string{"--format", "json", "--workers", workers}, strings.NewReader(in.String()), &stdout, &stderr); code != exitInput {
			t.Fatalf("--workers %s: exit %d, want %d; stderr:\n%s", workers, code, exitInput, stderr.String())
		}
		outs, errs = append(outs, stdout.String()), append(errs, stderr.String())
	}
	if !strings.Contains(errs[0], "<stdin>:3: not JSON") || !strings.Contains(errs[0], "<stdin>:5: decode lambda event:") ||
		strings.Contains(errs[0], " 0 duplicate log events") || strings.Count(outs[0], "\n") < 10 {
		t.Fatalf("--workers 1: unexpected result:\n%s\n%d aggregates", errs[0], strings.Count(outs[0], "\n"))
	}
	if outs[0] != outs[1] {
		t.Error("the aggregates differ between 1 and 4 workers")
	}
	if errs[0] != errs[1] {
		t.Errorf("standard error differs between 1 and 4 workers:\n%s\n---\n%s", errs[0], errs[1])
	}
}
