package e2e

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eks-unauthorized-access/detector/infra/local"
	"github.com/eks-unauthorized-access/detector/infra/local/localtest"
	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/alert"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/pipeline"
)

// TestLifecycle runs both real bootstraps under the emulator against one table and topic:
// the first alerts of events/cloudwatch-iam-user.json, then the burst that takes alice's
// first window to 10 attempts (one escalation), then the hourly report of that window as
// the schedule fires it (its rows are the replay --format splunk rows of the window), then
// a redelivery of everything, the report fired again by the schedule and by hand: nothing
// new reaches the subscriber.
func TestLifecycle(t *testing.T) {
	stack := localtest.ReportStackForTest(t, "e2e-lifecycle", "e2e-lifecycle")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	first, burst := readEvent(t, "cloudwatch-iam-user.json"), readEvent(t, "cloudwatch-iam-user-burst.json")
	const window = "2026-11-24T08:00:00Z"
	scheduled := []byte(`{"scheduledTime":"2026-11-24T09:10:00Z"}`) // the schedule's input, 10 past the next hour

	// First alerts: one per window, with the seed's risk fields.
	invokeOK(ctx, t, stack, first)
	alerts := drainKind(ctx, t, stack, alert.KindFirst)
	if len(alerts) != 2 {
		t.Fatalf("first delivery: %d alerts, want 2", len(alerts))
	}
	var firstID string
	for _, a := range alerts {
		checkRisk(t, a)
		if a.Window.Start.Format(time.RFC3339) == window {
			firstID = a.ID
		}
	}

	// The burst: one escalation, at 10, linked to the window's first alert.
	invokeOK(ctx, t, stack, burst)
	updates := drainKind(ctx, t, stack, alert.KindEscalation)
	if len(updates) != 1 {
		t.Fatalf("burst: %d updates, want 1", len(updates))
	}
	u := updates[0]
	checkRisk(t, u)
	if e := u.Escalation; e == nil || e.Threshold != 10 || e.From != 2 || e.To != 10 || e.FirstAlertID != firstID ||
		!slices.Equal(e.NewSrcIPs, []string{"192.0.2.50"}) || !slices.Contains(e.NewUserAgents, "python-requests/2.32.3") {
		t.Errorf("escalation %+v, want 2 → 10 at threshold 10, new IP 192.0.2.50, linked to %s", u.Escalation, firstID)
	}
	if u.Attempts != 10 || u.ID != alert.EscalationID(firstID, 10) || u.PossibleDuplicate {
		t.Errorf("update: attempts %d, id %s, possibleDuplicate %v", u.Attempts, u.ID, u.PossibleDuplicate)
	}

	// The report of the window, as the schedule fires it.
	invokeReport(ctx, t, stack, scheduled)
	reports := drainReports(ctx, t, stack)
	if len(reports) != 1 || reports[0].Parts != 1 || reports[0].Window.Start.Format(time.RFC3339) != window {
		t.Fatalf("report: %+v, want one part of the report of %s", reports, window)
	}
	r := reports[0]
	want := splunkRows(t, window, first, burst)
	var got []aggregate.Row
	for _, row := range r.RowsInPart {
		if row.Cluster != "prod-cluster" || row.Account != "111122223333" || row.RiskScore != 49 ||
			row.RiskObject.Field != "user" || row.RiskObject.Value != "alice" || row.ThreatObject.Field != "src_ip" ||
			row.ThreatObject.Value != row.SrcIP || row.RiskMessage != "Unauthorized access to Kubernetes from user alice" {
			t.Errorf("report row %+v: want prod-cluster, account 111122223333 and the seed's risk fields", row)
		}
		got = append(got, row.Row)
	}
	if !slices.Equal(got, want) {
		t.Errorf("report rows differ from the splunk rows of %s:\n got %+v\nwant %+v", window, got, want)
	}
	if r.Attempts != 11 || r.Rows != len(want) || len(r.Clusters) != 1 {
		// 11: the clusterrolebindings attempt came from two source IPs, two rows.
		t.Errorf("report totals: %d attempts, %d rows, clusters %+v; want 11, %d, one", r.Attempts, r.Rows, r.Clusters, len(want))
	}

	// Everything again: nothing new.
	invokeOK(ctx, t, stack, first)
	invokeOK(ctx, t, stack, burst)
	invokeReport(ctx, t, stack, scheduled)
	invokeReport(ctx, t, stack, []byte(`{"window":"`+window+`"}`))
	notes, err := stack.Moto.Drain(ctx, stack.Topic)
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 0 {
		var subjects []string
		for _, n := range notes {
			subjects = append(subjects, n.Subject)
		}
		t.Errorf("redelivery published %d messages, want none: %q", len(notes), subjects)
	}
}

