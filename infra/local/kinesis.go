package local

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// KinesisClient returns a Kinesis Data Streams client for this instance, with dummy
// credentials.
func (m *Moto) KinesisClient(optFns ...func(*kinesis.Options)) *kinesis.Client {
	return kinesis.NewFromConfig(AWSConfig(), append([]func(*kinesis.Options){func(o *kinesis.Options) {
		o.BaseEndpoint = aws.String(m.Endpoint)
	}}, optFns...)...)
}

// Stream is a Kinesis data stream of one shard on a Moto, written and read through the
// real Kinesis API, the way CloudWatch Logs writes a destination's stream and Lambda's
// event source mapping reads it.
type Stream struct {
	Name, ARN string
	client    *kinesis.Client
}

// CreateStream creates a one-shard stream and waits until it is active.
func (m *Moto) CreateStream(ctx context.Context, name string) (*Stream, error) {
	c := m.KinesisClient()
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(1)}); err != nil {
		return nil, fmt.Errorf("create stream %s: %w", name, err)
	}
	w := kinesis.NewStreamExistsWaiter(c, func(o *kinesis.StreamExistsWaiterOptions) { o.MinDelay = 50 * time.Millisecond })
	out, err := w.WaitForOutput(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(name)}, 30*time.Second)
	if err != nil {
		return nil, fmt.Errorf("wait for stream %s: %w", name, err)
	}
	return &Stream{Name: name, ARN: aws.ToString(out.StreamDescription.StreamARN), client: c}, nil
}

// Put writes data as one record and returns its sequence number. Records written one
// after another are read back in that order (one shard).
func (s *Stream) Put(ctx context.Context, partitionKey string, data []byte) (string, error) {
	out, err := s.client.PutRecord(ctx, &kinesis.PutRecordInput{
		StreamName: aws.String(s.Name), PartitionKey: aws.String(partitionKey), Data: data,
	})
	if err != nil {
		return "", fmt.Errorf("put record on %s: %w", s.Name, err)
	}
	return aws.ToString(out.SequenceNumber), nil
}

// ReadAll reads every record of the stream's shard from its start, with GetRecords.
func (s *Stream) ReadAll(ctx context.Context) ([]types.Record, error) {
	shards, err := s.client.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(s.Name)})
	if err != nil {
		return nil, fmt.Errorf("list shards of %s: %w", s.Name, err)
	}
	if len(shards.Shards) != 1 {
		return nil, fmt.Errorf("stream %s has %d shards, want 1", s.Name, len(shards.Shards))
	}
	it, err := s.client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName: aws.String(s.Name), ShardId: shards.Shards[0].ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
	})
	if err != nil {
		return nil, fmt.Errorf("get shard iterator of %s: %w", s.Name, err)
	}
	var records []types.Record
	iter := it.ShardIterator
	for iter != nil {
		out, err := s.client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
		if err != nil {
			return nil, fmt.Errorf("get records of %s: %w", s.Name, err)
		}
		records = append(records, out.Records...)
		if len(out.Records) == 0 || aws.ToInt64(out.MillisBehindLatest) == 0 {
			break
		}
		iter = out.NextShardIterator
	}
	return records, nil
}

// KinesisEvent returns the Lambda event that an event source mapping on the stream would
// deliver for records (aws-lambda-go's events.KinesisEvent: data base64, sequence numbers,
// eventID "shardId-...:<sequence number>").
func (s *Stream) KinesisEvent(records []types.Record) ([]byte, error) {
	var ev events.KinesisEvent
	region := Region
	if parts := strings.Split(s.ARN, ":"); len(parts) > 3 {
		region = parts[3]
	}
	for _, r := range records {
		seq := aws.ToString(r.SequenceNumber)
		ev.Records = append(ev.Records, events.KinesisEventRecord{
			AwsRegion:         region,
			EventID:           "shardId-000000000000:" + seq,
			EventName:         "aws:kinesis:record",
			EventSource:       "aws:kinesis",
			EventSourceArn:    s.ARN,
			EventVersion:      "1.0",
			InvokeIdentityArn: "arn:aws:iam::" + AccountID + ":role/function",
			Kinesis: events.KinesisRecord{
				ApproximateArrivalTimestamp: events.SecondsEpochTime{Time: aws.ToTime(r.ApproximateArrivalTimestamp)},
				Data:                        r.Data,
				KinesisSchemaVersion:        "1.0",
				PartitionKey:                aws.ToString(r.PartitionKey),
				SequenceNumber:              seq,
			},
		})
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode Kinesis event: %w", err)
	}
	return b, nil
}
