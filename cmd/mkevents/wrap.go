package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"regexp"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/eks-unauthorized-access/detector/internal/cwlogs"
)

// timestampField matches the audit event's own times, which decide its window.
var timestampField = regexp.MustCompile(`"(requestReceivedTimestamp|stageTimestamp)":"([^"]+)"`)

// auditTimeFormat is how kube-apiserver writes them (microseconds, UTC).
const auditTimeFormat = "2006-01-02T15:04:05.000000Z"

// wrap turns audit lines (one JSON event per line) into one CloudWatch Logs subscription
// Lambda event of prod-cluster, moved in time so that the newest event happened age before
// now. The shift is a whole number of hours, so events keep their hourly windows relative
// to each other; everything else in the lines is kept as it is. Log event ids derive from
// the shifted lines, so wrapping the same lines for the same hour gives the same event,
// and delivering it twice is a redelivery.
func wrap(lines []byte, now time.Time, age time.Duration) ([]byte, error) {
	var newest time.Time
	var raw []string
	for _, l := range bytes.Split(bytes.TrimRight(lines, "\n"), []byte("\n")) {
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		raw = append(raw, string(l))
		for _, m := range timestampField.FindAllSubmatch(l, -1) {
			t, err := time.Parse(time.RFC3339Nano, string(m[2]))
			if err != nil {
				return nil, fmt.Errorf("line %d: %s %q: %w", len(raw), m[1], m[2], err)
			}
			if t.After(newest) {
				newest = t
			}
		}
	}
	if newest.IsZero() {
		return nil, fmt.Errorf("no requestReceivedTimestamp or stageTimestamp in the lines")
	}
	shift := now.Add(-age).Sub(newest).Truncate(time.Hour)
	if now.Add(-age).Before(newest) {
		shift -= time.Hour // Truncate rounds towards zero; a backward shift must round down
	}
	msg := cwlogs.Message{
		MessageType: cwlogs.DataMessage, Owner: prod.owner, LogGroup: prod.logGroup, LogStream: prod.logStream,
		SubscriptionFilters: []string{"eks-unauthorized-access"},
	}
	for i, l := range raw {
		var stage time.Time
		shifted := timestampField.ReplaceAllStringFunc(l, func(field string) string {
			m := timestampField.FindStringSubmatch(field)
			t, _ := time.Parse(time.RFC3339Nano, m[2]) // parsed above
			t = t.Add(shift).UTC()
			if m[1] == "stageTimestamp" {
				stage = t
			}
			return `"` + m[1] + `":"` + t.Format(auditTimeFormat) + `"`
		})
		ts := now.Add(-age).UnixMilli()
		if !stage.IsZero() {
			ts = stage.UnixMilli() + 150
		}
		msg.LogEvents = append(msg.LogEvents, cwlogs.MessageEvent{ID: eventID(shifted, i), Timestamp: ts, Message: shifted})
	}
	b, err := marshal(msg)
	if err != nil {
		return nil, err
	}
	data, err := compress(b, gzipCodec)
	if err != nil {
		return nil, err
	}
	if _, err := base64.StdEncoding.DecodeString(data); err != nil {
		return nil, err
	}
	return marshal(events.CloudwatchLogsEvent{AWSLogs: events.CloudwatchLogsRawData{Data: data}})
}