// checkRisk checks the seed's risk fields on an alert or update for alice.
func checkRisk(t *testing.T, a alert.Alert) {
	t.Helper()
	if a.RiskScore != 49 || a.RiskObject.Field != "user" || a.RiskObject.Value != "alice" ||
		a.RiskMessage != "Unauthorized access to Kubernetes from user alice" || len(a.ThreatObjects) == 0 {
		t.Errorf("%s alert %s: risk score %d, object %+v, message %q, %d threat objects", a.Kind, a.ID, a.RiskScore, a.RiskObject, a.RiskMessage, len(a.ThreatObjects))
	}
	for _, o := range a.ThreatObjects {
		if o.Field != "src_ip" || o.Value == "" {
			t.Errorf("threat object %+v, want a src_ip", o)
		}
	}
}

// drainKind reads the structured alerts on the topic's queue (drainAlerts) and checks
// that each is of kind.
func drainKind(ctx context.Context, t *testing.T, stack *local.FunctionStack, kind alert.Kind) []alert.Alert {
	t.Helper()
	out := drainAlerts(ctx, t, stack)
	for _, a := range out {
		if a.Kind != kind {
			t.Errorf("alert %s is a %q, want %q", a.ID, a.Kind, kind)
		}
	}
	return out
}

// drainReports reads the report parts on the topic's queue.
func drainReports(ctx context.Context, t *testing.T, stack *local.FunctionStack) []alert.Report {
	t.Helper()
	notes, err := stack.Moto.Drain(ctx, stack.Topic)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]alert.Report, 0, len(notes))
	for _, n := range notes {
		dec := json.NewDecoder(strings.NewReader(n.Message))
		dec.DisallowUnknownFields()
		var r alert.Report
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("not a structured report: %v", err)
		}
		if r.Kind != alert.KindReport || n.MessageAttributes["alertKind"].Value != string(alert.KindReport) ||
			n.MessageAttributes["alertId"].Value != r.ID || n.MessageAttributes["possibleDuplicate"].Value != "false" {
			t.Errorf("report %q: kind %q, attributes %+v", n.Subject, r.Kind, n.MessageAttributes)
		}
		out = append(out, r)
	}
	return out
}

// invokeReport invokes the report function.
func invokeReport(ctx context.Context, t *testing.T, stack *local.FunctionStack, event []byte) {
	t.Helper()
	resp, err := stack.Report.Invoke(ctx, event)
	if err != nil {
		t.Fatalf("invoke the report function: %v\nemulator output:\n%s", err, stack.Report.Logs())
	}
	if strings.TrimSpace(string(resp)) != "null" {
		t.Fatalf("the report function returned %s, want null", resp)
	}
}

// splunkRows are the rows replay --format splunk prints for window over events: the
// function's own pipeline and aggregate.SplunkReport.
func splunkRows(t *testing.T, window string, events ...[]byte) []aggregate.Row {
	t.Helper()
	b := pipeline.New(pipeline.Options{Rule: detect.UnauthorizedAccess, Mode: detect.ModeSeed, GroupBy: aggregate.GroupByUser}).NewBatch()
	for _, ev := range events {
		if err := b.AddEvent(ev); err != nil {
			t.Fatal(err)
		}
	}
	return slices.DeleteFunc(aggregate.SplunkReport(b.Result().Aggregates), func(r aggregate.Row) bool { return r.Window != window })
}
