package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/big"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/eks-unauthorized-access/detector/internal/cwlogs"
)

// codec is how a subscription payload is compressed.
type codec int

const (
	gzipCodec codec = iota
	zlibCodec       // account-level subscription policies deliver zlib
)

// cluster is where a payload's log events come from.
type cluster struct {
	owner, logGroup, logStream string
}

var (
	prod = cluster{
		owner:     "111122223333",
		logGroup:  "/aws/eks/prod-cluster/cluster",
		logStream: "kube-apiserver-audit-4f0c2a7d1e6b9a3c5d8e0f1a2b3c4d5e",
	}
	// forged is a log group outside the accepted patterns that someone able to write to a
	// log group of a member account could fill with made-up audit lines.
	forged = cluster{
		owner:     "111122223333",
		logGroup:  "/aws/lambda/attacker",
		logStream: "kube-apiserver-audit-0000000000000000",
	}
	staging = cluster{
		owner:     "444455556666",
		logGroup:  "/aws/eks/staging-cluster/cluster",
		logStream: "kube-apiserver-audit-9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b",
	}
)

// payload is one subscription message to build: log events from raw files.
type payload struct {
	cluster     cluster
	raw         []string // files under raw/, their lines in order
	junkEvery   int      // insert the next line of raw/junk.txt after every junkEvery lines (0: none)
	control     bool
	corrupt     bool // a record whose data is base64 but not a compressed payload
	codec       codec
	policyLevel string
}

// spec is one generated event file.
type spec struct {
	name     string
	kinesis  bool // a Kinesis event with one record per payload, else a CloudWatch Logs event
	payloads []payload
}

var specs = []spec{
	{name: "cloudwatch-anonymous.json", payloads: []payload{{cluster: prod, raw: []string{"anonymous-forbidden.jsonl"}}}},
	{name: "cloudwatch-iam-user.json", payloads: []payload{{cluster: prod, raw: []string{"iam-user-forbidden.jsonl"}}}},
	// The same user keeps trying in the first window: with cloudwatch-iam-user.json, 10
	// attempts, the first escalation threshold.
	{name: "cloudwatch-iam-user-burst.json", payloads: []payload{{cluster: prod, raw: []string{"iam-user-burst.jsonl"}}}},
	{name: "cloudwatch-mixed-batch.json", payloads: []payload{{cluster: prod, raw: []string{"mixed.jsonl"}, junkEvery: 2}}},
	{name: "cloudwatch-control-message.json", payloads: []payload{{control: true}}},
	{name: "cloudwatch-zlib.json", payloads: []payload{{cluster: prod, raw: []string{"anonymous-forbidden.jsonl"}, codec: zlibCodec, policyLevel: "ACCOUNT_LEVEL_POLICY"}}},
	{name: "kinesis-multi-cluster.json", kinesis: true, payloads: []payload{
		{cluster: prod, raw: []string{"iam-user-forbidden.jsonl"}},
		{cluster: staging, raw: []string{"staging-anonymous.jsonl"}},
	}},
	{name: "kinesis-corrupt-record.json", kinesis: true, payloads: []payload{
		{cluster: prod, raw: []string{"iam-user-forbidden.jsonl"}},
		{corrupt: true},
		{cluster: staging, raw: []string{"staging-anonymous.jsonl"}},
	}},
	{name: "kinesis-forged-log-group.json", kinesis: true, payloads: []payload{
		{cluster: staging, raw: []string{"staging-anonymous.jsonl"}},
		{cluster: forged, raw: []string{"anonymous-forbidden.jsonl"}},
	}},
}

// subscriptionMessage is the decompressed JSON CloudWatch Logs delivers, in its key order.
// Generate builds every event file from the raw lines in fsys (raw/...), keyed by file name.
func Generate(fsys fs.FS) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, s := range specs {
		var datas []string
		for i, p := range s.payloads {
			if p.corrupt {
				datas = append(datas, base64.StdEncoding.EncodeToString([]byte("not a gzip or zlib stream")))
				continue
			}
			msg, err := p.message(fsys, fmt.Sprintf("%s/%d", s.name, i))
			if err != nil {
				return nil, fmt.Errorf("build %s: %w", s.name, err)
			}
			data, err := compress(msg, p.codec)
			if err != nil {
				return nil, fmt.Errorf("build %s: %w", s.name, err)
			}
			datas = append(datas, data)
		}
		var ev any
		if s.kinesis {
			ev = kinesisEvent(s.name, datas)
		} else {
			ev = events.CloudwatchLogsEvent{AWSLogs: events.CloudwatchLogsRawData{Data: datas[0]}}
		}
		b, err := marshal(ev)
		if err != nil {
			return nil, fmt.Errorf("build %s: %w", s.name, err)
		}
		out[s.name] = b
	}
	return out, nil
}

