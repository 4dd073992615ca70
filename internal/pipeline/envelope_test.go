package pipeline_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/cwlogs"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/pipeline"
)

// rawEvent is the subscription event of a payload written by hand (gzip, as CloudWatch Logs).
func rawEvent(t *testing.T, payload string) []byte {
	t.Helper()
	comp, err := cwlogs.Compress([]byte(payload), cwlogs.Gzip)
	if err != nil {
		t.Fatal(err)
	}
	return cwlogs.SubscriptionEvent(comp)
}

// TestEnvelopeAfterLogEvents: matches are prepared (keyed, checked, bounded) as their log
// events are read, under the envelope read before them. A payload whose envelope fields
// come after its logEvents (legal JSON, not what CloudWatch Logs writes) gives the same
// aggregates as the same payload in CloudWatch Logs' order.
func TestEnvelopeAfterLogEvents(t *testing.T) {
	lines := rawLines(t, "anonymous-forbidden.jsonl")
	want, _ := delivery(t, lines)
	m := cwlogs.Message{MessageType: cwlogs.DataMessage, Owner: "111122223333", LogGroup: "/aws/eks/prod-cluster/cluster",
		LogStream: "kube-apiserver-audit-1", SubscriptionFilters: []string{"f"}}
	for i, l := range lines {
		m.LogEvents = append(m.LogEvents, cwlogs.MessageEvent{ID: fmt.Sprintf("%056d", i+1), Timestamp: 1764000000000 + int64(i), Message: l})
	}
	// The same message with its header moved after logEvents.
	events, err := json.Marshal(m.LogEvents)
	if err != nil {
		t.Fatal(err)
	}
	msg := `{"logEvents":` + string(events) + `,"messageType":"DATA_MESSAGE","owner":"111122223333",` +
		`"logGroup":"/aws/eks/prod-cluster/cluster","logStream":"kube-apiserver-audit-1","subscriptionFilters":["f"]}`
	p := pipeline.New(options(detect.ModeSeed))
	a, err := p.Process(want)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Process(rawEvent(t, msg))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Aggregates) == 0 {
		t.Fatal("no aggregates from the sample")
	}
	summary := func(aggs []aggregate.Aggregate) []string {
		var out []string
		for _, g := range aggs {
			out = append(out, g.Key+" "+g.Group+" "+g.Source.Owner+" "+g.Source.Cluster+" "+g.Source.LogStream+" "+strings.Join(g.EventIDs, ","))
		}
		return out
	}
	if g, w := summary(b.Aggregates), summary(a.Aggregates); !slices.Equal(g, w) {
		t.Errorf("header after logEvents:\n%v\nwant, as in CloudWatch Logs' order:\n%v", g, w)
	}
}

// TestLongValuesAreKeyedWhole: a match's aggregate key is hashed from its whole values
// while the values it keeps are bounded, from the moment its log event is read: two
// requests differing only past the bound stay two aggregates, each holding a cut value.
func TestLongValuesAreKeyedWhole(t *testing.T) {
	base := rawLines(t, "anonymous-forbidden.jsonl")[0]
	var ev map[string]any
	if err := json.Unmarshal([]byte(base), &ev); err != nil {
		t.Fatal(err)
	}
	long := "/api/v1/namespaces/default/configmaps?x=" + strings.Repeat("a", 200<<10)
	var lines []string
	for _, tail := range []string{"1", "2"} {
		ev["requestURI"] = long + tail
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(b))
	}
	event, _ := delivery(t, lines)
	res, err := pipeline.New(options(detect.ModeSeed)).Process(event)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Aggregates) != 2 {
		t.Fatalf("%d aggregates, want 2 (the URIs differ past the bound)", len(res.Aggregates))
	}
	for _, g := range res.Aggregates {
		if uri := g.Fields.RequestURI; len(uri) > aggregate.MaxValueBytes || !strings.HasSuffix(uri, aggregate.Truncated) {
			t.Errorf("kept a %d-byte URI, want at most %d ending in %q", len(uri), aggregate.MaxValueBytes, aggregate.Truncated)
		}
	}
}

