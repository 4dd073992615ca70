package handler_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/alert"
	"github.com/eks-unauthorized-access/detector/internal/cwlogs"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/handler"
	"github.com/eks-unauthorized-access/detector/internal/logsource"
	"github.com/eks-unauthorized-access/detector/internal/pipeline"
	"github.com/eks-unauthorized-access/detector/internal/store"
)

// memStore is an in-memory handler.Store with the store's contract: counting is
// idempotent per log event id, and an alert group is claimed once and then sent.
type memStore struct {
	mu      sync.Mutex
	ids     map[string]map[string]bool // aggregate item → log event ids counted
	aggs    map[store.GroupKey]map[string]aggregate.Aggregate
	sent    map[store.GroupKey]bool
	failRec error
}

var _ handler.Store = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{ids: map[string]map[string]bool{}, aggs: map[store.GroupKey]map[string]aggregate.Aggregate{}, sent: map[store.GroupKey]bool{}}
}

func (s *memStore) Record(_ context.Context, aggs []aggregate.Aggregate) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failRec != nil {
		return s.failRec
	}
	for _, a := range aggs {
		g := aggregate.AlertGroupOf(a)
		item := g.Key() + "|" + a.Key
		if s.ids[item] == nil {
			s.ids[item] = map[string]bool{}
		}
		if s.aggs[g] == nil {
			s.aggs[g] = map[string]aggregate.Aggregate{}
		}
		stored := s.aggs[g][a.Key]
		if stored.Key == "" {
			stored = a
			stored.Count, stored.EventIDs = 0, nil
		}
		for _, id := range a.EventIDs {
			if !s.ids[item][id] {
				s.ids[item][id] = true
				stored.Count++
			}
		}
		s.aggs[g][a.Key] = stored
	}
	return nil
}

func (s *memStore) Claim(_ context.Context, g store.GroupKey, _ time.Duration) (store.Claim, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sent[g] {
		return store.Claim{Group: g, Outcome: store.AlreadySent}, nil
	}
	return store.Claim{Group: g, Outcome: store.Claimed, Token: "t"}, nil
}

func (s *memStore) Aggregates(_ context.Context, g store.GroupKey) ([]aggregate.Aggregate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []aggregate.Aggregate
	for _, a := range s.aggs[g] {
		out = append(out, a)
	}
	return out, nil
}

func (s *memStore) MarkSent(_ context.Context, c store.Claim, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent[c.Group] = true
	return nil
}

func (s *memStore) Release(context.Context, store.Claim) error     { return nil }
func (s *memStore) MarkUnknown(context.Context, store.Claim) error { return nil }

// counts returns the stored count per cluster and user.
func (s *memStore) counts() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int64{}
	for _, byKey := range s.aggs {
		for _, a := range byKey {
			out[a.Source.Cluster+"/"+a.Fields.User] += a.Count
		}
	}
	return out
}

// memPublisher records the alerts published (subject per alert).
type memPublisher struct {
	mu       sync.Mutex
	subjects []string
	fail     string // publishes whose subject holds it fail (before SNS accepts them)
}

func (p *memPublisher) Publish(_ context.Context, m alert.Message) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != "" && strings.Contains(m.Subject, p.fail) {
		return "", errors.New("publish refused")
	}
	p.subjects = append(p.subjects, m.Subject)
	return fmt.Sprintf("msg-%d", len(p.subjects)), nil
}

func (p *memPublisher) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.subjects)
}

// sampleRecords returns the records of events/kinesis-multi-cluster.json (prod-cluster's
// alice, then staging-cluster's anonymous user).
func sampleRecords(t testing.TB) []events.KinesisEventRecord {
	t.Helper()
	_, recs := kinesisSample(t, "kinesis-multi-cluster.json")
	return recs
}

// kinesisSample returns a Kinesis sample event of events/ and its records.
func kinesisSample(t testing.TB, name string) ([]byte, []events.KinesisEventRecord) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.KinesisEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	return b, ev.Records
}

// withData returns a copy of r carrying data under sequence number seq.
func withData(r events.KinesisEventRecord, seq string, data []byte) events.KinesisEventRecord {
	r.Kinesis.SequenceNumber = seq
	r.Kinesis.Data = data
	r.EventID = "shardId-000000000000:" + seq
	return r
}