func (p payload) message(fsys fs.FS, seed string) ([]byte, error) {
	if p.control {
		return marshal(cwlogs.Message{
			MessageType: cwlogs.ControlMessage, Owner: "CloudwatchLogs", SubscriptionFilters: []string{},
			LogEvents: []cwlogs.MessageEvent{{ID: "", Timestamp: ms("2026-11-24T08:00:00.000Z"),
				Message: "CWL CONTROL MESSAGE: Checking health of destination Lambda function."}},
		})
	}
	var lines []string
	for _, name := range p.raw {
		b, err := fs.ReadFile(fsys, "raw/"+name)
		if err != nil {
			return nil, err
		}
		lines = append(lines, strings.Split(strings.TrimRight(string(b), "\n"), "\n")...)
	}
	if p.junkEvery > 0 {
		b, err := fs.ReadFile(fsys, "raw/junk.txt")
		if err != nil {
			return nil, err
		}
		junk := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		var mixed []string
		for i, l := range lines {
			mixed = append(mixed, l)
			if (i+1)%p.junkEvery == 0 && len(junk) > 0 {
				mixed, junk = append(mixed, junk[0]), junk[1:]
			}
		}
		lines = append(mixed, junk...)
	}
	msg := cwlogs.Message{
		MessageType: cwlogs.DataMessage, Owner: p.cluster.owner, LogGroup: p.cluster.logGroup, LogStream: p.cluster.logStream,
		SubscriptionFilters: []string{"eks-unauthorized-access"}, PolicyLevel: p.policyLevel,
	}
	var last int64
	for i, l := range lines {
		// CloudWatch ingests an audit line shortly after its stage timestamp; junk lines
		// follow the previous event.
		ts := last + 1
		var head struct {
			StageTimestamp string `json:"stageTimestamp"`
		}
		if json.Unmarshal([]byte(l), &head) == nil && head.StageTimestamp != "" {
			ts = ms(head.StageTimestamp) + 150
		}
		last = ts
		msg.LogEvents = append(msg.LogEvents, cwlogs.MessageEvent{ID: eventID(seed, i), Timestamp: ts, Message: l})
	}
	return marshal(msg)
}

func ms(rfc3339 string) int64 {
	t, err := time.Parse(time.RFC3339Nano, rfc3339)
	if err != nil {
		panic(err) // only called with the fixed timestamps above and in raw/
	}
	return t.UnixMilli()
}

// eventID is a deterministic 56-digit id shaped like CloudWatch Logs' event ids.
func eventID(seed string, i int) string {
	d := sha256.Sum256(fmt.Appendf(nil, "%s/%d", seed, i))
	n := new(big.Int).SetBytes(d[:])
	n.Mod(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(56), nil))
	return fmt.Sprintf("%056s", n.String())
}

func compress(msg []byte, c codec) (string, error) {
	comp, err := cwlogs.Compress(msg, map[codec]cwlogs.Compression{gzipCodec: cwlogs.Gzip, zlibCodec: cwlogs.Zlib}[c])
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(comp), nil
}

func kinesisEvent(name string, datas []string) events.KinesisEvent {
	var ev events.KinesisEvent
	arrival := time.Date(2026, 11, 24, 10, 5, 2, 0, time.UTC)
	for i, data := range datas {
		raw, _ := base64.StdEncoding.DecodeString(data)
		seq := fmt.Sprintf("4966%052s", eventID(name+"/seq", i)[:52])
		ev.Records = append(ev.Records, events.KinesisEventRecord{
			AwsRegion:         "eu-west-1",
			EventID:           "shardId-000000000000:" + seq,
			EventName:         "aws:kinesis:record",
			EventSource:       "aws:kinesis",
			EventSourceArn:    "arn:aws:kinesis:eu-west-1:111122223333:stream/eks-audit-logs",
			EventVersion:      "1.0",
			InvokeIdentityArn: "arn:aws:iam::111122223333:role/eks-unauthorized-access-function",
			Kinesis: events.KinesisRecord{
				ApproximateArrivalTimestamp: events.SecondsEpochTime{Time: arrival.Add(time.Duration(i) * time.Second)},
				Data:                        raw,
				KinesisSchemaVersion:        "1.0",
				PartitionKey:                fmt.Sprintf("%x", sha256.Sum256([]byte(name+fmt.Sprint(i))))[:32],
				SequenceNumber:              seq,
			},
		})
	}
	return ev
}

// marshal writes compact JSON without HTML escaping, ending in a newline.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode JSON: %w", err)
	}
	return buf.Bytes(), nil
}
