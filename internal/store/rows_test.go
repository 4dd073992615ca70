package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/eks-unauthorized-access/detector/infra/local/localtest"
	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/aggregate/aggregatetest"
	"github.com/eks-unauthorized-access/detector/internal/audit"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/store"
)

// rowsFixture is a fixture whose store keeps at most bound rows per group.
func rowsFixture(t *testing.T, f *fixture, bound int) *store.Store {
	t.Helper()
	return store.New(f.client, store.Options{Table: f.table, Now: f.clock.now, MaxRowsPerGroup: bound})
}

// rowAggs returns n aggregates of alice with keys k00, k01, ... and ids of their own.
func rowAggs(n, idsEach int) []aggregate.Aggregate {
	out := make([]aggregate.Aggregate, n)
	for i := range out {
		key := fmt.Sprintf("k%02d", i)
		out[i] = aggregatetest.Denied(window, "alice", key, aggregatetest.EventIDs(key+"-e", idsEach)...)
	}
	return out
}

// TestRowBound: past the bound on rows per group, events are folded into one overflow
// aggregate with an exact count; the rows that were admitted keep theirs; redeliveries,
// regroupings and concurrent deliveries change neither the count nor which row an event
// is counted in.
func TestRowBound(t *testing.T) {
	db := localtest.DynamoDBForTest(t)
	ctx := context.Background()
	const bound = 3

	// check asserts the stored rows: the admitted keys with their counts, and the
	// overflow with the rest; the total is always all events, once.
	check := func(t *testing.T, s *store.Store, wantRows int, wantTotal int64) map[string]int64 {
		t.Helper()
		got, err := s.Aggregates(ctx, group("alice"))
		if err != nil {
			t.Fatal(err)
		}
		counts := map[string]int64{}
		var total int64
		rows := 0
		for _, a := range got {
			counts[a.Key] = a.Count
			total += a.Count
			if a.Folded() {
				if a.Fields.User != "alice" || a.Fields.Namespace != "" || len(a.Fields.SrcIPs) != 0 {
					t.Errorf("overflow fields = %+v, want only the user", a.Fields)
				}
				continue
			}
			rows++
		}
		if rows != wantRows || total != wantTotal {
			t.Fatalf("rows %d, total %d (%v); want %d rows, total %d", rows, total, counts, wantRows, wantTotal)
		}
		return counts
	}

	t.Run("fold past the bound, exactly once under redelivery", func(t *testing.T) {
		f := newFixture(t, db)
		s := rowsFixture(t, f, bound)
		batch := rowAggs(7, 4) // 7 rows of 4 events
		if err := s.Record(ctx, batch); err != nil {
			t.Fatal(err)
		}
		first := check(t, s, bound, 28)
		if first[aggregate.OverflowKey] != 16 {
			t.Fatalf("overflow count = %d, want 16 (4 rows of 4)", first[aggregate.OverflowKey])
		}
		for range 2 {
			if err := s.Record(ctx, batch); err != nil {
				t.Fatal(err)
			}
		}
		if again := check(t, s, bound, 28); fmt.Sprint(again) != fmt.Sprint(first) {
			t.Fatalf("after redelivery %v, want %v", again, first)
		}
	})

	t.Run("a refused row stays folded and an admitted one stays its own", func(t *testing.T) {
		f := newFixture(t, db)
		s := rowsFixture(t, f, bound)
		all := rowAggs(6, 4)
		// k05 and k04 arrive first, then the others: the first three keys seen are admitted.
		for _, part := range [][]aggregate.Aggregate{{all[5]}, {all[4]}, {all[0], all[1]}, all} {
			if err := s.Record(ctx, part); err != nil {
				t.Fatal(err)
			}
		}
		got := check(t, s, bound, 24)
		for _, k := range []string{"k05", "k04", "k00"} {
			if got[k] != 4 {
				t.Errorf("row %s count = %d, want 4 (admitted first): %v", k, got[k], got)
			}
		}
		// New events of a refused row (k01) and of an admitted one (k05), delivered alone
		// and with the old ones: they go where their row went, once.
		more := []aggregate.Aggregate{
			aggregatetest.Denied(window, "alice", "k01", append(aggregatetest.EventIDs("k01-e", 4), "k01-new")...),
			aggregatetest.Denied(window, "alice", "k05", append(aggregatetest.EventIDs("k05-e", 4), "k05-new")...),
		}
		for range 2 {
			if err := s.Record(ctx, more); err != nil {
				t.Fatal(err)
			}
		}
		got = check(t, s, bound, 26)
		if got["k05"] != 5 || got[aggregate.OverflowKey] != 13 {
			t.Fatalf("after new events: %v; want k05 5 and overflow 13", got)
		}
	})

	t.Run("concurrent deliveries admit at most the bound", func(t *testing.T) {
		f := newFixture(t, db)
		s := rowsFixture(t, f, bound)
		all := rowAggs(16, 3)
		var wg sync.WaitGroup
		errs := make(chan error, 2*len(all))
		for round := range 2 { // every row delivered twice, by 16 concurrent calls each time
			for i := range all {
				wg.Go(func() {
					// each call carries its own row and its neighbour's
					errs <- s.Record(ctx, []aggregate.Aggregate{all[i], all[(i+round+1)%len(all)]})
				})
			}
			wg.Wait()
		}
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		check(t, s, bound, 48)
	})

	t.Run("no bound", func(t *testing.T) {
		f := newFixture(t, db)
		s := rowsFixture(t, f, -1)
		if err := s.Record(ctx, rowAggs(12, 2)); err != nil {
			t.Fatal(err)
		}
		check(t, s, 12, 24)
	})
}