// forgedRecord is a record whose payload claims a log group outside the accepted
// patterns, carrying a matching audit line.
func forgedRecord(t *testing.T, base events.KinesisEventRecord, seq string) events.KinesisEventRecord {
	t.Helper()
	line := auditLine(t, "forger", "198.51.100.7", time.Minute, nil)
	m := prodMessage("account-policy", []logEvent{{ID: fmt.Sprintf("%056d", 7), Timestamp: hourNow.UnixMilli(), Message: line}})
	m.LogGroup, m.LogStream = "/aws/lambda/attacker", "kube-apiserver-audit-1"
	msg, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return withData(base, seq, gzipped(t, msg))
}

func kinesisEvent(t *testing.T, records ...events.KinesisEventRecord) []byte {
	t.Helper()
	b, err := json.Marshal(events.KinesisEvent{Records: records})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// failedSequenceNumbers decodes a partial batch response.
func failedSequenceNumbers(t *testing.T, resp []byte) []string {
	t.Helper()
	var r events.KinesisEventResponse
	if err := json.Unmarshal(resp, &r); err != nil {
		t.Fatalf("response %s: %v", resp, err)
	}
	if !strings.Contains(string(resp), `"batchItemFailures":[`) {
		t.Fatalf("response %s has no batchItemFailures list", resp)
	}
	out := []string{}
	for _, f := range r.BatchItemFailures {
		out = append(out, f.ItemIdentifier)
	}
	return out
}

// TestKinesisPartialBatch runs Kinesis batches through the real pipeline with in-memory
// fakes of the store and publisher: a corrupt record is reported alone, the others are
// counted and alerted; a retry from the failed record and a bisected batch change nothing;
// a forged log group is counted as rejected and never alerted; a failed store write
// reports the records whose aggregates it held.
func TestKinesisPartialBatch(t *testing.T) {
	recs := sampleRecords(t)
	prod, staging := recs[0], recs[1]
	corrupt := withData(prod, "49600000000000000000000000000000000000000000000000000002", []byte("this is not gzip"))
	prod = withData(prod, "49600000000000000000000000000000000000000000000000000001", prod.Kinesis.Data)
	staging = withData(staging, "49600000000000000000000000000000000000000000000000000003", staging.Kinesis.Data)
	forged := forgedRecord(t, prod, "49600000000000000000000000000000000000000000000000000004")

	st, pub := newMemStore(), &memPublisher{}
	var emf, logs strings.Builder
	h := handler.New(handler.Options{
		Processor: pipeline.New(pipeline.Options{Rule: detect.UnauthorizedAccess, Mode: detect.ModeSeed, GroupBy: aggregate.GroupByUser,
			Region: "eu-west-1", Sources: logsource.Default()}),
		Store: st, Publisher: pub, Rule: detect.UnauthorizedAccess,
		Logger:  slog.New(slog.NewJSONHandler(&logs, nil)),
		Metrics: &emf,
	})
	ctx := context.Background()
	invokeBatch := func(t *testing.T, records ...events.KinesisEventRecord) []string {
		t.Helper()
		resp, err := h.Invoke(ctx, kinesisEvent(t, records...))
		if err != nil {
			t.Fatalf("Invoke: %v (a Kinesis batch answers with a partial batch response, never an error)", err)
		}
		return failedSequenceNumbers(t, resp)
	}
	wantCounts := map[string]int64{"prod-cluster/alice": 4, "staging-cluster/system:anonymous": 1}

	got := invokeBatch(t, prod, corrupt, staging, forged)
	if want := []string{corrupt.Kinesis.SequenceNumber}; !slices.Equal(got, want) {
		t.Fatalf("batchItemFailures %v, want %v", got, want)
	}
	if c := st.counts(); fmt.Sprint(c) != fmt.Sprint(wantCounts) {
		t.Fatalf("counts %v, want %v", c, wantCounts)
	}
	// alice's denials fall in two hourly windows: one alert each, plus staging's.
	if n := pub.count(); n != 3 {
		t.Fatalf("%d alerts published (%v), want 3", n, pub.subjects)
	}
	summary := logs.String()
	for _, want := range []string{`"records":4`, `"recordsFailed":1`, `"rejected":1`, `"rejected_log_group":1`,
		`"firstFailedSequenceNumber":"` + corrupt.Kinesis.SequenceNumber + `"`} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary line lacks %s:\n%s", want, summary)
		}
	}
	for _, want := range []string{`"RecordsFailed":1`, `"LogEventsRejected":1`, `"LogEventsRejectedLogGroup":1`} {
		if !strings.Contains(emf.String(), want) {
			t.Errorf("metrics lack %s:\n%s", want, emf.String())
		}
	}

	// Lambda retries from the failed record: the same records again, then the batch
	// bisected, each half alone. Nothing is counted or alerted twice.
	for name, batch := range map[string][]events.KinesisEventRecord{
		"retry from the failed record": {corrupt, staging, forged},
		"whole batch again":            {prod, corrupt, staging, forged},
		"first half":                   {prod, corrupt},
		"second half":                  {staging, forged},
	} {
		got := invokeBatch(t, batch...)
		var want []string
		if slices.ContainsFunc(batch, func(r events.KinesisEventRecord) bool {
			return r.Kinesis.SequenceNumber == corrupt.Kinesis.SequenceNumber
		}) {
			want = []string{corrupt.Kinesis.SequenceNumber}
		}
		if len(got) != len(want) || (len(want) > 0 && got[0] != want[0]) {
			t.Errorf("%s: batchItemFailures %v, want %v", name, got, want)
		}
		if c := st.counts(); fmt.Sprint(c) != fmt.Sprint(wantCounts) {
			t.Errorf("%s: counts %v, want %v", name, c, wantCounts)
		}
		if n := pub.count(); n != 3 {
			t.Errorf("%s: %d alerts published, want still 3", name, n)
		}
	}

	// A failed write fails the records whose aggregates it held, never the rejected one.
	st.failRec = errors.New("DynamoDB unavailable")
	got = invokeBatch(t, prod, staging, forged)
	if want := []string{prod.Kinesis.SequenceNumber, staging.Kinesis.SequenceNumber}; !slices.Equal(got, want) {
		t.Errorf("store failure: batchItemFailures %v, want %v", got, want)
	}
	if !strings.Contains(logs.String(), "DynamoDB unavailable") {
		t.Errorf("the store error is not in the summary line:\n%s", logs.String())
	}
}

