package metrics

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/eks-unauthorized-access/detector/bench/workload"
	"github.com/eks-unauthorized-access/detector/infra/local"
	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/alert"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/handler"
	"github.com/eks-unauthorized-access/detector/internal/notify"
	"github.com/eks-unauthorized-access/detector/internal/pipeline"
	"github.com/eks-unauthorized-access/detector/internal/store"
)

// DistinctRequests builds the delivery an attacker can make to cost the most work: n
// denied creates by one user in one hour, each a distinct row of the seed's stats (every
// request has its own requestReceivedTimestamp, a by-field), in one subscription message.
func DistinctRequests(seed uint64, n int) workload.Delivery {
	start := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	lines := make([][]byte, n)
	kinds := make([]workload.Kind, n)
	for i := range lines {
		at := start.Add(time.Duration(i) * 40 * time.Microsecond).Format("2006-01-02T15:04:05.000000Z")
		lines[i] = fmt.Appendf(nil, `{"kind":"Event","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/secrets","verb":"create",`+
			`"user":{"username":"mallory","groups":["system:authenticated"]},"sourceIPs":["198.51.100.7"],"userAgent":"curl/8.5.0",`+
			`"objectRef":{"resource":"secrets","namespace":"default"},"responseStatus":{"reason":"Forbidden","code":403},"requestReceivedTimestamp":"%s"}`,
			at)
		kinds[i] = workload.KindForbiddenCreate
	}
	return workload.New(seed).Wrap(lines, kinds)
}

// LongLines builds a delivery of n denied creates of about size bytes each, by one user:
// a request URI carries the length, before verb, as a client's long query string would.
// The query repeats a short random run, so the delivery compresses to what a Lambda event
// can carry (a client's query string can be just as repetitive).
func LongLines(n, size int) workload.Delivery {
	rng := rand.New(rand.NewPCG(uint64(n), uint64(size)))
	start := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	lines := make([][]byte, n)
	kinds := make([]workload.Kind, n)
	query := make([]byte, size)
	for i := range lines {
		for j := range query {
			if j < 16 {
				query[j] = 'a' + byte(rng.IntN(26))
			} else {
				query[j] = query[j%16]
			}
		}
		at := start.Add(time.Duration(i) * time.Millisecond).Format("2006-01-02T15:04:05.000000Z")
		lines[i] = fmt.Appendf(nil, `{"kind":"Event","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/secrets?q=%s","verb":"create",`+
			`"user":{"username":"mallory","groups":["system:authenticated"]},"sourceIPs":["198.51.100.7"],"userAgent":"curl/8.5.0",`+
			`"objectRef":{"resource":"secrets","namespace":"default"},"responseStatus":{"reason":"Forbidden","code":403},"requestReceivedTimestamp":"%s"}`,
			query, at)
		kinds[i] = workload.KindForbiddenCreate
	}
	return workload.New(uint64(n)).Wrap(lines, kinds)
}

// HostileResult is what one delivery cost the real handler, and what it stored.
type HostileResult struct {
	Events     int
	Requests   int
	ByOp       map[string]int
	Elapsed    time.Duration
	Rows       int   // aggregates stored for the group, the overflow row included
	Attempts   int64 // the sum of their counts
	Total      int64 // the group's running total (the escalation ledger)
	Aggregates int   // distinct aggregates of the delivery
}

// RunHostile runs d through the handler as the function wires it (store with its default
// row bound, running totals and escalation), against DynamoDB Local and moto, on a fresh
// table, and reads back what was stored for the one alert group it holds.
func RunHostile(ctx context.Context, ddb *local.DynamoDB, sns *local.Moto, topic, table string, d workload.Delivery, maxRows int) (HostileResult, error) {
	counter := &RequestCounter{}
	client := ddb.Client(func(o *dynamodb.Options) { o.HTTPClient = &http.Client{Transport: counter} })
	if err := ddb.CreateTable(ctx, table); err != nil {
		return HostileResult{}, err
	}
	p := pipeline.New(pipeline.Options{Rule: detect.UnauthorizedAccess, Mode: detect.ModeSeed, GroupBy: aggregate.GroupByUser, ThinAfter: maxRows})
	res, err := p.Process(d.Event)
	if err != nil {
		return HostileResult{}, fmt.Errorf("process: %w", err)
	}
	st := store.New(client, store.Options{Table: table, MaxRowsPerGroup: maxRows})
	h := handler.New(handler.Options{
		Processor:  p,
		Store:      st,
		Lifecycle:  st,
		EscalateAt: []int64{10, 100, 1000},
		Publisher:  notify.New(sns.SNSClient(), sns.TopicARN(topic)),
		Rule:       detect.UnauthorizedAccess,
		Alert:      alert.Options{Region: local.Region, MaxAggregates: 20},
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	counter.Take()
	start := time.Now()
	if _, err := h.Invoke(ctx, d.Event); err != nil {
		return HostileResult{}, fmt.Errorf("invoke: %w", err)
	}
	out := HostileResult{Events: d.Events, Elapsed: time.Since(start), Aggregates: len(res.Aggregates)}
	out.ByOp, out.Requests = counter.Take()
	if len(res.Aggregates) == 0 {
		return out, fmt.Errorf("the delivery has no matching line")
	}
	g := aggregate.AlertGroupOf(res.Aggregates[0])
	aggs, err := st.Aggregates(ctx, g)
	if err != nil {
		return out, err
	}
	for _, a := range aggs {
		out.Rows++
		out.Attempts += a.Count
	}
	if out.Total, err = st.Total(ctx, g); err != nil {
		return out, err
	}
	return out, nil
}

// HostileRequestBound is the most DynamoDB requests the handler makes for one delivery of
// d events in one alert group with a distinct aggregates, each of at most
// store.MaxIDsPerWrite events, under a row bound of maxRows, with no other invocation at
// work: the row admission (a read and a write), one write per admitted row, the overflow
// row's and the running total's ids in chunks (each full item passed costs a failed write
// and a retention refresh), and the alert: claim, query, mark sent, plus at most three
// escalation thresholds crossed (claim, query, mark sent each).
func HostileRequestBound(d, a, maxRows int) int {
	chunks := func(n int) int { return (n + store.MaxIDsPerWrite - 1) / store.MaxIDsPerWrite }
	items := func(n int) int { return (n + store.MaxStoredIDs - 1) / store.MaxStoredIDs }
	admitted := min(a, maxRows)
	folded := d - admitted // at least: each admitted row holds one event or more
	return 2 + admitted + chunks(folded) + 2*items(folded) + chunks(d) + 2*items(d) + 3 + 3*3 + 4
}
