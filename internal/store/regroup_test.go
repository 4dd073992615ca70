package store_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eks-unauthorized-access/detector/infra/local/localtest"
	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/aggregate/aggregatetest"
	"github.com/eks-unauthorized-access/detector/internal/store"
)

// split cuts ids into consecutive parts of the given sizes (the last part takes the rest).
func split(ids []string, sizes ...int) [][]string {
	var out [][]string
	for _, n := range sizes {
		n = min(n, len(ids))
		out = append(out, ids[:n])
		ids = ids[n:]
	}
	if len(ids) > 0 {
		out = append(out, ids)
	}
	return out
}

// interleave cuts ids into n parts taking every n-th id, so that every part spans all
// the items the ids were stored in.
func interleave(ids []string, n int) [][]string {
	out := make([][]string, n)
	for i, id := range ids {
		out[i%n] = append(out[i%n], id)
	}
	return out
}

// only returns the single aggregate stored for user, failing unless there is exactly one.
func (f *fixture) only(t *testing.T, user string) aggregate.Aggregate {
	t.Helper()
	aggs, err := f.store.Aggregates(context.Background(), group(user))
	if err != nil {
		t.Fatal(err)
	}
	if len(aggs) != 1 {
		t.Fatalf("Aggregates(%s) returned %d aggregates, want 1", user, len(aggs))
	}
	return aggs[0]
}

// idsPerItem returns the size of the ids set of every aggregate item, by sort key.
func (f *fixture) idsPerItem(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, item := range f.scan(t) {
		sk := item["sk"].(*types.AttributeValueMemberS).Value
		if !strings.HasPrefix(sk, "agg#") {
			continue
		}
		ss, _ := item["ids"].(*types.AttributeValueMemberSS)
		if ss != nil {
			out[sk] = len(ss.Value)
		} else {
			out[sk] = 0
		}
	}
	return out
}

