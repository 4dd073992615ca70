package alert

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/detect"
)

// reportAggregates are n aggregates of one window over two clusters, each with two source
// IPs and two groups (four Splunk rows each).
func reportAggregates(window time.Time, n int) []aggregate.Aggregate {
	var out []aggregate.Aggregate
	for i := range n {
		cluster := []string{"prod", "staging"}[i%2]
		out = append(out, aggregate.Aggregate{
			Rule: detect.UnauthorizedAccess.ID, Window: window, Key: fmt.Sprint(i), Count: int64(1 + i%3),
			Source: aggregate.Source{Cluster: cluster, Owner: "111122223333"},
			Fields: detect.Fields{
				Namespace: "kube-system", Resource: "secrets", RequestReceivedTimestamp: window.Add(time.Duration(i) * time.Second).Format(time.RFC3339Nano),
				RequestURI: "/api/v1/namespaces/kube-system/secrets", Code: "403", Message: "secrets is forbidden",
				SrcIPs: []string{"203.0.113.9", fmt.Sprintf("198.51.100.%d", i%200)}, Stage: "ResponseComplete",
				Groups: []string{"system:authenticated", "dev"}, UID: "uid", User: fmt.Sprintf("user%d", i%7), UserAgent: "kubectl/v1.34.2", Verb: "create",
			},
		})
	}
	return out
}

// TestReportRowsAreTheSplunkRows: the rows of every part of a report, merged over
// clusters, are exactly aggregate.SplunkReport of the window (the rows of replay --format
// splunk), with the risk fields on every row; a large report is split into parts that
// each fit in one SNS message, totals first in every part.
func TestReportRowsAreTheSplunkRows(t *testing.T) {
	window := time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC)
	for _, n := range []int{1, 40, 1500} {
		aggs := reportAggregates(window, n)
		msgs, err := RenderReport(detect.UnauthorizedAccess, window, ReportRows(detect.UnauthorizedAccess, aggs), window.Add(70*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		merged := map[aggregate.Row]int64{}
		var attempts int64
		for i, m := range msgs {
			if !fits(m) {
				t.Errorf("n=%d part %d is %d bytes", n, i+1, m.Size())
			}
			if m.MessageAttributes["alertKind"].StringValue != "report" {
				t.Errorf("alertKind %v", m.MessageAttributes["alertKind"])
			}
			var body map[string]string
			if err := json.Unmarshal([]byte(m.Message), &body); err != nil {
				t.Fatal(err)
			}
			var r Report
			if err := json.Unmarshal([]byte(body["lambda"]), &r); err != nil {
				t.Fatal(err)
			}
			if r.Part != i+1 || r.Parts != len(msgs) || r.Kind != KindReport || len(r.Clusters) != min(n, 2) {
				t.Errorf("n=%d part %d: part %d/%d kind %q clusters %d", n, i+1, r.Part, r.Parts, r.Kind, len(r.Clusters))
			}
			attempts = r.Attempts
			for _, row := range r.RowsInPart {
				if row.RiskScore != 49 || row.RiskObject.Value != row.User || row.ThreatObject.Value != row.SrcIP || row.RiskMessage != "Unauthorized access to Kubernetes from user "+row.User {
					t.Fatalf("risk fields of %+v", row)
				}
				c := row.Row
				n := c.Count
				c.Count = 0
				merged[c] += n
			}
		}
		want := aggregate.SplunkReport(aggs)
		got := make([]aggregate.Row, 0, len(merged))
		for r, c := range merged {
			r.Count = c
			got = append(got, r)
		}
		var wantAttempts int64
		for _, a := range aggs {
			wantAttempts += a.Count * 4
		}
		slices.SortFunc(got, func(x, y aggregate.Row) int { return compareForTest(x, y) })
		slices.SortFunc(want, func(x, y aggregate.Row) int { return compareForTest(x, y) })
		if !slices.Equal(got, want) {
			t.Errorf("n=%d: %d report rows, %d splunk rows, or they differ", n, len(got), len(want))
		}
		if attempts != wantAttempts {
			t.Errorf("n=%d: attempts %d, want %d", n, attempts, wantAttempts)
		}
		if n == 1500 && len(msgs) < 2 {
			t.Errorf("n=1500 fits in %d part", len(msgs))
		}
	}
}

func compareForTest(x, y aggregate.Row) int {
	a, _ := json.Marshal(x)
	b, _ := json.Marshal(y)
	return slices.Compare(a, b)
}

// TestReportPartFlagged: a part published again after an ambiguous publish says so in the
// subject, the attributes, the JSON, the e-mail and the chat notification, keeps its id,
// and still fits in one SNS message (parts are sized flagged).
func TestReportPartFlagged(t *testing.T) {
	window := time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC)
	parts, err := ReportParts(detect.UnauthorizedAccess, window, reportAggregates(window, 1500), window.Add(70*time.Minute), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) < 2 {
		t.Fatalf("%d parts", len(parts))
	}
	for _, p := range parts {
		plain, err := RenderReportPart(p)
		if err != nil {
			t.Fatal(err)
		}
		p.PossibleDuplicate = true
		m, err := RenderReportPart(p)
		if err != nil {
			t.Fatal(err)
		}
		if !fits(m) {
			t.Errorf("flagged part %d is %d bytes", p.Part, m.Size())
		}
		var body map[string]string
		if err := json.Unmarshal([]byte(m.Message), &body); err != nil {
			t.Fatal(err)
		}
		var r Report
		if err := json.Unmarshal([]byte(body["sqs"]), &r); err != nil {
			t.Fatal(err)
		}
		if !r.PossibleDuplicate || r.ID != plain.MessageAttributes["alertId"].StringValue || m.MessageAttributes["alertId"] != plain.MessageAttributes["alertId"] ||
			m.MessageAttributes["possibleDuplicate"].StringValue != "true" || plain.MessageAttributes["possibleDuplicate"].StringValue != "false" ||
			!strings.Contains(m.Subject, "(possible duplicate)") || strings.Contains(plain.Subject, "duplicate") ||
			!strings.Contains(body["email"], "Duplicate: possible") || !strings.Contains(body["default"], "Possible duplicate") {
			t.Errorf("part %d flagged: subject %q, attributes %v, JSON flag %v", p.Part, m.Subject, m.MessageAttributes, r.PossibleDuplicate)
		}
	}
	if none, err := ReportParts(detect.UnauthorizedAccess, window, nil, window, false); err != nil || none != nil {
		t.Errorf("an empty window without heartbeat gave %d parts, %v", len(none), err)
	}
	if beat, err := ReportParts(detect.UnauthorizedAccess, window, nil, window, true); err != nil || len(beat) != 1 || beat[0].Rows != 0 {
		t.Errorf("an empty window with heartbeat gave %+v, %v", beat, err)
	}
}
