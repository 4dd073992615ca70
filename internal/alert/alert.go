// Package alert builds risk alerts from aggregates and renders them into one SNS Publish
// input per alert: a short Subject, and a MessageStructure=json message with an AWS Chatbot
// custom notification (default, https), plain text (email) and versioned JSON (sqs, lambda).
//
// Every value copied from an audit event is attacker-controlled; rendering neutralises
// Slack mentions and links, markdown, control characters and over-long values.
package alert

import (
	"time"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/detect"
)

// Group is everything known about one alert group when its alert is built.
type Group struct {
	Rule   detect.Rule
	Window time.Time // start of the hour, UTC
	Key    string    // alert group key (aggregate.Aggregate.Group)
	// Aggregates are the group's aggregates (from this delivery or, in the Lambda, as stored).
	Aggregates []aggregate.Aggregate
}

// Attribute is one SNS message attribute (DataType String or Number).
type Attribute struct {
	DataType    string `json:"DataType"`
	StringValue string `json:"StringValue"`
}

// Message is exactly the SNS Publish input for one alert (TopicArn aside).
type Message struct {
	Subject           string               `json:"Subject"`
	Message           string               `json:"Message"`
	MessageStructure  string               `json:"MessageStructure"`
	MessageAttributes map[string]Attribute `json:"MessageAttributes"`
}
