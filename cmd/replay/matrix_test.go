package main

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/eks-unauthorized-access/detector/internal/cwlogs"
)

func matrixCompress(t *testing.T, b []byte, useZlib bool) []byte {
	t.Helper()
	c := cwlogs.Gzip
	if useZlib {
		c = cwlogs.Zlib
	}
	comp, err := cwlogs.Compress(b, c)
	if err != nil {
		t.Fatal(err)
	}
	return comp
}

func matrixEvent(comp []byte) string { return string(cwlogs.SubscriptionEvent(comp)) }

// matrixMessage is a DATA_MESSAGE carrying the given log lines.
func matrixMessage(t *testing.T, lines ...string) []byte {
	t.Helper()
	m := cwlogs.Message{MessageType: cwlogs.DataMessage, Owner: "111122223333", LogGroup: "/aws/eks/prod/cluster",
		LogStream: "kube-apiserver-audit-1", SubscriptionFilters: []string{"f"}}
	for i, l := range lines {
		m.LogEvents = append(m.LogEvents, cwlogs.MessageEvent{ID: fmt.Sprint(i + 1), Timestamp: 1764000000000, Message: l})
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const matrixForbidden = `{"kind":"Event","apiVersion":"audit.k8s.io/v1","stage":"ResponseComplete","requestURI":"/api/v1/namespaces","verb":"create",` +
	`"user":{"username":"mallory","groups":["system:authenticated"]},"sourceIPs":["203.0.113.5"],"userAgent":"curl/8.0",` +
	`"objectRef":{"resource":"namespaces","apiVersion":"v1"},"responseStatus":{"status":"Failure","reason":"Forbidden","code":403},` +
	`"requestReceivedTimestamp":"2026-11-24T08:00:00.000001Z"}`

// TestReplayBadInputMatrix feeds the replay tool hostile inputs, one standard-input line
// each. An input line that cannot be decoded is reported as <stdin>:LINE with the reason
// and makes the exit status 1; bad log events inside a good message are skipped and
// counted in the summary; nothing is dropped silently and nothing panics.
func TestReplayBadInputMatrix(t *testing.T) {
	plain := matrixMessage(t, matrixForbidden)
	gz := matrixCompress(t, plain, false)
	bomb := matrixEvent(bytes.Repeat(matrixCompress(t, make([]byte, 1<<20), false), 1024)) // 1 GiB inflated
	nested := strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000)
	full := matrixForbidden
	badLines := matrixEvent(matrixCompress(t, matrixMessage(t,
		matrixForbidden,
		"I1124 08:30:01 trace.go:236] Create forbidden",
		full[:len(full)-40]+"[Truncated...]",
		`{"verb":"create","x":`+nested+`}`,
		"create Forbidden "+strings.Repeat("A", 5<<20),
		"\xff\xfe\xc0 create Forbidden",
		`{"kind":0}`,
		`{"apiVersion":"audit.k8s.io/v1","verb":"create","responseStatus":"Forbidden"}`,
		`{"apiVersion":"audit.k8s.io/v1","verb":"create","responseStatus":{"reason":"Forbidden"}}`,
	), false))

	tests := []struct {
		name   string
		stdin  string
		exit   int
		stderr string // expected on standard error
		rows   int    // Splunk rows expected on standard output
	}{
		{"bad base64", `{"awslogs":{"data":"H4sI!!not base64"}}`, exitInput, "<stdin>:1: decode lambda event: decode payload 0: decode base64", 0},
		{"truncated gzip", matrixEvent(gz[:len(gz)/2]), exitInput, "<stdin>:1: decode lambda event: decode payload 0: inflate: truncated stream", 0},
		{"gzip of garbage", matrixEvent(matrixCompress(t, []byte("garbage"), false)), exitInput, "<stdin>:1: decode lambda event: decode payload 0: parse subscription message", 0},
		{"zlib", matrixEvent(matrixCompress(t, plain, true)), exitOK, "1 audit events, 1 matches", 1},
		{"gzip bomb", bomb, exitInput, "<stdin>:1: decode lambda event: decode payload 0: " + cwlogs.ErrTooLarge.Error(), 0},
		{"empty input", "", exitOK, "0 payloads (0 control), 0 log events", 0},
		{"empty object", `{}`, exitInput, "<stdin>:1: parse audit line: not an audit event", 0},
		{"unknown event shape", `{"version":"0","detail-type":"Scheduled Event","source":"aws.events"}`, exitInput, "<stdin>:1: parse audit line: not an audit event", 0},
		{"control message", `{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"","subscriptionFilters":[],"logEvents":[{"id":"","timestamp":1,"message":"CWL CONTROL MESSAGE: Checking health of destination"}]}`,
			exitOK, "1 payloads (1 control), 0 log events", 0},
		// The line CloudWatch Logs cut after responseStatus is still read.
		{"bad log events in a good delivery", badLines, exitOK,
			"9 log events, 3 audit events, 3 matches (0 suppressed, 0 duplicate log events), 6 log events skipped (not_audit=2 not_json=4)", 3},
		{"raw deeply nested line", nested, exitInput, "<stdin>:1: not JSON", 0},
		{"raw line of several MB", "create Forbidden " + strings.Repeat("A", 5<<20), exitInput, "<stdin>:1: not JSON", 0},
		{"raw line not UTF-8", "\xff\xfe{\"verb\":\"create\"}", exitInput, "<stdin>:1: not JSON", 0},
		{"raw kind of the wrong type", `{"kind":0}`, exitInput, "<stdin>:1: parse audit line: not an audit event: kind is not a string", 0},
		{"raw missing fields everywhere", `{"apiVersion":"audit.k8s.io/v1","verb":"create","responseStatus":{"reason":"Forbidden"}}`, exitOK, "1 audit events, 1 matches", 1},
		// A wrong type where nothing decides costs no match (Splunk would still match it); the
		// number in user.groups is its own row, as Splunk extracts user.groups{}.
		{"raw wrong types in unrelated fields", `{"apiVersion":"audit.k8s.io/v1","level":5,"stageTimestamp":1,"verb":"create","user":{"username":"a","groups":["g",7]},` +
			`"objectRef":{"name":[1]},"responseStatus":{"reason":"Forbidden","status":0},"annotations":{"a":1}}`, exitOK, "1 audit events, 1 matches", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			// --parse-all: every bad line is parsed and counted by reason.
			code := run([]string{"--parse-all"}, strings.NewReader(tt.stdin+"\n"), &stdout, &stderr)
			runtime.ReadMemStats(&after)
			if code != tt.exit {
				t.Fatalf("exit %d, want %d; stderr:\n%.2000s", code, tt.exit, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr lacks %q:\n%.2000s", tt.stderr, stderr.String())
			}
			if rows := strings.Count(stdout.String(), "\n"); rows != tt.rows {
				t.Errorf("%d rows, want %d:\n%.2000s", rows, tt.rows, stdout.String())
			}
			// Bounded memory, whatever the input: the inputs here are at most 6 MB, and a
			// delivery inflates to at most the default cap.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 3*cwlogs.DefaultMaxDecompressedBytes+64<<20 {
				t.Errorf("allocated %d MiB", alloc>>20)
			}
		})
	}
}
