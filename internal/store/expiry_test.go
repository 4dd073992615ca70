package store_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eks-unauthorized-access/detector/infra/local/localtest"
	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/aggregate/aggregatetest"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/store"
)

func TestExpiresAt(t *testing.T) {
	w := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	const retention = 15 * 24 * time.Hour
	for _, tc := range []struct {
		name string
		now  time.Time
		want time.Time
	}{
		{"written during its window", w.Add(20 * time.Minute), w.Add(time.Hour + retention)},
		{"written at its window's end", w.Add(time.Hour), w.Add(time.Hour + retention)},
		{"written a minute after its window", w.Add(61 * time.Minute), w.Add(2*time.Hour + retention)},
		{"written 400 days later", w.Add(400*24*time.Hour + 90*time.Minute), w.Add(400*24*time.Hour + 2*time.Hour + retention)},
		{"written before its window (clock skew)", w.Add(-time.Hour), w.Add(time.Hour + retention)},
	} {
		if got := store.ExpiresAt(w, tc.now, retention); !got.Equal(tc.want) {
			t.Errorf("%s: ExpiresAt = %s, want %s", tc.name, got, tc.want)
		}
		if got := store.ExpiresAt(w, tc.now, retention); got.Before(tc.now.Add(retention)) {
			t.Errorf("%s: ExpiresAt = %s, less than the retention after the write", tc.name, got)
		}
	}
}

// expiry returns the expiresAt of every item of the table, by sort key and window.
func (f *fixture) expiry(t *testing.T) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	for _, item := range f.scan(t) {
		n, ok := item["expiresAt"].(*types.AttributeValueMemberN)
		if !ok {
			t.Fatalf("item %v has no numeric expiresAt", item["pk"])
		}
		sec, err := strconv.ParseInt(n.Value, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		pk := item["pk"].(*types.AttributeValueMemberS).Value
		sk := item["sk"].(*types.AttributeValueMemberS).Value
		out[pk+" "+sk] = time.Unix(sec, 0).UTC()
	}
	return out
}

// TestExpiryOfLateData: whatever the age of the events, no write leaves an item whose
// expiresAt is in the past or less than the retention ahead, so DynamoDB's TTL cannot
// delete the idempotency record before the delivery can come back; and a redelivery that
// finds everything already counted and sent restarts the retention of the items it found.
func TestExpiryOfLateData(t *testing.T) {
	db := localtest.DynamoDBForTest(t)
	ctx := context.Background()
	for _, age := range []time.Duration{0, 2 * time.Hour, 8 * 24 * time.Hour, 30 * 24 * time.Hour, 400 * 24 * time.Hour} {
		t.Run(age.String(), func(t *testing.T) {
			f := newFixture(t, db)
			w := window.Add(-age)
			g := store.GroupKey{Rule: detect.UnauthorizedAccess.ID, Window: w, Group: "alice"}
			checkAhead := func(stage string) map[string]time.Time {
				t.Helper()
				exp := f.expiry(t)
				if len(exp) == 0 {
					t.Fatalf("%s: table is empty", stage)
				}
				for k, e := range exp {
					if least := f.clock.now().Add(store.DefaultRetention); e.Before(least) {
						t.Errorf("%s: %s expires %s, before now + retention (%s)", stage, k, e, least)
					}
					if e.Before(time.Now()) {
						t.Errorf("%s: %s expires %s, in the past", stage, k, e)
					}
				}
				return exp
			}

			if err := f.store.Record(ctx, []aggregate.Aggregate{aggregatetest.Denied(w, "alice", "k1", "e1", "e2"), aggregatetest.Denied(w, "alice", "k2", aggregatetest.EventIDs("x", 95)...)}); err != nil {
				t.Fatal(err)
			}
			c, err := f.store.Claim(ctx, g, time.Minute)
			if err != nil || c.Outcome != store.Claimed {
				t.Fatalf("Claim = %+v, %v", c, err)
			}
			checkAhead("claimed")
			if err := f.store.MarkSent(ctx, c, "m-1"); err != nil {
				t.Fatal(err)
			}
			first := checkAhead("sent")

			// The same delivery comes back 14 days later (a redrive from the failure queue).
			f.clock.advance(14 * 24 * time.Hour)
			if err := f.store.Record(ctx, []aggregate.Aggregate{aggregatetest.Denied(w, "alice", "k1", "e1", "e2"), aggregatetest.Denied(w, "alice", "k2", aggregatetest.EventIDs("x", 95)...)}); err != nil {
				t.Fatal(err)
			}
			again, err := f.store.Claim(ctx, g, time.Minute)
			if err != nil || again.Outcome != store.AlreadySent || again.MessageID != "m-1" {
				t.Fatalf("Claim after the redrive = %+v, %v; want alreadySent m-1", again, err)
			}
			if got := f.counts(t, g); got["k1"] != 2 || got["k2"] != 95 {
				t.Errorf("counts after the redrive = %v, want k1 2, k2 95", got)
			}
			for k, e := range checkAhead("redriven") {
				if !e.After(first[k]) {
					t.Errorf("redrive did not restart the retention of %s: %s, was %s", k, e, first[k])
				}
			}
		})
	}
}
