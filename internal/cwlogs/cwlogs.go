// Package cwlogs decodes the Lambda events this function receives from CloudWatch Logs:
// the subscription event ({"awslogs":{"data":base64(gzip|zlib(JSON))}}) and a Kinesis
// event whose records each carry such a payload (the cross-account, multi-cluster path).
//
// The decompressed size of a whole invocation is capped, so a gzip bomb fails fast with
// ErrTooLarge instead of exhausting memory. aws-lambda-go's CloudwatchLogsRawData.Parse has
// no such cap and is deliberately not used.
package cwlogs

import (
	"bytes"
	"errors"
	"io"

	"github.com/eks-unauthorized-access/detector/internal/inflate"
	"github.com/eks-unauthorized-access/detector/internal/jsonscan"
	"github.com/eks-unauthorized-access/detector/internal/jsonstring"
)

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

// ErrUnknownCompression is returned for a payload that is neither gzip nor zlib.
var ErrUnknownCompression = errors.New("payload is neither gzip nor zlib")

// ErrUnknownMessageType is returned for a subscription message whose messageType is
// neither DATA_MESSAGE nor CONTROL_MESSAGE.
var ErrUnknownMessageType = errors.New("unknown messageType")

// ErrUnknownEvent is returned for a Lambda event that is neither a CloudWatch Logs
// subscription event nor a Kinesis event.
var ErrUnknownEvent = errors.New("unknown event shape")

// ErrMalformedMessage is returned by LogEvent.Text when the subscription message around
// the log event turns out not to be JSON: the whole payload is bad, not just the line.
var ErrMalformedMessage = errors.New("parse subscription message: not valid JSON around a log event")

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
	// Cut is set by Stream on a message longer than the decoder holds at once
	// (MaxLineBytes): Message holds its first bytes, ending on a whole escape.
	Cut bool
	// PastBound is set by Stream on a log event whose message starts past the bound on
	// work (MaxBytes): Message is nil, the line was not read.
	PastBound bool

	rawID []byte // the id as read by Stream, valid during the Sink call

	// split is set on events read by the record splitter, whose Message may run past the
	// real end for a writer that appends keys after "message" (never CloudWatch Logs).
	split bool
}

// EventID returns the log event's id.
func (e *LogEvent) EventID() string {
	if e.ID != "" || len(e.rawID) == 0 {
		return e.ID
	}
	return string(e.rawID)
}

// Text returns the log line with the payload's JSON string escapes decoded.
func (e LogEvent) Text() ([]byte, error) {
	if !e.Escaped {
		return e.Message, nil
	}
	msg := e.Message
	if e.split {
		// The string ends at its first unescaped quote; the splitter checked only the
		// layout around it. This costs one scan per decoded line, not per log event.
		if end := jsonscan.StringEnd(msg, 0); end >= 0 {
			// What follows must be more members of the record, as the full scanner
			// would have read them; otherwise the payload is not JSON.
			s := scanner{b: msg[:len(msg)+1], i: end + 1}
			for s.consume(',') {
				key, ok := s.key()
				if !ok || !s.skip() {
					return nil, ErrMalformedMessage
				}
				switch string(key) {
				case "id", "timestamp", "message":
					// A repeated member would replace what the splitter read (the last
					// one wins in encoding/json): refuse rather than disagree.
					return nil, ErrMalformedMessage
				}
			}
			// The last member's value must be a string closed by the quote before "}".
			if s.i != len(msg)+1 {
				return nil, ErrMalformedMessage
			}
			msg = msg[:end]
		}
	}
	return jsonstring.Unescape(msg)
}

// Decoder decodes Lambda events; the zero value uses DefaultMaxDecompressedBytes.
// A Decoder may reuse buffers between calls and is not safe for concurrent use.
type Decoder struct {
	// MaxBytes caps the total inflated size of one Decode call; for Stream it is a bound
	// on work (see Stream).
	MaxBytes int64
	// MaxLineBytes bounds the bytes of one message Stream holds (0: DefaultMaxLineBytes).
	MaxLineBytes int

	comp  []byte // compressed bytes
	out   []byte // inflated payloads of the current Decode, back to back
	src   bytes.Reader
	gz    *inflate.Reader
	zl    io.ReadCloser
	datas [][]byte // raw data strings of the event, aliasing it
	ps    payloadScanner

	win    window   // Stream's inflation window
	ev     LogEvent // the event handed to the sink
	idBuf  []byte
	msgBuf []byte
	// Tests set a tiny window, and a reader that hands over a few bytes at a time, so
	// that every token crosses the window's edge somewhere.
	testWindow int
	testReader func(io.Reader) io.Reader
}
