package alert

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
)

// manyAggregates is a group of n aggregates with 1 KB user agents and URIs: an attacker
// varying the user agent on every request produces exactly this.
func manyAggregates(n int) Group {
	g := sampleGroup()
	base := g.Aggregates[0]
	g.Aggregates = make([]aggregate.Aggregate, n)
	for i := range g.Aggregates {
		ag := base
		ag.Key = fmt.Sprintf("k%05d", i)
		ag.Count = 2
		ag.LastSeen = window.Add(time.Duration(i) * time.Second)
		ag.FirstSeen = ag.LastSeen
		ag.Fields.UserAgent = fmt.Sprintf("agent-%05d-", i) + strings.Repeat("\"quoted\" ", 110)
		ag.Fields.RequestURI = "/api/v1/namespaces/kube-system/secrets?x=" + strings.Repeat("%22", 300)
		g.Aggregates[i] = ag
	}
	return g
}

func TestRenderStaysUnderSNSLimit(t *testing.T) {
	const n = 3000
	a := Build(manyAggregates(n), Options{Now: fixedNow})
	m, err := Render(a)
	if err != nil {
		t.Fatal(err)
	}
	checkSafe(t, m)
	if m.Size() > MaxPublishBytes {
		t.Fatalf("size %d > %d", m.Size(), MaxPublishBytes)
	}

	var s Alert
	if err := json.Unmarshal([]byte(channels(t, m)["sqs"]), &s); err != nil {
		t.Fatal(err)
	}
	listed := len(s.Aggregates)
	if listed == 0 || s.AggregatesOmitted == 0 || listed+s.AggregatesOmitted != n || s.AggregatesTotal != n {
		t.Fatalf("listed %d + omitted %d, total %d, want a partial list adding up to %d", listed, s.AggregatesOmitted, s.AggregatesTotal, n)
	}
	if s.Attempts != 2*n {
		t.Errorf("attempts = %d, want %d (every aggregate counts)", s.Attempts, 2*n)
	}
	// Most recent first: the listed ones are the newest.
	if !strings.HasPrefix(s.Aggregates[0].Fields.UserAgent, fmt.Sprintf("agent-%05d-", n-1)) {
		t.Errorf("first listed aggregate is not the most recent: %.20s", s.Aggregates[0].Fields.UserAgent)
	}
	// As many as fit: one more would not.
	if more, err := renderN(a, listed+1); err != nil || fits(more) {
		t.Errorf("rendering %d aggregates also fits (err %v): Render dropped too many", listed+1, err)
	}
	email := channels(t, m)["email"]
	if want := fmt.Sprintf("%d older aggregates omitted", n-listed); !strings.Contains(email, want) {
		t.Errorf("email does not say %q", want)
	}
	if !strings.Contains(channels(t, m)["https"], fmt.Sprintf("%d aggregates omitted from this message", n-listed)) {
		t.Error("chat notification does not say how many aggregates were omitted")
	}
}

func TestChatDescriptionLimit(t *testing.T) {
	m, err := Render(Build(manyAggregates(40), Options{Now: fixedNow}))
	if err != nil {
		t.Fatal(err)
	}
	var n chatbotMessage
	if err := json.Unmarshal([]byte(channels(t, m)["https"]), &n); err != nil {
		t.Fatal(err)
	}
	if got := len([]rune(n.Content.Description)); got > maxChatDescription {
		t.Errorf("description has %d characters, limit %d", got, maxChatDescription)
	}
	if !strings.Contains(n.Content.Description, "more aggregates in the e-mail and JSON alert") {
		t.Error("description does not say that more aggregates exist")
	}
	if len([]rune(n.Content.Title)) > maxChatTitle || len([]rune(n.Metadata.Summary)) > maxChatSummary {
		t.Error("title or summary over its limit")
	}
}
