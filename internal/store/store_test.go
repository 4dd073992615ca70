package store_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eks-unauthorized-access/detector/infra/local"
	"github.com/eks-unauthorized-access/detector/infra/local/localtest"
	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/aggregate/aggregatetest"
	"github.com/eks-unauthorized-access/detector/internal/audit"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/store"
)

// window is the current hour: DynamoDB Local deletes items whose TTL (expiresAt) has
// passed by the real clock, so test data must not be older than the retention.
var window = time.Now().UTC().Truncate(time.Hour)

// clock is a settable test clock.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock { c := &clock{}; c.ns.Store(t.UnixNano()); return c }
func (c *clock) now() time.Time   { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) advance(d time.Duration) {
	c.ns.Add(int64(d))
}

type fixture struct {
	client *dynamodb.Client
	table  string
	clock  *clock
	store  *store.Store
}

var tableSeq atomic.Int64

func newFixture(t *testing.T, db *local.DynamoDB) *fixture {
	t.Helper()
	f := &fixture{client: db.Client(), table: fmt.Sprintf("detector-%d", tableSeq.Add(1)), clock: newClock(window.Add(30 * time.Minute))}
	if err := store.CreateTable(context.Background(), f.client, f.table); err != nil {
		t.Fatal(err)
	}
	f.store = store.New(f.client, store.Options{Table: f.table, Now: f.clock.now})
	return f
}

