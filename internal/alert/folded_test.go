package alert

import (
	"strings"
	"testing"
	"time"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/detect"
)

// TestFoldedRow: a group's overflow row (the requests past the row bound) counts in the
// attempts, is marked folded in the structured alert, and is explained, not shown as a row
// of empty fields, in e-mail, chat and the report.
func TestFoldedRow(t *testing.T) {
	g := sampleGroup()
	plain := Build(g, Options{Now: fixedNow})
	over := g.Aggregates[0]
	over.Key = aggregate.OverflowKey
	over.Count = 4000
	over.Fields = detect.Fields{User: over.Fields.User, UID: over.Fields.UID}
	for _, ag := range g.Aggregates {
		if ag.LastSeen.After(over.LastSeen) {
			over.LastSeen = ag.LastSeen
		}
	}
	over.LastSeen = over.LastSeen.Add(time.Second) // the most recent row, listed first
	g.Aggregates = append(g.Aggregates, over)
	a := Build(g, Options{Now: fixedNow})

	if a.Attempts != plain.Attempts+4000 || a.AggregatesTotal != plain.AggregatesTotal+1 {
		t.Fatalf("attempts %d in %d rows, want %d in %d", a.Attempts, a.AggregatesTotal, plain.Attempts+4000, plain.AggregatesTotal+1)
	}
	if !a.Aggregates[0].Folded || a.Aggregates[1].Folded {
		t.Fatalf("folded flags %v, %v: want only the overflow row", a.Aggregates[0].Folded, a.Aggregates[1].Folded)
	}
	if a.RiskObject.Value != "alice" {
		t.Errorf("risk object %q, want the user kept on the overflow row", a.RiskObject.Value)
	}
	m, err := Render(a)
	if err != nil {
		t.Fatal(err)
	}
	ch := channels(t, m)
	if !strings.Contains(ch["sqs"], `"folded":true`) || strings.Count(ch["sqs"], `"folded"`) != 1 {
		t.Errorf("structured alert: want exactly one \"folded\":true")
	}
	for _, name := range []string{"email", "https"} {
		if !strings.Contains(ch[name], "4000") || !strings.Contains(ch[name], "MAX_ROWS_PER_GROUP") {
			t.Errorf("%s channel does not explain the folded row of 4000", name)
		}
	}
	if strings.Contains(ch["email"], "verb:                     \n") {
		t.Errorf("e-mail lists the empty fields of the folded row")
	}

	rows := ReportRows(detect.UnauthorizedAccess, g.Aggregates)
	var folded []aggregate.Row
	for _, r := range rows {
		if r.Folded {
			folded = append(folded, r.Row)
		}
	}
	if len(folded) != 1 || folded[0].Count != 4000 || folded[0].User != "alice" {
		t.Fatalf("report rows folded = %+v, want one row of alice with 4000", folded)
	}
	msgs, err := RenderReport(detect.UnauthorizedAccess, window, rows, fixedNow())
	if err != nil {
		t.Fatal(err)
	}
	if email := channels(t, msgs[0])["email"]; !strings.Contains(email, "folded into one row") {
		t.Errorf("report e-mail does not mark the folded row:\n%s", email)
	}
}
