package handler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eks-unauthorized-access/detector/infra/local"
	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/alert"
	"github.com/eks-unauthorized-access/detector/internal/cwlogs"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/handler"
	"github.com/eks-unauthorized-access/detector/internal/notify"
	"github.com/eks-unauthorized-access/detector/internal/pipeline"
	"github.com/eks-unauthorized-access/detector/internal/samples"
	"github.com/eks-unauthorized-access/detector/internal/store"
)

// This file holds the helpers of the hardening tests (bad-input matrix, faults, load,
// secrets): real CloudWatch Logs deliveries built from audit lines, run through the real
// pipeline, store (DynamoDB Local) and publisher (moto).

// hourNow is the current hour: DynamoDB Local expires items by the real clock, so the
// events of these tests happen now.
var hourNow = time.Now().UTC().Truncate(time.Hour)

// auditLine is samples.ForbiddenCreate by user from ip, received at the given offset into
// the current hour.
func auditLine(t testing.TB, user, ip string, offset time.Duration, extra map[string]any) string {
	t.Helper()
	return samples.ForbiddenCreate(t, user, ip, hourNow.Add(offset), extra)
}

// logEvent is one log event of a delivery.
type logEvent = cwlogs.MessageEvent

// subscriptionMessage returns the inflated DATA_MESSAGE carrying events.
func subscriptionMessage(t testing.TB, events []logEvent) []byte {
	t.Helper()
	b, err := prodMessage("eks-unauthorized-access", events).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// prodMessage is a DATA_MESSAGE of the prod cluster's audit log group.
func prodMessage(filter string, events []logEvent) cwlogs.Message {
	return cwlogs.Message{
		MessageType: cwlogs.DataMessage, Owner: "111122223333", LogGroup: "/aws/eks/prod/cluster",
		LogStream: "kube-apiserver-audit-0123456789abcdef", SubscriptionFilters: []string{filter}, LogEvents: events,
	}
}

// gzipped compresses b with gzip.
func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	comp, err := cwlogs.Compress(b, cwlogs.Gzip)
	if err != nil {
		t.Fatal(err)
	}
	return comp
}

// awslogs wraps compressed bytes as a CloudWatch Logs subscription Lambda event.
func awslogs(comp []byte) []byte { return cwlogs.SubscriptionEvent(comp) }

// delivery returns the Lambda event carrying lines as log events with the given ids
// (ids[i] for lines[i]; generated when ids is nil).
func delivery(t testing.TB, lines []string, ids []string) []byte {
	t.Helper()
	events := make([]logEvent, len(lines))
	for i, l := range lines {
		id := fmt.Sprintf("%056d", i)
		if ids != nil {
			id = ids[i]
		}
		events[i] = logEvent{ID: id, Timestamp: hourNow.Add(30 * time.Minute).UnixMilli(), Message: l}
	}
	return awslogs(gzipped(t, subscriptionMessage(t, events)))
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// rig is one test's table, topic, log and handler wiring around shared local services.
type rig struct {
	dbEndpoint string
	moto       *local.Moto
	table      string
	topic      string
	log        *syncBuffer
	opts       pipeline.Options
}

var rigTables atomic.Int64

// newRig creates a table in the DynamoDB Local at dbEndpoint and empties topic's queue.
func newRig(t *testing.T, dbEndpoint string, moto *local.Moto, topic string) *rig {
	t.Helper()
	r := &rig{
		dbEndpoint: dbEndpoint, moto: moto, topic: topic, log: &syncBuffer{},
		table: fmt.Sprintf("hardening-%d", rigTables.Add(1)),
		opts:  pipeline.Options{Rule: detect.UnauthorizedAccess, Mode: detect.ModeSeed, GroupBy: aggregate.GroupByUser, Region: local.Region},
	}
	if err := store.CreateTable(context.Background(), r.client(nil), r.table); err != nil {
		t.Fatal(err)
	}
	if _, err := moto.Drain(context.Background(), topic); err != nil {
		t.Fatal(err)
	}
	return r
}

// client returns a DynamoDB client for the rig's endpoint, sending through rt if not nil.
func (r *rig) client(rt http.RoundTripper) *dynamodb.Client {
	return dynamodb.NewFromConfig(local.AWSConfig(), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(r.dbEndpoint)
		if rt != nil {
			o.HTTPClient = &http.Client{Transport: rt}
		}
	})
}

// handler returns a handler over the real pipeline; nil st or pub use the rig's own.
func (r *rig) handler(st handler.Store, pub handler.Publisher) *handler.Handler {
	if st == nil {
		st = store.New(r.client(nil), store.Options{Table: r.table})
	}
	if pub == nil {
		pub = notify.New(r.moto.SNSClient(), r.moto.TopicARN(r.topic))
	}
	return handler.New(handler.Options{
		Processor:   pipeline.New(r.opts),
		Store:       st,
		Publisher:   pub,
		Rule:        detect.UnauthorizedAccess,
		Alert:       alert.Options{Region: local.Region},
		ClaimLease:  time.Minute,
		Concurrency: 1,
		Logger:      handler.NewLogger(r.log, slog.LevelInfo),
	})
}

// invokeWith runs one invocation with a request id and the given time budget.
func invokeWith(h *handler.Handler, event []byte, id string, budget time.Duration) error {
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: id})
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	_, err := h.Invoke(ctx, event)
	return err
}

// summaries returns the handler's summary lines, decoded.
func (r *rig) summaries(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace([]byte(r.log.String())), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, line)
		}
		out = append(out, rec)
	}
	return out
}

// notifications drains the topic's queue.
func (r *rig) notifications(t *testing.T) []local.Notification {
	t.Helper()
	ns, err := r.moto.Drain(context.Background(), r.topic)
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

// alertUsers returns the user attribute of each notification, sorted.
func alertUsers(ns []local.Notification) []string {
	users := make([]string, 0, len(ns))
	for _, n := range ns {
		users = append(users, n.MessageAttributes["user"].Value)
	}
	sort.Strings(users)
	return users
}

// items scans the rig's table.
func (r *rig) items(t *testing.T) []map[string]types.AttributeValue {
	t.Helper()
	var items []map[string]types.AttributeValue
	p := dynamodb.NewScanPaginator(r.client(nil), &dynamodb.ScanInput{TableName: aws.String(r.table)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, page.Items...)
	}
	return items
}

// counts returns the stored count of every aggregate item of the current hour, by user and
// requestReceivedTimestamp.
func (r *rig) counts(t *testing.T, users ...string) map[string]int64 {
	t.Helper()
	return r.countsAt(t, hourNow, users...)
}

// countsAt is counts for the window starting at window.
func (r *rig) countsAt(t *testing.T, window time.Time, users ...string) map[string]int64 {
	t.Helper()
	st := store.New(r.client(nil), store.Options{Table: r.table})
	out := map[string]int64{}
	for _, u := range users {
		group := aggregate.GroupKey(aggregate.GroupByUser, aggregate.Source{Owner: "111122223333", LogGroup: "/aws/eks/prod/cluster"}, detect.Fields{User: u}, "")
		aggs, err := st.Aggregates(context.Background(), store.GroupKey{Rule: detect.UnauthorizedAccess.ID, Window: window, Group: group})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range aggs {
			out[u+" "+a.Fields.RequestReceivedTimestamp] += a.Count
		}
	}
	return out
}