// TestRepeatedLogEventsKey: Process counts matches as it reads them; a second logEvents
// array replaces the first (as encoding/json reads it), so the matches already counted
// from the first are voided and the event is decoded again: the result is the second
// array's alone.
func TestRepeatedLogEventsKey(t *testing.T) {
	lines := rawLines(t, "anonymous-forbidden.jsonl")
	if len(lines) < 2 {
		t.Fatal("want at least two sample lines")
	}
	rec := func(i int, l string) string {
		b, err := json.Marshal(cwlogs.MessageEvent{ID: fmt.Sprintf("%056d", i), Timestamp: 1764000000000, Message: l})
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	head := `{"messageType":"DATA_MESSAGE","owner":"111122223333","logGroup":"/aws/eks/prod-cluster/cluster","logStream":"s","subscriptionFilters":["f"],`
	p := pipeline.New(options(detect.ModeSeed))
	got, err := p.Process(rawEvent(t, head+`"logEvents":[`+rec(1, lines[0])+`],"logEvents":[`+rec(2, lines[1])+`]}`))
	if err != nil {
		t.Fatal(err)
	}
	want, err := p.Process(rawEvent(t, head+`"logEvents":[`+rec(2, lines[1])+`]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(want.Aggregates) != 1 || len(got.Aggregates) != 1 || got.Aggregates[0].Key != want.Aggregates[0].Key ||
		got.Aggregates[0].Count != 1 || got.Stats.Matches != 1 || got.Stats.LogEvents != 1 {
		t.Errorf("repeated logEvents: %d aggregates, %d matches, %d log events; want the second array's one match",
			len(got.Aggregates), got.Stats.Matches, got.Stats.LogEvents)
	}
}

// TestEscapedQuotesAndLetters: the payload's string may write the line's quotes as \u0022
// and its letters as \u00XX escapes (legal JSON, not what CloudWatch Logs writes). The
// prefilter of whole escaped messages (detect.MayMatchEscaped) keeps such lines: the
// aggregates are those of the plain payload.
func TestEscapedQuotesAndLetters(t *testing.T) {
	lines := rawLines(t, "anonymous-forbidden.jsonl")
	want, _ := delivery(t, lines)
	escapes := strings.NewReplacer(`\"`, `\u0022`, "Forbidden", `\u0046orbidd\u0065n`, "create", `cr\u0065ate`)
	var b strings.Builder
	b.WriteString(`{"messageType":"DATA_MESSAGE","owner":"111122223333","logGroup":"/aws/eks/prod-cluster/cluster",` +
		`"logStream":"kube-apiserver-audit-1","subscriptionFilters":["f"],"logEvents":[`)
	for i, l := range lines {
		enc, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		// In the encoded content every quote of the line is escaped, so \" is only ever one.
		fmt.Fprintf(&b, `{"id":"%056d","timestamp":%d,"message":"%s"}`, i+1, 1764000000000+int64(i), escapes.Replace(string(enc[1:len(enc)-1])))
	}
	b.WriteString(`]}`)
	if !strings.Contains(b.String(), `\u0022\u0046orbidd\u0065n\u0022`) {
		t.Fatal("the test payload holds no escaped reason")
	}
	escaped := rawEvent(t, b.String())
	for _, mode := range []detect.Mode{detect.ModeSeed, detect.ModeAuthz} {
		p := pipeline.New(options(mode))
		a, err := p.Process(want)
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.Process(escaped)
		if err != nil {
			t.Fatal(err)
		}
		if a.Stats.Matches == 0 || got.Stats.Matches != a.Stats.Matches || len(got.Aggregates) != len(a.Aggregates) {
			t.Errorf("mode %s: %d matches, %d aggregates from the escaped payload; want %d, %d", mode,
				got.Stats.Matches, len(got.Aggregates), a.Stats.Matches, len(a.Aggregates))
		}
	}
}