// TestKinesisForgedOnly: a batch of nothing but a forged log group succeeds with an empty
// failure list and publishes nothing.
func TestKinesisForgedOnly(t *testing.T) {
	st, pub := newMemStore(), &memPublisher{}
	h := handler.New(handler.Options{
		Processor: pipeline.New(pipeline.Options{Rule: detect.UnauthorizedAccess, Mode: detect.ModeSeed, GroupBy: aggregate.GroupByUser, Sources: logsource.Default()}),
		Store:     st, Publisher: pub, Rule: detect.UnauthorizedAccess,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	rec := forgedRecord(t, sampleRecords(t)[0], "49600000000000000000000000000000000000000000000000000009")
	resp, err := h.Invoke(context.Background(), kinesisEvent(t, rec))
	if err != nil {
		t.Fatal(err)
	}
	if string(resp) != `{"batchItemFailures":[]}` {
		t.Errorf("response %s, want an empty failure list", resp)
	}
	if pub.count() != 0 || len(st.counts()) != 0 {
		t.Errorf("forged log group: %d alerts, counts %v; want none", pub.count(), st.counts())
	}
}

// TestKinesisRecordWithoutSource: an event whose records do not come from Kinesis is not
// answered record by record; the pipeline refuses it whole.
func TestKinesisRecordWithoutSource(t *testing.T) {
	h := handler.New(handler.Options{
		Processor: pipeline.New(pipeline.Options{Rule: detect.UnauthorizedAccess, Mode: detect.ModeSeed, GroupBy: aggregate.GroupByUser}),
		Store:     newMemStore(), Publisher: &memPublisher{}, Rule: detect.UnauthorizedAccess,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	ev := `{"Records":[{"eventSource":"aws:sqs","body":"x"}]}`
	if _, err := h.Invoke(context.Background(), []byte(ev)); !errors.Is(err, cwlogs.ErrUnknownEvent) {
		t.Errorf("SQS-shaped event: %v, want ErrUnknownEvent", err)
	}
}

// BenchmarkKinesisBatch is the function's own work on a full Kinesis batch (100 records of
// 20 forbidden creates, every line its own aggregate), with in-memory fakes of the store
// and publisher: decoding, detection, aggregation and the partial batch response, without
// the DynamoDB and SNS round trips (TestKinesisFullBatch in e2e measures those too).
func BenchmarkKinesisBatch(b *testing.B) {
	const records, perRecord = 100, 20
	base := sampleRecords(b)[0]
	var recs []events.KinesisEventRecord
	for r := range records {
		var evs []logEvent
		for i := range perRecord {
			line := auditLine(b, fmt.Sprintf("user-%d", i%10), fmt.Sprintf("192.0.2.%d", i+1), time.Duration(r*perRecord+i)*time.Millisecond, nil)
			evs = append(evs, logEvent{ID: fmt.Sprintf("%028d%028d", r, i), Timestamp: hourNow.UnixMilli(), Message: line})
		}
		recs = append(recs, withData(base, fmt.Sprintf("4960%052d", r), gzipped(b, subscriptionMessage(b, evs))))
	}
	ev, err := json.Marshal(events.KinesisEvent{Records: recs})
	if err != nil {
		b.Fatal(err)
	}
	h := handler.New(handler.Options{
		Processor: pipeline.New(pipeline.Options{Rule: detect.UnauthorizedAccess, Mode: detect.ModeSeed, GroupBy: aggregate.GroupByUser, Sources: logsource.Default()}),
		Store:     newMemStore(), Publisher: &memPublisher{}, Rule: detect.UnauthorizedAccess,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	b.ResetTimer()
	for range b.N {
		if _, err := h.Invoke(context.Background(), ev); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(records*perRecord*b.N)/b.Elapsed().Seconds(), "lines/s")
}

// TestOrganizationGuideResponse runs events/kinesis-corrupt-record.json through the
// handler and checks that docs/organization.md shows the response it gives: the corrupt
// (second) record alone in batchItemFailures.
func TestOrganizationGuideResponse(t *testing.T) {
	b, recs := kinesisSample(t, "kinesis-corrupt-record.json")
	h := handler.New(handler.Options{
		Processor: pipeline.New(pipeline.Options{Rule: detect.UnauthorizedAccess, Mode: detect.ModeSeed, GroupBy: aggregate.GroupByUser, Sources: logsource.Default()}),
		Store:     newMemStore(), Publisher: &memPublisher{}, Rule: detect.UnauthorizedAccess,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	resp, err := h.Invoke(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"batchItemFailures":[{"itemIdentifier":"` + recs[1].Kinesis.SequenceNumber + `"}]}`
	if string(resp) != want {
		t.Fatalf("response %s, want %s", resp, want)
	}
	guide, err := os.ReadFile(filepath.Join("..", "..", "docs", "organization.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(guide), "the function returned "+want) {
		t.Errorf("docs/organization.md does not show the response %s", want)
	}
}

// TestKinesisFailedGroupFailsItsRecords: when one alert group's alert cannot be sent, only
// the records whose aggregates belong to it are reported failed, whatever the order in
// which the records and their groups come.
func TestKinesisFailedGroupFailsItsRecords(t *testing.T) {
	recs := sampleRecords(t)
	prod := withData(recs[0], "49600000000000000000000000000000000000000000000000000001", recs[0].Kinesis.Data)
	staging := withData(recs[1], "49600000000000000000000000000000000000000000000000000002", recs[1].Kinesis.Data)
	for _, tc := range []struct {
		name    string
		records []events.KinesisEventRecord
		fail    string
		want    string
	}{
		{"staging's alert fails", []events.KinesisEventRecord{prod, staging}, "system:anonymous", staging.Kinesis.SequenceNumber},
		{"prod's alerts fail", []events.KinesisEventRecord{prod, staging}, "alice", prod.Kinesis.SequenceNumber},
		{"staging first, its alert fails", []events.KinesisEventRecord{staging, prod}, "system:anonymous", staging.Kinesis.SequenceNumber},
		{"staging first, prod's alerts fail", []events.KinesisEventRecord{staging, prod}, "alice", prod.Kinesis.SequenceNumber},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub := &memPublisher{fail: tc.fail}
			h := handler.New(handler.Options{
				Processor: pipeline.New(pipeline.Options{Rule: detect.UnauthorizedAccess, Mode: detect.ModeSeed, GroupBy: aggregate.GroupByUser,
					Region: "eu-west-1", Sources: logsource.Default()}),
				Store: newMemStore(), Publisher: pub, Rule: detect.UnauthorizedAccess,
				Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
			})
			resp, err := h.Invoke(context.Background(), kinesisEvent(t, tc.records...))
			if err != nil {
				t.Fatalf("Invoke: %v", err)
			}
			if got := failedSequenceNumbers(t, resp); !slices.Equal(got, []string{tc.want}) {
				t.Errorf("batchItemFailures %v, want [%s]", got, tc.want)
			}
			if pub.count() == 0 {
				t.Error("the other group's alert was not published")
			}
		})
	}
}
