// Package cwlogs decodes the Lambda events this function receives from CloudWatch Logs:
// the subscription event ({"awslogs":{"data":base64(gzip|zlib(JSON))}}) and a Kinesis
// event whose records each carry such a payload (the cross-account, multi-cluster path).
//
// The decompressed size of a whole invocation is capped, so a gzip bomb fails fast with
// ErrTooLarge instead of exhausting memory. aws-lambda-go's CloudwatchLogsRawData.Parse has
// no such cap and is deliberately not used.
package cwlogs

import "errors"

// MessageType says whether a payload carries log events or is a health check.
type MessageType string

// Message types written by CloudWatch Logs.
const (
	DataMessage    MessageType = "DATA_MESSAGE"
	ControlMessage MessageType = "CONTROL_MESSAGE"
)

// DefaultMaxDecompressedBytes is the default cap on the inflated size of one invocation.
const DefaultMaxDecompressedBytes = 64 << 20

// ErrTooLarge is returned when inflating would exceed the configured cap.
var ErrTooLarge = errors.New("decompressed payload exceeds the configured limit")

// ErrUnknownEvent is returned for a Lambda event that is neither a CloudWatch Logs
// subscription event nor a Kinesis event.
var ErrUnknownEvent = errors.New("unknown event shape")

// Payload is one decoded CloudWatch Logs subscription message.
type Payload struct {
	MessageType         MessageType
	Owner               string // AWS account id of the log group
	LogGroup            string
	LogStream           string
	SubscriptionFilters []string
	PolicyLevel         string // set on account-level subscription deliveries
	LogEvents           []LogEvent
}

// LogEvent is one CloudWatch log event.
type LogEvent struct {
	ID        string
	Timestamp int64 // milliseconds since the Unix epoch
	// Message is the log line. When Escaped is true it still holds the JSON string escapes
	// of the payload (the bytes between the quotes, as inflated): call Text for the line.
	// The bytes may alias the decoder's buffer and are valid until the next Decode.
	Message []byte
	Escaped bool
}

// Text returns the log line with the payload's JSON string escapes decoded.
func (e LogEvent) Text() ([]byte, error) {
	if !e.Escaped {
		return e.Message, nil
	}
	return unescape(e.Message)
}

// Decoder decodes Lambda events; the zero value uses DefaultMaxDecompressedBytes.
// A Decoder may reuse buffers between calls and is not safe for concurrent use.
type Decoder struct {
	// MaxBytes caps the total inflated size of one Decode call.
	MaxBytes int64
}

// Decode decodes a raw Lambda event: a CloudWatch Logs subscription event or a Kinesis
// event. It returns one Payload per compressed payload, in order.
func (d *Decoder) Decode(event []byte) ([]Payload, error)

// ParseMessage parses an already-inflated subscription message (DATA_MESSAGE or
// CONTROL_MESSAGE JSON), as found in decoded samples.
func ParseMessage(msg []byte) (Payload, error)
