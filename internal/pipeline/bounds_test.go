package pipeline_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/eks-unauthorized-access/detector/internal/cwlogs"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/pipeline"
)

// delivery wraps lines into a gzip subscription event as CloudWatch Logs writes it, and
// returns the event and its inflated size.
func delivery(t *testing.T, lines []string) ([]byte, int) {
	t.Helper()
	m := cwlogs.Message{MessageType: cwlogs.DataMessage, Owner: "111122223333", LogGroup: "/aws/eks/prod-cluster/cluster",
		LogStream: "kube-apiserver-audit-1", SubscriptionFilters: []string{"f"}}
	for i, l := range lines {
		m.LogEvents = append(m.LogEvents, cwlogs.MessageEvent{ID: fmt.Sprintf("%056d", i+1), Timestamp: 1764000000000 + int64(i), Message: l})
	}
	event, plain, err := m.LambdaEvent()
	if err != nil {
		t.Fatal(err)
	}
	return event, len(plain)
}

// TestWorkBoundCountsEveryLine: a delivery larger than MaxDecompressedBytes is processed,
// not refused; every line past the bound is counted by reason, none is dropped silently.
func TestWorkBoundCountsEveryLine(t *testing.T) {
	base := rawLines(t, "anonymous-forbidden.jsonl")[0]
	var lines []string
	for i := range 400 {
		lines = append(lines, strings.Replace(base, `"/api/v1/namespaces"`, fmt.Sprintf(`"/api/v1/namespaces?n=%d"`, i), 1))
	}
	event, size := delivery(t, lines)
	for _, bound := range []int64{0, int64(size / 3), int64(size) * 9 / 10, 1} {
		opts := options(detect.ModeSeed)
		opts.MaxDecompressedBytes = bound
		res, err := pipeline.New(opts).Process(event)
		if err != nil {
			t.Fatalf("bound %d: %v", bound, err)
		}
		st := res.Stats
		past := st.Skipped[pipeline.SkipPastWorkBound]
		if st.LogEvents != len(lines) || st.Matches+past != len(lines) {
			t.Errorf("bound %d: %d log events, %d matches, %d past the bound; want %d lines all accounted for",
				bound, st.LogEvents, st.Matches, past, len(lines))
		}
		if (bound != 0) != (past > 0) {
			t.Errorf("bound %d: %d lines past it", bound, past)
		}
		var counted int64
		for _, a := range res.Aggregates {
			counted += a.Count
		}
		if counted != int64(st.Matches) {
			t.Errorf("bound %d: aggregates count %d, matches %d", bound, counted, st.Matches)
		}
	}
}

// TestCutLinesStillDetected: a forbidden create whose line is cut (by CloudWatch Logs, or
// by the decoder at MaxLineBytes) after verb and responseStatus is still detected and
// counted; one cut before responseStatus is skipped as truncated.
func TestCutLinesStillDetected(t *testing.T) {
	base := rawLines(t, "anonymous-forbidden.jsonl")[0]
	padded := strings.Replace(base, `"annotations":{`, `"annotations":{"pad":"`+strings.Repeat("x", 200<<10)+`",`, 1)
	cwCut := padded[:100<<10] + "[Truncated...]"
	early := base[:strings.Index(base, `"reason"`)] + "[Truncated...]"
	tests := []struct {
		name                   string
		line                   string
		maxLine                int
		matches, parsed, trunc int
	}{
		{"whole line", padded, 0, 1, 0, 0},
		{"cut by CloudWatch Logs after responseStatus", cwCut, 0, 1, 1, 0},
		{"cut by the line bound after responseStatus", padded, 64 << 10, 1, 1, 0},
		{"cut before responseStatus", early, 0, 0, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			event, _ := delivery(t, []string{tt.line, base})
			opts := options(detect.ModeSeed)
			opts.MaxLineBytes = tt.maxLine
			res, err := pipeline.New(opts).Process(event)
			if err != nil {
				t.Fatal(err)
			}
			st := res.Stats
			if st.Matches != tt.matches+1 || st.TruncatedParsed != tt.parsed || st.Skipped[pipeline.SkipTruncated] != tt.trunc {
				t.Errorf("matches %d, cut lines read %d, skipped truncated %d; want %d, %d, %d",
					st.Matches, st.TruncatedParsed, st.Skipped[pipeline.SkipTruncated], tt.matches+1, tt.parsed, tt.trunc)
			}
		})
	}
}
