package handler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/eks-unauthorized-access/detector/infra/local"
	"github.com/eks-unauthorized-access/detector/infra/local/localtest"
	"github.com/eks-unauthorized-access/detector/internal/alert"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/handler"
	"github.com/eks-unauthorized-access/detector/internal/notify"
	"github.com/eks-unauthorized-access/detector/internal/store"
)

// TestReportExactlyOnce: after deliveries of the current hour, the report function is
// fired eight times at once and then again (a schedule firing twice, retries): one report
// is published, found through the window index, with the window's attempts.
func TestReportExactlyOnce(t *testing.T) {
	db, moto := localtest.DynamoDBForTest(t), localtest.MotoForTest(t, "report")
	r := newRig(t, db.Endpoint, moto, "report")
	if err := invokeWith(r.lifecycleHandler(nil), attackEvents(t, span(0, 12)...), "d1", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	r.notifications(t)
	h := r.reportHandler(nil)
	event := []byte(fmt.Sprintf(`{"window":%q}`, hourNow.Format(time.RFC3339)))
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = h.InvokeReport(context.Background(), event)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil { // held by a concurrent firing: the retry finds it sent
			if _, err := h.InvokeReport(context.Background(), event); err != nil {
				t.Fatalf("firing %d retried: %v", i, err)
			}
		}
	}
	if _, err := h.InvokeReport(context.Background(), event); err != nil {
		t.Fatal(err)
	}
	ns := r.notifications(t)
	if got := kinds(ns); !slices.Equal(got, []string{string(alert.KindReport)}) {
		t.Fatalf("published %q, want one report", got)
	}
	if ns[0].MessageAttributes["window"].Value != hourNow.Format(time.RFC3339) {
		t.Errorf("report window %v", ns[0].MessageAttributes["window"])
	}
	// An empty window publishes nothing (no heartbeat by default).
	empty := []byte(fmt.Sprintf(`{"window":%q}`, hourNow.Add(-3*time.Hour).Format(time.RFC3339)))
	if _, err := h.InvokeReport(context.Background(), empty); err != nil {
		t.Fatal(err)
	}
	if got := kinds(r.notifications(t)); len(got) != 0 {
		t.Fatalf("an empty window published %q", got)
	}
}

// TestReportPartAnswerLost: a report in several parts whose second part's publish is
// applied by SNS and answered 500. The firing fails (so that Lambda retries it); the
// retry publishes that part again with the same id, flagged as a possible duplicate, and
// the other parts once each, unflagged; a third firing publishes nothing.
func TestReportPartAnswerLost(t *testing.T) {
	db, moto := localtest.DynamoDBForTest(t), localtest.MotoForTest(t, "reportlost")
	r := newRig(t, db.Endpoint, moto, "reportlost")
	if err := invokeWith(r.lifecycleHandler(nil), attackEvents(t, span(0, 150)...), "d1", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	r.notifications(t)
	publishes := 0
	lost := &faultyProxy{times: 1, f: applyThen500, pick: func(op string, body []byte) bool {
		if !isPublish(op, body) {
			return false
		}
		publishes++
		return publishes == 2
	}}
	event := []byte(fmt.Sprintf(`{"window":%q}`, hourNow.Format(time.RFC3339)))
	if _, err := r.reportHandler(lost).InvokeReport(context.Background(), event); err == nil {
		t.Fatalf("the firing succeeded although a part's publish had no answer; %d publishes; log:\n%s", publishes, r.log.String())
	}
	if lost.hits != 1 {
		t.Fatalf("the fault was injected %d times, want 1", lost.hits)
	}
	first := reportParts(t, r.notifications(t))
	if _, err := r.reportHandler(nil).InvokeReport(context.Background(), event); err != nil {
		t.Fatalf("retry: %v", err)
	}
	retry := reportParts(t, r.notifications(t))
	if _, err := r.reportHandler(nil).InvokeReport(context.Background(), event); err != nil {
		t.Fatal(err)
	}
	if again := r.notifications(t); len(again) != 0 {
		t.Fatalf("a third firing published %d messages", len(again))
	}

	if len(first) != 2 || first[0].Part != 1 || first[1].Part != 2 || first[0].PossibleDuplicate || first[1].PossibleDuplicate {
		t.Fatalf("the failed firing delivered %+v, want parts 1 and 2 unflagged", summarize(first))
	}
	parts := first[0].Parts
	if parts < 3 {
		t.Fatalf("the report has %d parts, want at least 3", parts)
	}
	if len(retry) != parts-1 || retry[0].Part != 2 || !retry[0].PossibleDuplicate || retry[0].ID != first[1].ID {
		t.Fatalf("the retry delivered %+v, want part 2 flagged with id %s, then parts 3..%d", summarize(retry), first[1].ID, parts)
	}
	for i, p := range retry[1:] {
		if p.Part != i+3 || p.PossibleDuplicate || p.Parts != parts {
			t.Errorf("retry part %+v, want part %d of %d unflagged", summarize([]alert.Report{p}), i+3, parts)
		}
	}
	// The flagged copy carries the same rows as the part it repeats.
	if !slices.EqualFunc(retry[0].RowsInPart, first[1].RowsInPart, func(x, y alert.ReportRow) bool { return x == y }) {
		t.Error("the flagged copy of part 2 has other rows than part 2")
	}
}

// reportHandler is a handler of the report function on the rig's table and topic, its
// publishes sent through p when not nil.
func (r *rig) reportHandler(p *faultyProxy) *handler.Handler {
	st := store.New(r.client(nil), store.Options{Table: r.table})
	client := r.moto.SNSClient()
	if p != nil {
		client = r.moto.SNSClient(func(o *sns.Options) { o.HTTPClient = &http.Client{Transport: p} })
	}
	return handler.New(handler.Options{
		Store: st, Lifecycle: st, Rule: detect.UnauthorizedAccess, ClaimLease: time.Minute,
		Publisher: notify.New(client, r.moto.TopicARN(r.topic)),
		Logger:    handler.NewLogger(r.log, slog.LevelInfo),
		Report:    handler.ReportOptions{Reports: st},
	})
}

// reportParts decodes the report parts among notifications, ordered by part, and checks
// that their attributes agree with their JSON.
func reportParts(t *testing.T, ns []local.Notification) []alert.Report {
	t.Helper()
	out := make([]alert.Report, 0, len(ns))
	for _, n := range ns {
		var r alert.Report
		if err := json.Unmarshal([]byte(n.Message), &r); err != nil {
			t.Fatalf("not a structured report: %v", err)
		}
		a := n.MessageAttributes
		if a["alertKind"].Value != "report" || a["alertId"].Value != r.ID || a["possibleDuplicate"].Value != fmt.Sprint(r.PossibleDuplicate) ||
			a["part"].Value != fmt.Sprint(r.Part) || strings.Contains(n.Subject, "possible duplicate") != r.PossibleDuplicate {
			t.Errorf("subject %q, attributes %v disagree with the part (id %s, part %d, possibleDuplicate %v)", n.Subject, a, r.ID, r.Part, r.PossibleDuplicate)
		}
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(x, y alert.Report) int { return x.Part - y.Part })
	return out
}

type partSummary struct {
	Part, Parts int
	ID          string
	Flagged     bool
}

func summarize(rs []alert.Report) []partSummary {
	out := make([]partSummary, 0, len(rs))
	for _, r := range rs {
		out = append(out, partSummary{r.Part, r.Parts, r.ID, r.PossibleDuplicate})
	}
	return out
}