// TestRegroupedRedelivery: however the same log events are regrouped into deliveries, and
// in whatever order those deliveries arrive, each event is counted exactly once, also past
// the number of ids one write checks and past the number one item holds.
func TestRegroupedRedelivery(t *testing.T) {
	db := localtest.DynamoDBForTest(t)
	ctx := context.Background()
	deliver := func(t *testing.T, f *fixture, parts [][]string) {
		t.Helper()
		for _, p := range parts {
			if err := f.store.Record(ctx, []aggregate.Aggregate{aggregatetest.Denied(window, "alice", "k1", p...)}); err != nil {
				t.Fatalf("record %d ids: %v", len(p), err)
			}
		}
	}

	t.Run("150 events in one aggregate", func(t *testing.T) {
		f := newFixture(t, db)
		all := aggregatetest.EventIDs("e", 150)
		for _, parts := range [][][]string{
			{all},
			split(all, 75, 75),
			split(all, 100, 50),
			split(all, 1, 149),
			split(all, 149, 1),
			interleave(all, 2),
			{all[140:], all[:20], all[60:100]},
		} {
			deliver(t, f, parts)
			if got := f.only(t, "alice").Count; got != 150 {
				t.Fatalf("after parts of %v ids: count %d, want 150", sizes(parts), got)
			}
		}
	})

	t.Run("first seen regrouped", func(t *testing.T) {
		// The first delivery is already a regrouping: 75 events, then all 150.
		f := newFixture(t, db)
		all := aggregatetest.EventIDs("e", 150)
		deliver(t, f, split(all, 75))
		deliver(t, f, [][]string{all})
		deliver(t, f, split(all, 100, 50))
		if got := f.only(t, "alice").Count; got != 150 {
			t.Errorf("count %d, want 150", got)
		}
	})

	t.Run("5000 events, more than one item holds", func(t *testing.T) {
		f := newFixture(t, db)
		const n = 5000
		all := aggregatetest.EventIDs("e", n)
		deliver(t, f, [][]string{all})
		items := f.idsPerItem(t)
		if len(items) < 3 {
			t.Errorf("items %v: want at least 3 for %d ids", items, n)
		}
		for sk, size := range items {
			if size > store.MaxStoredIDs+store.MaxIDsPerWrite-1 {
				t.Errorf("item %s holds %d ids, more than %d", sk, size, store.MaxStoredIDs+store.MaxIDsPerWrite-1)
			}
		}
		for _, parts := range [][][]string{
			split(all, 2500),
			split(all, 1, 1999, 2000, 1),
			split(all, 4999),
			interleave(all, 3),
			{all[4000:], all[:10], all[1990:2010]},
		} {
			deliver(t, f, parts)
			if got := f.only(t, "alice").Count; got != n {
				t.Fatalf("after parts of %v ids: count %d, want %d", sizes(parts), got, n)
			}
		}
		// New events mixed with old ones are added, to whichever item has room.
		deliver(t, f, [][]string{append(aggregatetest.EventIDs("new", 30), all[:100]...), append(aggregatetest.EventIDs("new", 40), all[4900:]...)})
		if got := f.only(t, "alice").Count; got != n+40 {
			t.Errorf("with 40 new events: count %d, want %d", got, n+40)
		}
	})

	t.Run("5000 events first delivered in parts", func(t *testing.T) {
		f := newFixture(t, db)
		const n = 5000
		all := aggregatetest.EventIDs("e", n)
		deliver(t, f, interleave(all, 7))
		deliver(t, f, [][]string{all})
		deliver(t, f, split(all, 2001, 2001))
		if got := f.only(t, "alice").Count; got != n {
			t.Errorf("count %d, want %d", got, n)
		}
	})

	t.Run("racing deliveries with overlapping ids", func(t *testing.T) {
		// Two invocations race on overlapping events across the item bound, each in its
		// own chunking; then more invocations with other overlaps join.
		f := newFixture(t, db)
		all := aggregatetest.EventIDs("e", 4000)
		runs := [][][]string{
			{all[:3000]},
			split(all[1000:], 45, 1500),
			interleave(all[500:3500], 4),
			{all[3900:], all[:100]},
		}
		var wg sync.WaitGroup
		errs := make(chan error, len(runs))
		for _, parts := range runs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, p := range parts {
					if err := f.store.Record(ctx, []aggregate.Aggregate{aggregatetest.Denied(window, "alice", "k1", p...)}); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if got := f.only(t, "alice").Count; got != int64(len(all)) {
			t.Errorf("count %d, want %d", got, len(all))
		}
		stored := 0
		for _, size := range f.idsPerItem(t) {
			stored += size
		}
		if stored != len(all) {
			t.Errorf("%d ids stored over the items, want %d (each once)", stored, len(all))
		}
	})

	t.Run("items read back as one aggregate", func(t *testing.T) {
		f := newFixture(t, db)
		all := aggregatetest.EventIDs("e", 2500)
		early, late := aggregatetest.Denied(window, "alice", "k1", all[:2100]...), aggregatetest.Denied(window, "alice", "k1", all[2100:]...)
		early.FirstSeen, early.LastSeen = window.Add(time.Minute), window.Add(2*time.Minute)
		late.FirstSeen, late.LastSeen = window.Add(40*time.Minute), window.Add(50*time.Minute)
		late.Source.LogStream = "kube-apiserver-audit-2"
		for _, a := range []aggregate.Aggregate{early, late} {
			if err := f.store.Record(ctx, []aggregate.Aggregate{a}); err != nil {
				t.Fatal(err)
			}
		}
		if items := f.idsPerItem(t); len(items) != 2 {
			t.Fatalf("items %v, want 2", items)
		}
		got := f.only(t, "alice")
		want := late
		want.Count, want.FirstSeen, want.EventIDs = 2500, early.FirstSeen, nil
		if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
			t.Errorf("read back\n%+v\nwant\n%+v", got, want)
		}
	})

	t.Run("a redelivery restarts the retention of the items before its own", func(t *testing.T) {
		// The ids of the last item are only recognised while the full items before it
		// exist: a redelivery of those ids must keep all of them alive.
		f := newFixture(t, db)
		all := aggregatetest.EventIDs("e", 5000)
		deliver(t, f, [][]string{all})
		before := f.expiry(t)
		f.clock.advance(14 * 24 * time.Hour)
		deliver(t, f, [][]string{all[4990:]})
		after := f.expiry(t)
		if len(after) < 3 {
			t.Fatalf("items %v, want at least 3", after)
		}
		for k, e := range after {
			if !e.After(before[k]) {
				t.Errorf("%s expires %s, not moved forward from %s", k, e, before[k])
			}
		}
		if got := f.only(t, "alice").Count; got != 5000 {
			t.Errorf("count %d, want 5000", got)
		}
	})
}

func sizes(parts [][]string) []int {
	out := make([]int, len(parts))
	for i, p := range parts {
		out[i] = len(p)
	}
	return out
}
