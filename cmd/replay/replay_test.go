package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/eks-unauthorized-access/detector/internal/alert"
	"github.com/eks-unauthorized-access/detector/internal/version"
)

var update = flag.Bool("update", false, "rewrite the golden files")

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
			summary: "13 audit events, 9 matches"},
		{golden: "raw-authz-splunk", args: append([]string{"--match-mode", "authz"}, raw...),
			summary: "13 audit events, 8 matches"},
		// By default replay runs the function's path: lines the prefilter rejects are not
		// parsed; --parse-all parses and counts every line.
		{golden: "events-json", args: append([]string{"--format", "json"}, events...),
			summary: "7 payloads (1 control), 22 log events, 15 audit events, 15 matches (0 suppressed, 0 duplicate log events)"},
		{golden: "events-json", args: append([]string{"--format", "json", "--parse-all"}, events...),
			summary: "7 payloads (1 control), 22 log events, 19 audit events, 15 matches (0 suppressed, 0 duplicate log events), 3 log events skipped (not_audit=1 not_json=1 truncated=1)"},
		{golden: "events-group-by-user-src-ip", args: []string{"--format", "json", "--group-by", "user,src_ip", "../../events/cloudwatch-iam-user.json"},
			summary: "4 matches"},
		{golden: "raw-alerts", args: append([]string{"--format", "alerts", "--region", "eu-west-1", "--now", "2026-11-24T10:00:00Z"}, raw...),
			summary: "13 audit events, 9 matches (0 suppressed"},
		// EKS user.extra: an assumed role behind a proxy (five requests, one peer, five
		// X-Forwarded-For values: one alert) and a service-account token used from a pod.
		{golden: "identity-alerts", args: []string{"--format", "alerts", "--group-by", "user,src_ip", "--region", "eu-west-1", "--now", "2026-11-24T12:10:00Z", "testdata/identity.jsonl"},
			summary: "6 audit events, 6 matches"},
		{golden: "raw-suppressed-splunk", args: append([]string{"--suppress", `user == "alice"`, "--suppress", `user.startsWith("system:serviceaccount:ci:")`}, raw...),
			summary: "9 matches (5 suppressed"},
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
			golden := filepath.Join("testdata", tc.golden+".golden")
			if *update {
				if err := os.WriteFile(golden, stdout.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if want := mustRead(t, golden); stdout.String() != want {
				t.Errorf("stdout differs from %s (run with -update):\n%s", golden, stdout.String())
			}
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
