package handler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
)

// kinesisRecord is what the handler reads of one record of a Lambda Kinesis event: the
// sequence number that identifies it in a partial batch response, and its data, a
// base64 CloudWatch Logs subscription payload kept as the raw JSON string.
type kinesisRecord struct {
	EventSource string `json:"eventSource"`
	Kinesis     struct {
		SequenceNumber string          `json:"sequenceNumber"`
		Data           json.RawMessage `json:"data"`
	} `json:"kinesis"`
}

// kinesisRecords returns the records of payload when it is a Lambda Kinesis event
// ({"Records":[{"eventSource":"aws:kinesis",...}]}); ok is false for any other event,
// which the pipeline then decodes (or refuses) whole.
func kinesisRecords(payload []byte) (records []kinesisRecord, ok bool) {
	// Cheap test first: a CloudWatch Logs event ({"awslogs":...}) is not parsed twice.
	head := bytes.TrimLeft(payload, " \t\r\n")
	if !bytes.HasPrefix(head, []byte("{")) || !bytes.HasPrefix(bytes.TrimLeft(head[1:], " \t\r\n"), []byte(`"Records"`)) {
		return nil, false
	}
	var ev struct {
		Records []kinesisRecord `json:"Records"`
	}
	if err := json.Unmarshal(payload, &ev); err != nil || len(ev.Records) == 0 {
		return nil, false
	}
	for _, r := range ev.Records {
		if r.EventSource != "aws:kinesis" {
			return nil, false
		}
	}
	return ev.Records, true
}

// batchResponse is the partial batch response of a Kinesis event source mapping with
// FunctionResponseTypes [ReportBatchItemFailures]: Lambda checkpoints before the lowest
// sequence number listed and retries from there; an empty list is complete success.
type batchResponse struct {
	BatchItemFailures []batchItemFailure `json:"batchItemFailures"`
}

type batchItemFailure struct {
	ItemIdentifier string `json:"itemIdentifier"`
}

// invokeKinesis handles a Kinesis batch record by record, so that one bad record never
// fails the others:
//
//   - each record runs through the pipeline alone; a record that cannot be decoded is
//     reported failed and contributes nothing;
//   - the aggregates of the good records are recorded and alerted together, exactly as a
//     CloudWatch Logs delivery (counting is idempotent per log event id, alerting per
//     alert group and window);
//   - when recording or an alert group fails, the records whose aggregates belong to the
//     failed groups are reported failed.
//
// Lambda then retries from the lowest failed sequence number: the good records after it
// come again and change nothing, whether Lambda retries the whole remainder or bisects it.
// The error returned is for the summary line only; the invocation itself succeeds with the
// partial batch response.
func (h *Handler) invokeKinesis(ctx context.Context, records []kinesisRecord, sum *summary) ([]byte, error) {
	sum.records = len(records)
	failed := make([]bool, len(records))
	var errs []error
	var aggs []aggregate.Aggregate
	// The records each alert group's aggregates came from (deliver reorders aggs).
	origin := map[aggregate.AlertGroup][]int{}
	for i, r := range records {
		event := make([]byte, 0, len(r.Kinesis.Data)+len(`{"awslogs":{"data":}}`))
		event = append(append(append(event, `{"awslogs":{"data":`...), r.Kinesis.Data...), "}}"...)
		h.mu.Lock()
		res, err := h.opts.Processor.Process(event)
		h.mu.Unlock()
		sum.stats.Add(res.Stats)
		if err != nil {
			failed[i] = true
			errs = append(errs, fmt.Errorf("record %s: process: %w", r.Kinesis.SequenceNumber, err))
			continue
		}
		for _, a := range res.Aggregates {
			g := aggregate.AlertGroupOf(a)
			if n := len(origin[g]); n == 0 || origin[g][n-1] != i {
				origin[g] = append(origin[g], i)
			}
		}
		aggs = append(aggs, res.Aggregates...)
	}
	failedGroups, err := h.deliver(ctx, aggs, sum)
	if err != nil {
		errs = append(errs, err)
	}
	for g := range failedGroups {
		for _, i := range origin[g] {
			failed[i] = true
		}
	}
	resp := batchResponse{BatchItemFailures: []batchItemFailure{}}
	for i, f := range failed {
		if f {
			resp.BatchItemFailures = append(resp.BatchItemFailures, batchItemFailure{ItemIdentifier: records[i].Kinesis.SequenceNumber})
		}
	}
	sum.recordsFailed = len(resp.BatchItemFailures)
	if sum.recordsFailed > 0 {
		// Lambda resumes the shard from the lowest one: the record to look at first.
		sum.firstFailed = resp.BatchItemFailures[0].ItemIdentifier
	}
	out, mErr := json.Marshal(resp)
	if mErr != nil {
		// Cannot happen for this type; Invoke fails the whole batch rather than lose records.
		return nil, errors.Join(append(errs, mErr)...)
	}
	return out, errors.Join(errs...)
}
