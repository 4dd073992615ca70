// Package eventbus puts alerts on an Amazon EventBridge event bus, so that EventBridge
// rules can route them (to Step Functions, a ticketing system, another account's bus).
//
// An event's detail is the versioned structured alert, exactly the body that sqs and
// lambda subscribers of the topic receive; its source is Source and its detail-type says
// the alert's kind (DetailType). PutEvents is not idempotent, so Send, like the SNS
// publisher, repeats a put only when EventBridge certainly did not accept it, and says
// when it may have (the handler then sends it again flagged as a possible duplicate, with
// the same alert id).
package eventbus

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/eks-unauthorized-access/detector/internal/alert"
	"github.com/eks-unauthorized-access/detector/internal/finding"
	"github.com/eks-unauthorized-access/detector/internal/notify"
)

// Source is the source of every event this project puts.
const Source = "eks-unauthorized-access"

// Detail types, one per kind of alert.
const (
	DetailTypeAlert  = "Kubernetes Unauthorized Access Alert"
	DetailTypeUpdate = "Kubernetes Unauthorized Access Alert Update"
	DetailTypeReport = "Kubernetes Unauthorized Access Report"
	DetailTypeFlood  = "Kubernetes Unauthorized Access Many Users Alert"
)

// DetailType is the detail-type of an event carrying a message of kind k.
func DetailType(k alert.Kind) string {
	switch k {
	case alert.KindEscalation:
		return DetailTypeUpdate
	case alert.KindReport:
		return DetailTypeReport
	case alert.KindFlood:
		return DetailTypeFlood
	}
	return DetailTypeAlert
}

// Entry returns the PutEvents entry of message m for the bus (a name or ARN; "" is the
// account's default bus). It is pure.
func Entry(m alert.Message, bus string) (types.PutEventsRequestEntry, error) {
	detail, err := alert.Structured(m)
	if err != nil {
		return types.PutEventsRequestEntry{}, err
	}
	var head struct {
		Source      alert.Source `json:"source"`
		GeneratedAt time.Time    `json:"generatedAt"`
	}
	if err := json.Unmarshal(detail, &head); err != nil {
		return types.PutEventsRequestEntry{}, fmt.Errorf("decode structured alert: %w", err)
	}
	e := types.PutEventsRequestEntry{
		Source:     aws.String(Source),
		DetailType: aws.String(DetailType(alert.KindOf(m))),
		Detail:     aws.String(string(detail)),
		Resources:  []string{},
	}
	if bus != "" {
		e.EventBusName = aws.String(bus)
	}
	if !head.GeneratedAt.IsZero() {
		e.Time = aws.Time(head.GeneratedAt)
	}
	if s := head.Source; s.Cluster != "" && s.Region != "" && s.Account != "" {
		e.Resources = append(e.Resources, finding.ClusterARN(finding.PartitionOf(s.Region), s.Region, s.Account, s.Cluster))
	}
	return e, nil
}

// Putter puts alerts on one event bus.
type Putter struct {
	client *eventbridge.Client
	bus    string
}

// New returns a Putter for bus (a name or ARN; "" is the default bus).
func New(client *eventbridge.Client, bus string) *Putter {
	return &Putter{client: client, bus: bus}
}

// Name names the output in claim items, logs and metrics.
func (*Putter) Name() string { return "eventbridge" }

// Wants reports whether messages of kind k are put on the bus: every kind.
func (*Putter) Wants(alert.Kind) bool { return true }

// Send puts m on the bus and returns the event id. Errors are *notify.Error values; one
// whose MaybeAccepted is set may have put the event although the call failed.
func (p *Putter) Send(ctx context.Context, m alert.Message) (string, error) {
	e, err := Entry(m, p.bus)
	if err != nil {
		return "", fmt.Errorf("put event: %w", err)
	}
	in := &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{e}}
	return notify.SendOnce(ctx, "put event on "+p.busName(), func(ctx context.Context) (string, error) {
		out, err := p.client.PutEvents(ctx, in, func(o *eventbridge.Options) { o.Retryer = aws.NopRetryer{} })
		if err != nil {
			return "", err
		}
		if out.FailedEntryCount > 0 || len(out.Entries) != 1 {
			// The entry was answered and refused: certainly not put.
			code, msg := "", ""
			if len(out.Entries) > 0 {
				code, msg = aws.ToString(out.Entries[0].ErrorCode), aws.ToString(out.Entries[0].ErrorMessage)
			}
			return "", notify.Refused("entry", code, msg)
		}
		return aws.ToString(out.Entries[0].EventId), nil
	})
}

func (p *Putter) busName() string {
	if p.bus == "" {
		return "the default bus"
	}
	return p.bus
}
