package handler_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eks-unauthorized-access/detector/infra/local"
	"github.com/eks-unauthorized-access/detector/infra/local/localtest"
	"github.com/eks-unauthorized-access/detector/internal/alert"
	"github.com/eks-unauthorized-access/detector/internal/store"
)

// testClock is a settable clock for the store, starting at the real time: DynamoDB Local
// applies TTL by the real clock, so a clock moved forward shows what the items say about
// the future without the emulator deleting anything early.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// oldDelivery returns a delivery of three forbidden creates (two by alice, one by bob)
// received age ago, with CloudWatch Logs timestamps of the same time, and the start of
// their window.
func oldDelivery(t *testing.T, age time.Duration) ([]byte, time.Time) {
	t.Helper()
	base := -age + 5*time.Minute
	lines := []string{
		auditLine(t, "alice", "203.0.113.9", base, nil),
		auditLine(t, "alice", "203.0.113.9", base+time.Minute, nil),
		auditLine(t, "bob", "198.51.100.23", base+2*time.Minute, nil),
	}
	events := make([]logEvent, len(lines))
	for i, l := range lines {
		events[i] = logEvent{
			ID:        fmt.Sprintf("%d%055d", age/time.Hour, i),
			Timestamp: hourNow.Add(base + time.Duration(i)*time.Minute).UnixMilli(),
			Message:   l,
		}
	}
	return awslogs(gzipped(t, subscriptionMessage(t, events))), hourNow.Add(base).Truncate(time.Hour)
}

// TestTimeTravel: deliveries whose events are hours to more than a year old are counted
// once and alerted once, with the alert marked late: on the first delivery, when the same
// delivery comes back after a real delay (long enough for DynamoDB Local's TTL to delete
// anything already expired) and 14 days later by the store's clock (a redrive from the
// failure queue), and when two copies race. No item is ever written with an expiresAt in
// the past.
func TestTimeTravel(t *testing.T) {
	db, moto := localtest.DynamoDBForTest(t), localtest.MotoForTest(t, "timetravel")
	ages := []time.Duration{2 * time.Hour, 8 * 24 * time.Hour, 30 * 24 * time.Hour, 400 * 24 * time.Hour}

	for _, age := range ages {
		t.Run(fmt.Sprintf("%dh old, redelivered", age/time.Hour), func(t *testing.T) {
			r := newRig(t, db.Endpoint, moto, "timetravel")
			clock := &testClock{}
			h := r.handler(store.New(r.client(nil), store.Options{Table: r.table, Now: clock.now}), nil)
			event, window := oldDelivery(t, age)

			if err := invokeWith(h, event, "first", 30*time.Second); err != nil {
				t.Fatalf("first delivery: %v", err)
			}
			checkLateAlerts(t, r.notifications(t), window, age)
			checkExpiry(t, r, clock.now())
			want := r.countsAt(t, window, "alice", "bob")
			if total(want) != 3 {
				t.Fatalf("counts after the first delivery = %v, want 3 in all", want)
			}

			time.Sleep(3 * time.Second) // DynamoDB Local deletes an expired item within about a second
			if err := invokeWith(h, event, "again", 30*time.Second); err != nil {
				t.Fatalf("redelivery: %v", err)
			}
			clock.advance(14 * 24 * time.Hour)
			if err := invokeWith(h, event, "redrive", 30*time.Second); err != nil {
				t.Fatalf("redrive: %v", err)
			}
			if ns := r.notifications(t); len(ns) != 0 {
				t.Errorf("redeliveries published %d alerts, want 0: %v", len(ns), alertUsers(ns))
			}
			if got := r.countsAt(t, window, "alice", "bob"); !equalCounts(got, want) {
				t.Errorf("counts after the redeliveries = %v, want %v", got, want)
			}
			checkExpiry(t, r, clock.now())
		})

		t.Run(fmt.Sprintf("%dh old, two copies race", age/time.Hour), func(t *testing.T) {
			r := newRig(t, db.Endpoint, moto, "timetravel")
			event, window := oldDelivery(t, age)
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// Each copy has its own handler and store, as two Lambda instances would.
					errs[i] = invokeWith(r.handler(nil, nil), event, "copy-"+strconv.Itoa(i), 30*time.Second)
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("copy %d: %v", i, err)
				}
			}
			checkLateAlerts(t, r.notifications(t), window, age)
			if got := r.countsAt(t, window, "alice", "bob"); total(got) != 3 {
				t.Errorf("counts after the race = %v, want 3 in all", got)
			}
			checkExpiry(t, r, time.Now())
		})
	}
}

// checkLateAlerts checks that ns are exactly one alert for alice and one for bob in
// window, each marked late by at least the time since the window ended.
func checkLateAlerts(t *testing.T, ns []local.Notification, window time.Time, age time.Duration) {
	t.Helper()
	if got := alertUsers(ns); len(got) != 2 || got[0] != "alice" || got[1] != "bob" {
		t.Fatalf("alerts for %v, want one for alice and one for bob", got)
	}
	for _, n := range ns {
		var a alert.Alert
		if err := json.Unmarshal([]byte(n.Message), &a); err != nil {
			t.Fatalf("alert is not the structured JSON: %v", err)
		}
		if !a.Window.Start.Equal(window) {
			t.Errorf("alert window %s, want %s", a.Window.Start, window)
		}
		wantLate := time.Since(window.Add(time.Hour)) - time.Minute // the alert was built a moment ago
		if !a.Late || time.Duration(a.LateSeconds)*time.Second < wantLate {
			t.Errorf("events %s old: alert late=%v by %ds, want late by at least %s", age, a.Late, a.LateSeconds, wantLate)
		}
	}
}

// checkExpiry checks that every item of the rig's table expires at least the default
// retention after now, and is not already expired by the real clock.
func checkExpiry(t *testing.T, r *rig, now time.Time) {
	t.Helper()
	items := r.items(t)
	if len(items) == 0 {
		t.Fatal("table is empty")
	}
	for _, item := range items {
		n, _ := item["expiresAt"].(*types.AttributeValueMemberN)
		if n == nil {
			t.Fatalf("item %v has no expiresAt", item["sk"])
		}
		sec, _ := strconv.ParseInt(n.Value, 10, 64)
		exp := time.Unix(sec, 0)
		if exp.Before(time.Now()) || exp.Before(now.Add(store.DefaultRetention)) {
			t.Errorf("item %v expires %s: before now (%s) + retention", item["sk"], exp.UTC(), now.UTC())
		}
	}
}

func total(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

func equalCounts(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
