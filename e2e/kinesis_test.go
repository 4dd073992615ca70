package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/eks-unauthorized-access/detector/infra/local/localtest"
	"github.com/eks-unauthorized-access/detector/internal/cwlogs"
	"github.com/eks-unauthorized-access/detector/internal/samples"
)

// TestKinesisPath is the organization path end to end: subscription payloads written to a
// Kinesis stream through the real Kinesis API (moto), read back with GetRecords, turned
// into the event an event source mapping delivers and given to the real bootstrap under
// the runtime interface emulator. The batch holds prod-cluster's payload (alice, two
// windows), a corrupt record, staging-cluster's payload (an anonymous user, another
// account) and a payload from a forged log group.
func TestKinesisPath(t *testing.T) {
	const kTable, kTopic = "e2e-kinesis", "e2e-kinesis-alerts"
	stack := localtest.FunctionStackForTest(t, kTable, kTopic)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	stream, err := stack.Moto.CreateStream(ctx, "eks-audit-logs")
	if err != nil {
		t.Fatal(err)
	}
	corruptEv := sampleRecords(t, "kinesis-corrupt-record.json")  // prod, corrupt, staging
	forgedEv := sampleRecords(t, "kinesis-forged-log-group.json") // staging, forged
	var seqs []string
	for i, data := range [][]byte{corruptEv[0].Kinesis.Data, corruptEv[1].Kinesis.Data, corruptEv[2].Kinesis.Data, forgedEv[1].Kinesis.Data} {
		seq, err := stream.Put(ctx, []string{"prod", "corrupt", "staging", "forged"}[i], data)
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	records, err := stream.ReadAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != 4 {
		t.Fatalf("read %d records back, want 4", len(records))
	}
	corruptSeq := seqs[1]

	invoke := func(t *testing.T, recs []types.Record) (failed []string, logs []string) {
		t.Helper()
		ev, err := stream.KinesisEvent(recs)
		if err != nil {
			t.Fatal(err)
		}
		mark := stack.Emulator.LogMark()
		resp, err := stack.Emulator.Invoke(ctx, ev)
		if err != nil {
			t.Fatalf("Invoke: %v (a Kinesis batch answers with a partial batch response)\n%s", err, stack.Emulator.Logs())
		}
		var r events.KinesisEventResponse
		if err := json.Unmarshal(resp, &r); err != nil || !strings.Contains(string(resp), `"batchItemFailures":[`) {
			t.Fatalf("response %s is not a partial batch response: %v", resp, err)
		}
		failed = []string{}
		for _, f := range r.BatchItemFailures {
			failed = append(failed, f.ItemIdentifier)
		}
		return failed, stack.Emulator.FunctionLogsSince(mark, 5*time.Second)
	}
	type alertKey struct{ cluster, account, user string }
	drain := func(t *testing.T) []alertKey {
		t.Helper()
		var out []alertKey
		for _, a := range drainAlerts(ctx, t, stack) {
			out = append(out, alertKey{a.Source.Cluster, a.Source.Account, a.RiskObject.Value})
		}
		slices.SortFunc(out, func(x, y alertKey) int { return strings.Compare(x.cluster+x.user, y.cluster+y.user) })
		return out
	}

	t.Run("corrupt record reported alone, others counted and alerted, forged log group rejected", func(t *testing.T) {
		failed, logs := invoke(t, records)
		if !slices.Equal(failed, []string{corruptSeq}) {
			t.Errorf("batchItemFailures %v, want exactly the corrupt record %s", failed, corruptSeq)
		}
		want := []alertKey{
			{"prod-cluster", "111122223333", "alice"}, {"prod-cluster", "111122223333", "alice"}, // two windows
			{"staging-cluster", "444455556666", "system:anonymous"},
		}
		if got := drain(t); !slices.Equal(got, want) {
			t.Errorf("alerts %v, want %v (none for the forged log group)", got, want)
		}
		if got := totalCount(ctx, t, stack); got != 5 {
			t.Errorf("DynamoDB counts sum to %d, want 5 (alice 4, staging 1, forged 0)", got)
		}
		joined := strings.Join(logs, "\n")
		for _, want := range []string{`"records":4`, `"recordsFailed":1`, `"rejected_log_group":2`, `"LogEventsRejectedLogGroup":2`, `"RecordsFailed":1`} {
			if !strings.Contains(joined, want) {
				t.Errorf("function output lacks %s:\n%s", want, joined)
			}
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	counts := aggregateCounts(ctx, t, stack)

	for _, c := range []struct {
		name       string
		recs       []types.Record
		wantFailed []string
	}{
		{"retry from the failed record", records[1:], []string{corruptSeq}},
		{"whole batch again", records, []string{corruptSeq}},
		{"bisected: first half", records[:2], []string{corruptSeq}},
		{"bisected: second half", records[2:], []string{}},
		{"forged log group alone", records[3:], []string{}},
	} {
		t.Run(c.name+": counts and alerts unchanged", func(t *testing.T) {
			failed, _ := invoke(t, c.recs)
			if !slices.Equal(failed, c.wantFailed) {
				t.Errorf("batchItemFailures %v, want %v", failed, c.wantFailed)
			}
			if got := drain(t); len(got) != 0 {
				t.Errorf("published %v, want nothing", got)
			}
			assertCounts(t, aggregateCounts(ctx, t, stack), counts)
		})
	}
}

// sampleRecords returns the records of a Kinesis sample event in events/.
func sampleRecords(t *testing.T, name string) []events.KinesisEventRecord {
	t.Helper()
	var ev events.KinesisEvent
	if err := json.Unmarshal(readEvent(t, name), &ev); err != nil {
		t.Fatal(err)
	}
	return ev.Records
}

// payloadNow is a compressed subscription payload of n forbidden creates received now
// (DynamoDB Local expires items by the real clock), by ten users in turn. Each line has its
// own requestReceivedTimestamp, one of the 13 by-fields: every line is its own aggregate,
// the most writes per line the detection can cost.
func payloadNow(t *testing.T, now time.Time, record, n int) []byte {
	t.Helper()
	var evs []cwlogs.MessageEvent
	for i := range n {
		at := now.Add(time.Duration(record*n+i) * time.Microsecond)
		line := samples.ForbiddenCreate(t, fmt.Sprintf("user-%d", i%10), fmt.Sprintf("192.0.2.%d", i%250+1), at, map[string]any{"auditID": fmt.Sprintf("tput-%d-%d", record, i)})
		evs = append(evs, cwlogs.MessageEvent{ID: fmt.Sprintf("%028d%028d", record, i), Timestamp: at.UnixMilli(), Message: line})
	}
	return prodPayload(t, evs)
}

// TestKinesisFullBatch gives one function instance a batch of 100 records (the template's
// BatchSize) of 20 forbidden creates each, all through moto's Kinesis API: every line is
// counted once, one alert per user, no record failed; it logs the lines per second the
// instance carried against DynamoDB Local (docs/organization.md quotes the figure).
func TestKinesisFullBatch(t *testing.T) {
	const records, perRecord = 100, 20
	stack := localtest.FunctionStackForTest(t, "e2e-kinesis-batch", "e2e-kinesis-batch-alerts")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stream, err := stack.Moto.CreateStream(ctx, "eks-audit-logs")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Hour).Add(30 * time.Minute)
	for r := range records {
		if _, err := stream.Put(ctx, fmt.Sprint(r), payloadNow(t, now, r, perRecord)); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := stream.ReadAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := stream.KinesisEvent(recs)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	resp, err := stack.Emulator.Invoke(ctx, ev)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("Invoke: %v\n%s", err, stack.Emulator.Logs())
	}
	if string(resp) != `{"batchItemFailures":[]}` {
		t.Fatalf("response %s, want no failed record", resp)
	}
	if got := totalCount(ctx, t, stack); got != records*perRecord {
		t.Errorf("DynamoDB counts sum to %d, want %d", got, records*perRecord)
	}
	if got := len(drainAlerts(ctx, t, stack)); got != 10 {
		t.Errorf("%d alerts, want one per user (10)", got)
	}
	t.Logf("%d records, %d audit lines (%d aggregates) in %s: %.0f lines/s for one function instance (%d KB event)",
		records, records*perRecord, records*perRecord, elapsed.Round(time.Millisecond),
		float64(records*perRecord)/elapsed.Seconds(), len(ev)/1024)
}