// count returns the stored aggregate counts of a group by key.
func (f *fixture) counts(t *testing.T, g store.GroupKey) map[string]int64 {
	t.Helper()
	aggs, err := f.store.Aggregates(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int64{}
	for _, a := range aggs {
		m[a.Key] = a.Count
	}
	return m
}

func (f *fixture) scan(t *testing.T) []map[string]types.AttributeValue {
	t.Helper()
	out, err := f.client.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(f.table)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Items
}

func group(user string) store.GroupKey {
	return store.GroupKey{Rule: detect.UnauthorizedAccess.ID, Window: window, Group: user}
}

func TestStore(t *testing.T) {
	db := localtest.DynamoDBForTest(t)
	ctx := context.Background()

	t.Run("redelivery counts once", func(t *testing.T) {
		f := newFixture(t, db)
		batch := []aggregate.Aggregate{aggregatetest.Denied(window, "alice", "k1", "e1", "e2", "e3"), aggregatetest.Denied(window, "alice", "k2", "e4"), aggregatetest.Denied(window, "bob", "k3", "e5", "e6")}
		for range 3 {
			if err := f.store.Record(ctx, batch); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := f.counts(t, group("alice")), map[string]int64{"k1": 3, "k2": 1}; !maps.Equal(got, want) {
			t.Errorf("alice counts = %v, want %v", got, want)
		}
		if got, want := f.counts(t, group("bob")), map[string]int64{"k3": 2}; !maps.Equal(got, want) {
			t.Errorf("bob counts = %v, want %v", got, want)
		}
		// A different delivery overlapping the first adds only its new events.
		if err := f.store.Record(ctx, []aggregate.Aggregate{aggregatetest.Denied(window, "alice", "k1", "e2", "e3", "e7", "e8")}); err != nil {
			t.Fatal(err)
		}
		if got := f.counts(t, group("alice"))["k1"]; got != 5 {
			t.Errorf("k1 after overlapping delivery = %d, want 5", got)
		}
	})

	t.Run("concurrent overlapping deliveries give exact totals", func(t *testing.T) {
		f := newFixture(t, db)
		all := aggregatetest.EventIDs("e", 40)
		var wg sync.WaitGroup
		errs := make(chan error, 10)
		for w := range 10 {
			// Each worker delivers a 20-id window of the 40 ids: heavy overlap.
			part := all[w*2 : w*2+20]
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- f.store.Record(ctx, []aggregate.Aggregate{aggregatetest.Denied(window, "alice", "k1", part...), aggregatetest.Denied(window, "alice", "k2", part[:5]...)})
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		want := map[string]int64{"k1": 38, "k2": int64(len(distinctFirstFive()))}
		if got := f.counts(t, group("alice")); !maps.Equal(got, want) {
			t.Errorf("counts = %v, want %v", got, want)
		}
	})

	t.Run("a contribution larger than one write is counted once", func(t *testing.T) {
		f := newFixture(t, db)
		big := aggregatetest.Denied(window, "alice", "k1", aggregatetest.EventIDs("e", store.MaxIDsPerWrite+50)...)
		for range 2 {
			if err := f.store.Record(ctx, []aggregate.Aggregate{big}); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := f.counts(t, group("alice"))["k1"], int64(store.MaxIDsPerWrite+50); got != want {
			t.Errorf("count = %d, want %d", got, want)
		}
	})

	t.Run("the most ids one write checks", func(t *testing.T) {
		// At the bound the condition must stay within DynamoDB's expression limits (300
		// operators): a rejected write would fail the delivery on every retry.
		f := newFixture(t, db)
		all := aggregatetest.EventIDs("m", store.MaxIDsPerWrite)
		if err := f.store.Record(ctx, []aggregate.Aggregate{aggregatetest.Denied(window, "alice", "k1", all[:store.MaxIDsPerWrite-5]...)}); err != nil {
			t.Fatal(err)
		}
		// A later delivery with those ids and 5 new ones adds exactly 5, then nothing again.
		for range 2 {
			if err := f.store.Record(ctx, []aggregate.Aggregate{aggregatetest.Denied(window, "alice", "k1", all...)}); err != nil {
				t.Fatalf("record %d ids: %v", len(all), err)
			}
		}
		if got, want := f.counts(t, group("alice"))["k1"], int64(len(all)); got != want {
			t.Errorf("count = %d, want %d", got, want)
		}
	})

	t.Run("hostile values keep the item under DynamoDB's size limit", func(t *testing.T) {
		f := newFixture(t, db)
		a := aggregatetest.Denied(window, "alice", "k1", aggregatetest.EventIDs("h", store.MaxIDsPerWrite)...)
		long := strings.Repeat("x", 10_000)
		a.Fields.RequestURI, a.Fields.Message, a.Fields.UserAgent, a.Fields.UID = long, long, long, long
		a.Fields.Namespace, a.Fields.Resource, a.Fields.Stage, a.Fields.Verb = long, long, long, long
		a.Identity = audit.Identity{ARN: long, CanonicalARN: long, SessionName: long, AccessKeyID: long, PrincipalID: long,
			PodName: long, PodUID: long, NodeName: long, CredentialID: long}
		a.Fields.SrcIPs, a.Fields.Groups = make([]string, 64), make([]string, 64)
		for i := range 64 {
			a.Fields.SrcIPs[i], a.Fields.Groups[i] = long[:5000], long[:5000]
		}
		if err := f.store.Record(ctx, []aggregate.Aggregate{a}); err != nil {
			t.Fatalf("record: %v", err)
		}
		if got := f.counts(t, group("alice"))["k1"]; got != int64(store.MaxIDsPerWrite) {
			t.Errorf("count = %d, want %d", got, store.MaxIDsPerWrite)
		}
	})

	t.Run("aggregates without ids are added every time", func(t *testing.T) {
		f := newFixture(t, db)
		raw := aggregatetest.Denied(window, "alice", "k1")
		raw.Count = 4
		for range 2 {
			if err := f.store.Record(ctx, []aggregate.Aggregate{raw}); err != nil {
				t.Fatal(err)
			}
		}
		if got := f.counts(t, group("alice"))["k1"]; got != 8 {
			t.Errorf("count = %d, want 8", got)
		}
	})

	t.Run("first and last seen widen with late data", func(t *testing.T) {
		f := newFixture(t, db)
		a := aggregatetest.Denied(window, "alice", "k1", "e1")
		if err := f.store.Record(ctx, []aggregate.Aggregate{a}); err != nil {
			t.Fatal(err)
		}
		early, late := aggregatetest.Denied(window, "alice", "k1", "e0"), aggregatetest.Denied(window, "alice", "k1", "e2")
		early.FirstSeen, early.LastSeen = window.Add(time.Minute), window.Add(time.Minute)
		late.FirstSeen, late.LastSeen = window.Add(50*time.Minute), window.Add(50*time.Minute)
		if err := f.store.Record(ctx, []aggregate.Aggregate{early}); err != nil {
			t.Fatal(err)
		}
		if err := f.store.Record(ctx, []aggregate.Aggregate{late}); err != nil {
			t.Fatal(err)
		}
		got, err := f.store.Aggregates(ctx, group("alice"))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || !got[0].FirstSeen.Equal(early.FirstSeen) || !got[0].LastSeen.Equal(late.LastSeen) || got[0].Count != 3 {
			t.Errorf("got %+v, want count 3 seen %s..%s", got, early.FirstSeen, late.LastSeen)
		}
	})

	t.Run("aggregates read back whole", func(t *testing.T) {
		f := newFixture(t, db)
		a := aggregatetest.Denied(window, "alice", "k1", "e2", "e1")
		if err := f.store.Record(ctx, []aggregate.Aggregate{a}); err != nil {
			t.Fatal(err)
		}
		got, err := f.store.Aggregates(ctx, group("alice"))
		if err != nil {
			t.Fatal(err)
		}
		want := a
		want.EventIDs = nil
		if len(got) != 1 || fmt.Sprintf("%+v", got[0]) != fmt.Sprintf("%+v", want) {
			t.Errorf("read back\n%+v\nwant\n%+v", got, want)
		}
	})

	t.Run("items carry expiresAt and no bodies", func(t *testing.T) {
		f := newFixture(t, db)
		if err := f.store.Record(ctx, []aggregate.Aggregate{aggregatetest.Denied(window, "alice", "k1", "e1"), aggregatetest.Denied(window, "bob", "k2")}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.store.Claim(ctx, group("alice"), time.Minute); err != nil {
			t.Fatal(err)
		}
		items := f.scan(t)
		if len(items) != 5 { // two aggregates, their groups' rows items, one alert item
			t.Fatalf("scanned %d items, want 5", len(items))
		}
		wantExpiry := fmt.Sprint(window.Add(time.Hour + store.DefaultRetention).Unix())
		for _, item := range items {
			exp, ok := item["expiresAt"].(*types.AttributeValueMemberN)
			if !ok || exp.Value != wantExpiry {
				t.Errorf("item %v: expiresAt = %v, want %s", item["sk"], item["expiresAt"], wantExpiry)
			}
			for name := range item {
				lower := strings.ToLower(name)
				if strings.Contains(lower, "object") || strings.Contains(lower, "body") || strings.Contains(lower, "extra") {
					t.Errorf("item %v has attribute %q", item["sk"], name)
				}
			}
		}
	})

	t.Run("claim lifecycle", func(t *testing.T) {
		f := newFixture(t, db)
		g := group("alice")
		c1, err := f.store.Claim(ctx, g, time.Minute)
		if err != nil || c1.Outcome != store.Claimed {
			t.Fatalf("first claim = %v, %v; want claimed", c1.Outcome, err)
		}
		c2, err := f.store.Claim(ctx, g, time.Minute)
		if err != nil || c2.Outcome != store.HeldByOther {
			t.Fatalf("second claim = %v, %v; want heldByOther", c2.Outcome, err)
		}
		// The lease expires: another invocation takes over, and the first loses its claim.
		f.clock.advance(2 * time.Minute)
		c3, err := f.store.Claim(ctx, g, time.Minute)
		if err != nil || c3.Outcome != store.Claimed || c3.Token == c1.Token {
			t.Fatalf("claim after lease = %+v, %v; want a new claim", c3, err)
		}
		if err := f.store.MarkSent(ctx, c1, "m-1"); !errors.Is(err, store.ErrClaimLost) {
			t.Errorf("MarkSent with expired claim = %v, want ErrClaimLost", err)
		}
		if err := f.store.MarkSent(ctx, c3, "m-3"); err != nil {
			t.Fatal(err)
		}
		f.clock.advance(time.Hour)
		c4, err := f.store.Claim(ctx, g, time.Minute)
		if err != nil || c4.Outcome != store.AlreadySent || c4.MessageID != "m-3" {
			t.Errorf("claim after sent = %+v, %v; want alreadySent m-3", c4, err)
		}
	})

	t.Run("release makes the group claimable at once", func(t *testing.T) {
		f := newFixture(t, db)
		g := group("alice")
		c1, err := f.store.Claim(ctx, g, time.Hour)
		if err != nil || c1.Outcome != store.Claimed {
			t.Fatalf("claim = %v, %v", c1.Outcome, err)
		}
		if err := f.store.Release(ctx, c1); err != nil {
			t.Fatal(err)
		}
		c2, err := f.store.Claim(ctx, g, time.Hour)
		if err != nil || c2.Outcome != store.Claimed {
			t.Fatalf("claim after release = %v, %v; want claimed", c2.Outcome, err)
		}
		if err := f.store.Release(ctx, c1); !errors.Is(err, store.ErrClaimLost) {
			t.Errorf("second release of the old claim = %v, want ErrClaimLost", err)
		}
	})

	t.Run("concurrent claims: exactly one wins", func(t *testing.T) {
		f := newFixture(t, db)
		var claimed atomic.Int64
		var wg sync.WaitGroup
		for range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := f.store.Claim(ctx, group("alice"), time.Minute)
				if err != nil {
					t.Error(err)
				}
				if c.Outcome == store.Claimed {
					claimed.Add(1)
				}
			}()
		}
		wg.Wait()
		if claimed.Load() != 1 {
			t.Errorf("%d claims won, want 1", claimed.Load())
		}
	})

	t.Run("unreachable table is an error", func(t *testing.T) {
		f := newFixture(t, db)
		missing := store.New(f.client, store.Options{Table: "no-such-table"})
		if err := missing.Record(ctx, []aggregate.Aggregate{aggregatetest.Denied(window, "alice", "k1", "e1")}); err == nil {
			t.Error("Record on a missing table succeeded")
		}
		if _, err := missing.Claim(ctx, group("alice"), time.Minute); err == nil {
			t.Error("Claim on a missing table succeeded")
		}
	})
}

// distinctFirstFive is the union of part[:5] over the workers of the concurrency test.
func distinctFirstFive() []string {
	all := aggregatetest.EventIDs("e", 40)
	var out []string
	for w := range 10 {
		for _, id := range all[w*2 : w*2+5] {
			if !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
	}
	return out
}

// TestAdmit: at most max groups are admitted per log group and window, whatever the
// concurrency; a group gets the same answer every time; other log groups and windows have
// their own slots.
func TestAdmit(t *testing.T) {
	db := localtest.DynamoDBForTest(t)
	f := newFixture(t, db)
	ctx := context.Background()
	const max = 3
	gk := func(i int) store.GroupKey {
		return store.GroupKey{Rule: detect.UnauthorizedAccess.ID, Window: window, Group: fmt.Sprintf("group-%02d", i)}
	}
	admitted := make([]bool, 12)
	var wg sync.WaitGroup
	errs := make([]error, len(admitted))
	for i := range admitted {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := f.store.Admit(ctx, gk(i), "111122223333", "/aws/eks/prod/cluster", max)
			admitted[i], errs[i] = a.Admitted, err
		}()
	}
	wg.Wait()
	n := 0
	for i, ok := range admitted {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if ok {
			n++
		}
	}
	if n != max {
		t.Fatalf("%d groups admitted, want %d", n, max)
	}
	for i, want := range admitted {
		a, err := f.store.Admit(ctx, gk(i), "111122223333", "/aws/eks/prod/cluster", max)
		if err != nil || a.Admitted != want || a.Groups != len(admitted) {
			t.Errorf("group %d again: %+v, %v; want admitted %v among %d groups", i, a, err, want, len(admitted))
		}
	}
	other, err := f.store.Admit(ctx, gk(99), "111122223333", "/aws/eks/staging/cluster", max)
	if err != nil || !other.Admitted {
		t.Errorf("another log group: %+v, %v; want admitted", other, err)
	}
}
