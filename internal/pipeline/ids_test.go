package pipeline_test

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/eks-unauthorized-access/detector/internal/cwlogs"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/pipeline"
	"github.com/eks-unauthorized-access/detector/internal/suppress"
)

func rawLines(t *testing.T, file string) []string {
	t.Helper()
	f, err := os.Open("../../events/raw/" + file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// payload wraps lines into a decoded subscription message whose log events have no ids,
// as a producer reshaping CloudWatch Logs payloads might send them.
func payload(owner string, lines ...string) cwlogs.Payload {
	pl := cwlogs.Payload{MessageType: cwlogs.DataMessage, Owner: owner, LogGroup: "/aws/eks/prod-cluster/cluster", LogStream: "kube-apiserver-audit-1"}
	for i, l := range lines {
		pl.LogEvents = append(pl.LogEvents, cwlogs.LogEvent{Timestamp: 1764000000000 + int64(i), Message: []byte(l)})
	}
	return pl
}

func TestLogEventsWithoutIDsAreCountedOnce(t *testing.T) {
	lines := rawLines(t, "anonymous-forbidden.jsonl")
	if len(lines) < 2 {
		t.Fatalf("want at least 2 sample lines, got %d", len(lines))
	}
	b := pipeline.New(options(detect.ModeSeed)).NewBatch()
	b.AddPayload(payload("111122223333", lines...))
	b.AddPayload(payload("111122223333", lines...)) // the same delivery again
	res := b.Result()
	var count int64
	for _, a := range res.Aggregates {
		count += a.Count
		if len(a.EventIDs) == 0 || !strings.HasPrefix(a.EventIDs[0], "sha256:") {
			t.Errorf("aggregate %s has no derived event ids: %v", a.Key, a.EventIDs)
		}
	}
	if count != int64(len(lines)) || res.Stats.DuplicateLogEvents != len(lines) {
		t.Errorf("counted %d (duplicates %d) over two deliveries of %d lines, want %d and %d",
			count, res.Stats.DuplicateLogEvents, len(lines), len(lines), len(lines))
	}

	// The same lines from another account are other events.
	b.AddPayload(payload("444455556666", lines...))
	count = 0
	for _, a := range b.Result().Aggregates {
		count += a.Count
	}
	if count != 2*int64(len(lines)) {
		t.Errorf("counted %d after a second account's delivery, want %d", count, 2*len(lines))
	}
}

func TestSuppressionErrorsAreCounted(t *testing.T) {
	lines := rawLines(t, "anonymous-forbidden.jsonl")
	// cidr().containsIP fails at run time on an address that is not an IP: the match is
	// kept (not suppressed) and the failure counted.
	f, err := suppress.Compile([]string{`cidr("10.0.0.0/8").containsIP(userAgent)`})
	if err != nil {
		t.Fatal(err)
	}
	opts := options(detect.ModeSeed)
	opts.Suppressor = f
	p := pipeline.New(opts)
	b := p.NewBatch()
	b.AddPayload(payload("111122223333", lines...))
	st := b.Result().Stats
	if st.Matches == 0 || st.Suppressed != 0 || st.SuppressionErrors != st.Matches {
		t.Errorf("matches %d, suppressed %d, suppression errors %d: want every match kept and its error counted",
			st.Matches, st.Suppressed, st.SuppressionErrors)
	}
	// A second batch counts only its own errors.
	b2 := p.NewBatch()
	b2.AddPayload(payload("111122223333", lines[0]))
	if got := b2.Result().Stats.SuppressionErrors; got != 1 {
		t.Errorf("second batch suppression errors = %d, want 1", got)
	}
}
