// Package metrics measures what the Go benchmarks cannot: the DynamoDB requests a batch
// costs, the peak memory of the real bootstrap on a maximum-size delivery, the time from
// its exec to its first call for work, and what its size is made of. bench/cmd/metrics
// prints them for make bench.
package metrics

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"

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

// RequestCounter is an http.RoundTripper that counts the requests it forwards by their
// API operation (the X-Amz-Target header of the DynamoDB JSON protocol).
type RequestCounter struct {
	// Next sends the requests (http.DefaultTransport if nil).
	Next http.RoundTripper

	mu     sync.Mutex
	counts map[string]int
}

// RoundTrip counts req and forwards it.
func (c *RequestCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	op := req.Header.Get("X-Amz-Target")
	if i := strings.LastIndexByte(op, '.'); i >= 0 {
		op = op[i+1:]
	}
	c.mu.Lock()
	if c.counts == nil {
		c.counts = map[string]int{}
	}
	c.counts[op]++
	c.mu.Unlock()
	next := c.Next
	if next == nil {
		next = http.DefaultTransport
	}
	return next.RoundTrip(req)
}

// Take returns the counts by operation and their total, and starts counting from zero.
func (c *RequestCounter) Take() (byOp map[string]int, total int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	byOp, c.counts = c.counts, nil
	for _, n := range byOp {
		total += n
	}
	return byOp, total
}

// Batch is a delivery built for counting requests, and what it should produce.
type Batch struct {
	// Scale multiplies the events: each matching line appears Scale times (as separate log
	// events with distinct ids, in the same aggregates) and there are Scale times more
	// non-matching lines.
	Scale int
	// Delivery is the Lambda event and its counts.
	Delivery workload.Delivery
}

// Batches builds one delivery per scale from the same seed: the same matching lines,
// hence the same aggregates and alert groups, in every batch. At scale s each of the
// matching lines appears s times (as separate log events with distinct ids) and there are
// s times others non-matching lines, the matches spread evenly among them.
func Batches(seed uint64, matching, others int, scales ...int) []Batch {
	g := workload.New(seed)
	maxScale := 1
	for _, s := range scales {
		maxScale = max(maxScale, s)
	}
	var match, other [][]byte
	var otherKinds []workload.Kind
	for len(match) < matching || len(other) < maxScale*others {
		line, kind := g.Line()
		switch {
		case kind == workload.KindForbiddenCreate && len(match) < matching:
			match = append(match, line)
		case kind != workload.KindForbiddenCreate && len(other) < maxScale*others:
			other = append(other, line)
			otherKinds = append(otherKinds, kind)
		}
	}
	var out []Batch
	for _, s := range scales {
		n, m := s*others, s*matching
		step := max(1, n/max(1, m))
		var lines [][]byte
		var kinds []workload.Kind
		j := 0
		for i := range n {
			if i%step == 0 && j < m {
				lines = append(lines, match[j%matching])
				kinds = append(kinds, workload.KindForbiddenCreate)
				j++
			}
			lines = append(lines, other[i])
			kinds = append(kinds, otherKinds[i])
		}
		for ; j < m; j++ {
			lines = append(lines, match[j%matching])
			kinds = append(kinds, workload.KindForbiddenCreate)
		}
		out = append(out, Batch{Scale: s, Delivery: g.Wrap(lines, kinds)})
	}
	return out
}

// RequestCount is what one batch cost in DynamoDB requests.
type RequestCount struct {
	Scale, Events, Matches int
	// Aggregates and Groups are the distinct aggregates and alert groups of the batch.
	Aggregates, Groups int
	// Requests is the total; ByOperation splits it by API operation.
	Requests    int
	ByOperation map[string]int
}

// String formats c as one line.
func (c RequestCount) String() string {
	ops := make([]string, 0, len(c.ByOperation))
	for op, n := range c.ByOperation {
		ops = append(ops, fmt.Sprintf("%s=%d", op, n))
	}
	sort.Strings(ops)
	return fmt.Sprintf("scale %3dx: %6d events, %5d matches, %3d aggregates, %2d alert groups -> %3d DynamoDB requests (%s)",
		c.Scale, c.Events, c.Matches, c.Aggregates, c.Groups, c.Requests, strings.Join(ops, " "))
}

// CountRequests runs each batch through the real handler, store and publisher (against
// DynamoDB Local and moto), each batch on a fresh table so that every batch records and
// alerts from scratch, and counts the DynamoDB requests it makes.
func CountRequests(ctx context.Context, ddb *local.DynamoDB, sns *local.Moto, topic string, batches []Batch) ([]RequestCount, error) {
	counter := &RequestCounter{}
	client := ddb.Client(func(o *dynamodb.Options) { o.HTTPClient = &http.Client{Transport: counter} })
	p := pipeline.New(pipeline.Options{Rule: detect.UnauthorizedAccess, Mode: detect.ModeSeed, GroupBy: aggregate.GroupByUser})
	var out []RequestCount
	for i, b := range batches {
		table := fmt.Sprintf("requests-%d-%d", i, b.Scale)
		if err := ddb.CreateTable(ctx, table); err != nil {
			return nil, err
		}
		res, err := p.Process(b.Delivery.Event)
		if err != nil {
			return nil, fmt.Errorf("process batch of scale %d: %w", b.Scale, err)
		}
		groups := map[store.GroupKey]bool{}
		for _, a := range res.Aggregates {
			groups[aggregate.AlertGroupOf(a)] = true
		}
		h := handler.New(handler.Options{
			Processor:   p,
			Store:       store.New(client, store.Options{Table: table, Concurrency: 4}),
			Publisher:   notify.New(sns.SNSClient(), sns.TopicARN(topic)),
			Rule:        detect.UnauthorizedAccess,
			Alert:       alert.Options{Region: local.Region},
			Concurrency: 4,
			Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		counter.Take() // the table creation is not the batch's
		if _, err := h.Invoke(ctx, b.Delivery.Event); err != nil {
			return nil, fmt.Errorf("invoke batch of scale %d: %w", b.Scale, err)
		}
		byOp, total := counter.Take()
		out = append(out, RequestCount{
			Scale: b.Scale, Events: b.Delivery.Events, Matches: res.Stats.Matches,
			Aggregates: len(res.Aggregates), Groups: len(groups),
			Requests: total, ByOperation: byOp,
		})
	}
	return out, nil
}
