package handler_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/eks-unauthorized-access/detector/infra/local"
	"github.com/eks-unauthorized-access/detector/infra/local/localtest"
	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/alert"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/handler"
	"github.com/eks-unauthorized-access/detector/internal/notify"
	"github.com/eks-unauthorized-access/detector/internal/pipeline"
	"github.com/eks-unauthorized-access/detector/internal/store"
)

// escalationThresholds are small so that the deliveries stay small; the logic is the same
// for the defaults 10, 100, 1000.
var escalationThresholds = []int64{4, 10, 20}

// lifecycleHandler is the rig's handler with escalations on.
func (r *rig) lifecycleHandler(pub handler.Publisher) *handler.Handler {
	return r.lifecycleHandlerWith(r.client(nil), pub)
}

// lifecycleHandlerOn is lifecycleHandler with its store on client.
func (r *rig) lifecycleHandlerOn(client *dynamodb.Client) *handler.Handler {
	return r.lifecycleHandlerWith(client, nil)
}

func (r *rig) lifecycleHandlerWith(client *dynamodb.Client, pub handler.Publisher) *handler.Handler {
	st := store.New(client, store.Options{Table: r.table})
	if pub == nil {
		pub = notify.New(r.moto.SNSClient(), r.moto.TopicARN(r.topic))
	}
	return handler.New(handler.Options{
		Processor:   pipeline.New(r.opts),
		Store:       st,
		Lifecycle:   st,
		EscalateAt:  escalationThresholds,
		Publisher:   pub,
		Rule:        detect.UnauthorizedAccess,
		Alert:       alert.Options{Region: local.Region},
		ClaimLease:  time.Minute,
		Concurrency: 1,
		Logger:      handler.NewLogger(r.log, slog.LevelInfo),
	})
}

// attackEvents returns a delivery of the forbidden creates n in [from, to) by mallory,
// each with its own log event id and its own timestamp, so each is its own aggregate.
func attackEvents(t *testing.T, ns ...int) []byte {
	t.Helper()
	lines := make([]string, len(ns))
	ids := make([]string, len(ns))
	for i, n := range ns {
		ip := fmt.Sprintf("203.0.113.%d", 1+n/5) // a new source IP every five events
		lines[i] = auditLine(t, "mallory", ip, time.Duration(n)*time.Second, nil)
		ids[i] = fmt.Sprintf("%056d", 1000+n)
	}
	return delivery(t, lines, ids)
}

func span(from, to int) []int {
	out := make([]int, 0, to-from)
	for n := from; n < to; n++ {
		out = append(out, n)
	}
	return out
}

