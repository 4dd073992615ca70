package cwlogs

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/base64"
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
