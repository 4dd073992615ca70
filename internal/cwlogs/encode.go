package cwlogs

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// Compression is how a subscription payload is compressed.
type Compression int

// Compressions CloudWatch Logs uses.
const (
	Gzip Compression = iota // log-group subscription filters
	Zlib                    // account-level subscription policies (header 78 da)
)

// Compress compresses an inflated subscription message as CloudWatch Logs does: gzip
// without a name or modification time (so the output is deterministic), or zlib at best
// compression. It is the inverse of the decoder, for sample events, tests and benchmarks.
func Compress(msg []byte, c Compression) ([]byte, error) {
	var buf bytes.Buffer
	var w interface {
		Write([]byte) (int, error)
		Close() error
	}
	switch c {
	case Gzip:
		w = gzip.NewWriter(&buf)
	case Zlib:
		zw, err := zlib.NewWriterLevel(&buf, zlib.BestCompression)
		if err != nil {
			return nil, fmt.Errorf("zlib writer: %w", err)
		}
		w = zw
	default:
		return nil, fmt.Errorf("compression %d: %w", c, ErrUnknownCompression)
	}
	if _, err := w.Write(msg); err != nil {
		return nil, fmt.Errorf("compress: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("compress: %w", err)
	}
	return buf.Bytes(), nil
}

// SubscriptionEvent wraps a compressed payload as the Lambda event of a CloudWatch Logs
// subscription: {"awslogs":{"data":"<base64>"}}.
func SubscriptionEvent(comp []byte) []byte {
	return []byte(`{"awslogs":{"data":"` + base64.StdEncoding.EncodeToString(comp) + `"}}`)
}

// Message is a subscription message as CloudWatch Logs writes it: the encoder's input, for
// sample events, tests and benchmarks (the decoder reads into Payload).
type Message struct {
	MessageType         MessageType    `json:"messageType"`
	Owner               string         `json:"owner"`
	LogGroup            string         `json:"logGroup"`
	LogStream           string         `json:"logStream"`
	SubscriptionFilters []string       `json:"subscriptionFilters"`
	LogEvents           []MessageEvent `json:"logEvents"`
	// PolicyLevel is set by account-level subscription policies ("ACCOUNT_LEVEL_POLICY").
	PolicyLevel string `json:"policyLevel,omitempty"`
}

// MessageEvent is one log event of a Message.
type MessageEvent struct {
	ID        string `json:"id"`
	Timestamp int64  `json:"timestamp"`
	Message   string `json:"message"`
}

// Marshal encodes m as CloudWatch Logs does: compact JSON, without HTML escaping.
func (m Message) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("encode subscription message: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// LambdaEvent returns the Lambda event of a subscription delivering m gzip-compressed,
// and m's inflated bytes.
func (m Message) LambdaEvent() (event, inflated []byte, err error) {
	if inflated, err = m.Marshal(); err != nil {
		return nil, nil, err
	}
	comp, err := Compress(inflated, Gzip)
	if err != nil {
		return nil, nil, err
	}
	return SubscriptionEvent(comp), inflated, nil
}