// kinds returns "first" or "escalation@T" for each notification, sorted.
func kinds(ns []local.Notification) []string {
	out := make([]string, 0, len(ns))
	for _, n := range ns {
		k := n.MessageAttributes["alertKind"].Value
		if k == string(alert.KindEscalation) {
			k += "@" + n.MessageAttributes["threshold"].Value
		}
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// escalationOnce wraps a publisher and makes the first n updates fail as SNS being
// unreachable would (certainly not published): a failure after counting, before publishing.
type escalationOnce struct {
	mu     sync.Mutex
	n      int
	failed int
	next   handler.Publisher
}

func (p *escalationOnce) Publish(ctx context.Context, m alert.Message) (string, error) {
	p.mu.Lock()
	fail := p.n > 0 && m.MessageAttributes["alertKind"].StringValue == string(alert.KindEscalation)
	if fail {
		p.n--
		p.failed++
	}
	p.mu.Unlock()
	if fail {
		return "", errors.New("injected: SNS unreachable")
	}
	return p.next.Publish(ctx, m)
}

// TestEscalationExactlyOnce runs a growing attack through the real handler, DynamoDB Local
// and moto: the first alert, then a delivery crossing two thresholds (one update each)
// whose first attempt fails between counting and publishing, then eight concurrent
// deliveries with overlapping events crossing the last threshold, then a redelivery of
// everything. Each threshold is published exactly once, the running total is exact, and
// the redelivery publishes nothing.
func TestEscalationExactlyOnce(t *testing.T) {
	db, moto := localtest.DynamoDBForTest(t), localtest.MotoForTest(t, "escalation")
	r := newRig(t, db.Endpoint, moto, "escalation")
	ctx := context.Background()

	// 1. Three attempts: the first alert, no update.
	if err := invokeWith(r.lifecycleHandler(nil), attackEvents(t, span(0, 3)...), "d1", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := kinds(r.notifications(t)); !slices.Equal(got, []string{"first"}) {
		t.Fatalf("after 3 attempts: %q, want the first alert only", got)
	}

	// 2. Nine more (12): crosses 4 and 10. The first attempt counts, then fails to publish.
	broken := &escalationOnce{n: 1, next: notify.New(moto.SNSClient(), moto.TopicARN("escalation"))}
	second := attackEvents(t, span(3, 12)...)
	if err := invokeWith(r.lifecycleHandler(broken), second, "d2", 30*time.Second); err == nil {
		t.Fatal("the delivery succeeded although its update could not be published")
	}
	if broken.failed != 1 {
		t.Fatalf("injected %d failures, want 1", broken.failed)
	}
	got := kinds(r.notifications(t))
	if len(got) != 0 {
		t.Fatalf("the failed delivery published %q", got)
	}
	if err := invokeWith(r.lifecycleHandler(nil), second, "d2-retry", 30*time.Second); err != nil {
		t.Fatalf("retry: %v", err)
	}
	got = kinds(r.notifications(t))
	if want := []string{"escalation@10", "escalation@4"}; !slices.Equal(got, want) {
		t.Fatalf("after the retry: %q, want %q", got, want)
	}

	// 3. Eight concurrent deliveries, overlapping regroupings of events 8..25 (with
	// repeats of events already counted): total 25, crossing 20 once.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for k := range 8 {
		ns := append(span(8+k, 26), span(8, 8+k)...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[k] = invokeWith(r.lifecycleHandler(nil), attackEvents(t, ns...), fmt.Sprintf("c%d", k), 60*time.Second)
		}()
	}
	wg.Wait()
	// A delivery that found the update claimed by another may fail (Lambda retries it):
	// retry those, as Lambda would.
	for k, err := range errs {
		if err != nil {
			ns := append(span(8+k, 26), span(8, 8+k)...)
			if err := invokeWith(r.lifecycleHandler(nil), attackEvents(t, ns...), fmt.Sprintf("c%d-retry", k), 60*time.Second); err != nil {
				t.Fatalf("retry of concurrent delivery %d: %v", k, err)
			}
		}
	}
	got = kinds(r.notifications(t))
	if want := []string{"escalation@20"}; !slices.Equal(got, want) {
		t.Fatalf("after the concurrent deliveries: %q, want %q", got, want)
	}

	// 4. Everything again: nothing new.
	for i, ev := range [][]byte{attackEvents(t, span(0, 3)...), second, attackEvents(t, span(0, 26)...)} {
		if err := invokeWith(r.lifecycleHandler(nil), ev, fmt.Sprintf("again%d", i), 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if got := kinds(r.notifications(t)); len(got) != 0 {
		t.Fatalf("the redelivery published %q", got)
	}

	// The running total is exact and equals the sum of the aggregates.
	st := store.New(r.client(nil), store.Options{Table: r.table})
	group := aggregate.GroupKey(aggregate.GroupByUser, aggregate.Source{Owner: "111122223333", LogGroup: "/aws/eks/prod/cluster"}, detect.Fields{User: "mallory"}, "")
	g := store.GroupKey{Rule: detect.UnauthorizedAccess.ID, Window: hourNow, Group: group}
	total, err := st.Total(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, n := range r.counts(t, "mallory") {
		sum += n
	}
	if total != 26 || sum != 26 {
		t.Errorf("running total %d, aggregates sum %d, want 26", total, sum)
	}
	sent, err := st.SentAlerts(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	var thresholds []int64
	for _, s := range sent {
		thresholds = append(thresholds, s.Threshold)
	}
	if want := []int64{0, 4, 10, 20}; !slices.Equal(thresholds, want) {
		t.Errorf("sent alerts %v, want %v", thresholds, want)
	}
}

// TestEscalationFaults: a delivery crossing two thresholds (4 and 10) meets a fault
// between counting and publishing, in DynamoDB Local or on the way to moto's SNS. Whatever
// the fault, after Lambda's retry each threshold has reached the subscriber once unflagged,
// any other copy is flagged with the same id, the running total is exact, and a
// redelivery of everything publishes nothing.
func TestEscalationFaults(t *testing.T) {
	db, moto := localtest.DynamoDBForTest(t), localtest.MotoForTest(t, "escfaults")
	isEscalationClaim := func(op string, body []byte) bool {
		return isClaim(op, body) && bytes.Contains(body, []byte("alert#escalation#"))
	}
	isEscalationPublish := func(op string, body []byte) bool {
		return isPublish(op, body) && bytes.Contains(body, []byte("escalation"))
	}
	for _, tc := range []struct {
		name       string
		sns, ddb   *faultyProxy
		firstFails bool
		flagged    int // flagged copies expected
	}{
		{"update publish applied, answered 500", &faultyProxy{pick: isEscalationPublish, f: applyThen500, times: 1}, nil, true, 1},
		{"update publish applied, connection reset", &faultyProxy{pick: isEscalationPublish, f: applyThenReset, times: 1}, nil, true, 1},
		{"update claim applied, answered 500", nil, &faultyProxy{pick: isEscalationClaim, f: applyThen500, times: 1, json: true}, false, 0},
		{"update claim throttled past the SDK's retries", nil, &faultyProxy{pick: isEscalationClaim, f: throttle, times: 5, json: true}, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, db.Endpoint, moto, "escfaults")
			if err := invokeWith(r.lifecycleHandler(nil), attackEvents(t, span(0, 3)...), "d1", 30*time.Second); err != nil {
				t.Fatal(err)
			}
			r.notifications(t)
			h := r.lifecycleHandler(nil)
			if tc.sns != nil {
				h = r.lifecycleHandler(notify.New(moto.SNSClient(func(o *sns.Options) { o.HTTPClient = &http.Client{Transport: tc.sns} }), moto.TopicARN("escfaults")))
			}
			if tc.ddb != nil {
				h = r.lifecycleHandlerOn(r.client(tc.ddb))
			}
			second := attackEvents(t, span(3, 12)...)
			err := invokeWith(h, second, "d2", 30*time.Second)
			if (err != nil) != tc.firstFails {
				t.Fatalf("first attempt: error %v, want failure %v", err, tc.firstFails)
			}
			for _, p := range []*faultyProxy{tc.sns, tc.ddb} {
				if p != nil && p.hits == 0 {
					t.Fatal("the fault was never injected")
				}
			}
			got := r.notifications(t)
			// Lambda retries the delivery (or redelivers a successful one), then everything again.
			for i, ev := range [][]byte{second, attackEvents(t, span(0, 12)...)} {
				if err := invokeWith(r.lifecycleHandler(nil), ev, fmt.Sprintf("retry%d", i), 30*time.Second); err != nil {
					t.Fatalf("retry %d: %v", i, err)
				}
				got = append(got, r.notifications(t)...)
			}
			plain, flagged, ids := map[string]int{}, 0, map[string]string{}
			for _, n := range got {
				k := n.MessageAttributes["alertKind"].Value + "@" + n.MessageAttributes["threshold"].Value
				if prev, ok := ids[k]; ok && prev != n.MessageAttributes["alertId"].Value {
					t.Errorf("%s published with two ids", k)
				}
				ids[k] = n.MessageAttributes["alertId"].Value
				if n.MessageAttributes["possibleDuplicate"].Value == "true" {
					flagged++
				} else {
					plain[k]++
				}
			}
			if want := map[string]int{"escalation@4": 1, "escalation@10": 1}; !maps.Equal(plain, want) {
				t.Errorf("unflagged updates %v, want %v", plain, want)
			}
			if flagged != tc.flagged {
				t.Errorf("%d flagged copies, want %d", flagged, tc.flagged)
			}
			st := store.New(r.client(nil), store.Options{Table: r.table})
			group := aggregate.GroupKey(aggregate.GroupByUser, aggregate.Source{Owner: "111122223333", LogGroup: "/aws/eks/prod/cluster"}, detect.Fields{User: "mallory"}, "")
			if total, err := st.Total(context.Background(), store.GroupKey{Rule: detect.UnauthorizedAccess.ID, Window: hourNow, Group: group}); err != nil || total != 12 {
				t.Errorf("running total %d (%v), want 12", total, err)
			}
		})
	}
}