// TestThinRows: a delivery of more distinct rows than the bound reaches the store with the
// rows past the bound thin (no values; aggregate.Accumulator.ThinAfter). They are admitted
// only after the delivery's whole rows, so they find no room; a thin row whose key already
// has a row counts there and leaves its values as they were; every event is counted once.
func TestThinRows(t *testing.T) {
	db := localtest.DynamoDBForTest(t)
	ctx := context.Background()
	const bound = 3
	thin := func(a aggregate.Aggregate) aggregate.Aggregate {
		a.Thin = true
		a.Fields = detect.Fields{User: a.Fields.User, UID: a.Fields.UID, Groups: a.Fields.Groups}
		a.Identity = audit.Identity{}
		return a
	}
	f := newFixture(t, db)
	s := rowsFixture(t, f, bound)
	all := rowAggs(8, 2)
	// An earlier delivery admitted k07 with its values.
	if err := s.Record(ctx, all[7:8]); err != nil {
		t.Fatal(err)
	}
	// This one: three whole rows (k00 sorts before them all, so sorted order alone would
	// admit thin rows first), thin k03..k06 and thin k07.
	k07 := all[7] // new events of k07's row
	k07.EventIDs = aggregatetest.EventIDs("k07-new", 2)
	batch := []aggregate.Aggregate{all[4], all[5], all[6], thin(all[0]), thin(all[1]), thin(all[2]), thin(all[3]), thin(k07)}
	for range 2 { // and its redelivery
		if err := s.Record(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Aggregates(ctx, group("alice"))
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{}
	var total int64
	for _, a := range got {
		counts[a.Key] = a.Count
		total += a.Count
		if !a.Folded() && (a.Fields.RequestURI == "" || a.Fields.Namespace == "" || a.Identity.ARN == "") {
			t.Errorf("row %s lost its values: %+v", a.Key, a.Fields)
		}
	}
	// Room for two: k04 and k05 (whole) take it; k06 and the thin k00..k03 are folded.
	want := map[string]int64{"k07": 4, "k04": 2, "k05": 2, aggregate.OverflowKey: 10}
	if fmt.Sprint(counts) != fmt.Sprint(want) || total != 18 {
		t.Errorf("rows %v (total %d), want %v (18)", counts, total, want)
	}
}
