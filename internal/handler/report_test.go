package handler_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

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
	st := store.New(r.client(nil), store.Options{Table: r.table})
	h := handler.New(handler.Options{
		Store: st, Lifecycle: st, Rule: detect.UnauthorizedAccess, ClaimLease: time.Minute,
		Publisher: notify.New(moto.SNSClient(), moto.TopicARN("report")),
		Logger:    handler.NewLogger(r.log, slog.LevelInfo),
		Report:    handler.ReportOptions{Reports: st},
	})
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
