package eventbus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/eks-unauthorized-access/detector/infra/local/localtest"
	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/alert"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/eventbus"
)

// docPattern is one event pattern of docs/integrations.md and the sample events it
// promises to match.
type docPattern struct {
	name    string
	pattern string
	matches []string
}

// patternBlock is a marker line followed by the pattern's fenced JSON block.
var patternBlock = regexp.MustCompile("(?s)<!-- event-pattern ([a-z0-9-]+); matches: ([a-z0-9 -]+) -->\n```json\n(.*?)\n```")

// documentedPatterns reads the event patterns of docs/integrations.md.
func documentedPatterns(t *testing.T) []docPattern {
	t.Helper()
	data, err := os.ReadFile("../../docs/integrations.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []docPattern
	for _, m := range patternBlock.FindAllStringSubmatch(string(data), -1) {
		if !json.Valid([]byte(m[3])) {
			t.Fatalf("pattern %s is not JSON: %s", m[1], m[3])
		}
		out = append(out, docPattern{name: m[1], pattern: m[3], matches: strings.Fields(m[2])})
	}
	if n := strings.Count(string(data), "<!-- event-pattern "); n != len(out) || n < 5 {
		t.Fatalf("read %d patterns of %d markers", len(out), n)
	}
	return out
}

// samples are the messages the patterns are tried on, by name: real renders of a first
// alert and an update of cluster prod, a first alert of cluster staging flagged as a
// possible duplicate, and a report part.
func samples(t *testing.T) map[string]alert.Message {
	t.Helper()
	now := time.Date(2026, 3, 4, 10, 30, 0, 0, time.UTC)
	group := func(cluster string, dup bool) alert.Group {
		return alert.Group{Rule: detect.UnauthorizedAccess, Window: now.Truncate(time.Hour), Key: cluster, PossibleDuplicate: dup,
			Aggregates: []aggregate.Aggregate{{
				Key: "a", Count: 2, FirstSeen: now, LastSeen: now,
				Source: aggregate.Source{Cluster: cluster, Owner: "111122223333", Region: "eu-west-1", LogGroup: "/aws/eks/" + cluster + "/cluster"},
				Fields: detect.Fields{User: "mallory", SrcIPs: []string{"198.51.100.7"}, Verb: "create"},
			}}}
	}
	opts := alert.Options{Now: func() time.Time { return now }}
	out := map[string]alert.Message{}
	var err error
	prod := alert.Build(group("prod", false), opts)
	if out["prod-first"], err = alert.Render(prod); err != nil {
		t.Fatal(err)
	}
	if out["prod-update"], err = alert.RenderEscalation(prod, alert.Escalation{Threshold: 10, From: 2, To: 10}); err != nil {
		t.Fatal(err)
	}
	if out["staging-first"], err = alert.Render(alert.Build(group("staging", true), opts)); err != nil {
		t.Fatal(err)
	}
	parts, err := alert.ReportParts(detect.UnauthorizedAccess, now.Truncate(time.Hour), group("prod", false).Aggregates, now, true)
	if err != nil || len(parts) == 0 {
		t.Fatalf("report parts: %v (%d)", err, len(parts))
	}
	if out["report"], err = alert.RenderReportPart(parts[0]); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDocumentedEventPatterns creates one EventBridge rule per documented pattern, each
// delivering to its own SQS queue (moto's server; it has no TestEventPattern), puts the
// sample events as the function does, and checks that each rule received exactly the
// events the documentation says it matches.
func TestDocumentedEventPatterns(t *testing.T) {
	moto := localtest.MotoForTest(t)
	ctx := context.Background()
	patterns := documentedPatterns(t)
	const bus = "patterns"
	for _, p := range patterns {
		if err := moto.RouteEvents(ctx, bus, p.name, p.pattern); err != nil {
			t.Fatal(err)
		}
	}
	msgs := samples(t)
	client := moto.EventBridgeClient()
	byID := map[string]string{} // alert id → sample name
	for name, m := range msgs {
		e, err := eventbus.Entry(m, bus)
		if err != nil {
			t.Fatal(err)
		}
		out, err := client.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{e}})
		if err != nil || out.FailedEntryCount != 0 {
			t.Fatalf("put %s: %v (%d failed)", name, err, aws.ToInt32(&out.FailedEntryCount))
		}
		var head struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal([]byte(aws.ToString(e.Detail)), &head); err != nil {
			t.Fatal(err)
		}
		byID[head.ID] = name
	}
	for _, p := range patterns {
		events, err := moto.DrainEvents(ctx, p.name)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, raw := range events {
			var ev struct {
				Detail struct {
					ID string `json:"id"`
				} `json:"detail"`
			}
			if err := json.Unmarshal(raw, &ev); err != nil {
				t.Fatal(err)
			}
			got = append(got, byID[ev.Detail.ID])
		}
		slices.Sort(got)
		want := slices.Clone(p.matches)
		slices.Sort(want)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("pattern %s matched %v, the documentation promises %v", p.name, got, want)
		}
	}
}
