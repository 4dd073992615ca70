package handler_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/eks-unauthorized-access/detector/infra/local"
	"github.com/eks-unauthorized-access/detector/infra/local/localtest"
	"github.com/eks-unauthorized-access/detector/internal/alert"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/handler"
	"github.com/eks-unauthorized-access/detector/internal/notify"
	"github.com/eks-unauthorized-access/detector/internal/pipeline"
	"github.com/eks-unauthorized-access/detector/internal/store"
)

// TestFloodGuard: 500 distinct users denied in one window of one log group, delivered by
// concurrent, overlapping invocations and then all delivered again, give exactly 20 alerts
// of their own and one "many users" alert (at most 21), while the table counts every
// event of every user.
func TestFloodGuard(t *testing.T) {
	db, moto := localtest.DynamoDBForTest(t), localtest.MotoForTest(t, "flood")
	r := newRig(t, db.Endpoint, moto, "flood")
	const users, maxGroups, invocations = 500, 20, 10
	st := store.New(r.client(nil), store.Options{Table: r.table})
	h := handler.New(handler.Options{
		Processor: pipeline.New(r.opts), Store: st, Lifecycle: st, Flood: st, MaxGroups: maxGroups,
		Publisher: notify.New(r.moto.SNSClient(), r.moto.TopicARN(r.topic)),
		Rule:      detect.UnauthorizedAccess, Alert: alert.Options{Region: local.Region},
		ClaimLease: time.Minute, Concurrency: 8, Logger: handler.NewLogger(r.log, slog.LevelInfo),
	})
	var lines, ids, names []string
	for u := range users {
		name := fmt.Sprintf("flood-user-%03d", u)
		names = append(names, name)
		lines = append(lines, auditLine(t, name, "192.0.2.70", time.Duration(u)*time.Second, nil))
		ids = append(ids, fmt.Sprintf("%056d", 2_000_000+u))
	}
	// Each invocation carries 100 users; consecutive ones overlap by half.
	var events [][]byte
	for i := range invocations {
		start := (i * 50) % users
		var ls, is []string
		for k := range 100 {
			ls, is = append(ls, lines[(start+k)%users]), append(is, ids[(start+k)%users])
		}
		events = append(events, delivery(t, ls, is))
	}
	run := func(round string) {
		var wg sync.WaitGroup
		errs := make([]error, len(events))
		for i := range events {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = invokeWith(h, events[i], fmt.Sprint(round, i), 2*time.Minute)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("%s invocation %d: %v", round, i, err)
			}
		}
	}
	run("flood-")
	run("flood-again-")
	notes := r.notifications(t)
	var own, many int
	for _, n := range notes {
		switch n.MessageAttributes["alertKind"].Value {
		case string(alert.KindFirst):
			own++
		case string(alert.KindFlood):
			many++
			var a alert.Alert
			if err := json.Unmarshal([]byte(n.Message), &a); err != nil {
				t.Fatal(err)
			}
			if a.Flood == nil || a.Flood.MaxGroups != maxGroups || a.Flood.Groups <= maxGroups || len(a.Flood.Users) == 0 {
				t.Errorf("many-users alert: %+v", a.Flood)
			}
		default:
			t.Errorf("unexpected alert kind %q", n.MessageAttributes["alertKind"].Value)
		}
	}
	if own != maxGroups || many != 1 || len(notes) > maxGroups+1 {
		t.Errorf("%d alerts: %d of their own and %d many-users; want %d and 1", len(notes), own, many, maxGroups)
	}
	var folded float64
	for _, s := range r.summaries(t) {
		folded += s["groupsFolded"].(float64)
	}
	if folded != 4*(users-maxGroups) {
		t.Errorf("summaries report %v groups folded, want %d (each folded group in two deliveries, in both rounds)", folded, 4*(users-maxGroups))
	}
	// Nothing is lost from the table: every user's event is counted, once.
	counts := r.counts(t, names...)
	var total int64
	for _, c := range counts {
		total += c
	}
	if len(counts) != users || total != users {
		t.Errorf("table counts %d events of %d users, want %d of %d", total, len(counts), users, users)
	}
}
