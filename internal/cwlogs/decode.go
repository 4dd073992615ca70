package cwlogs

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/eks-unauthorized-access/detector/internal/inflate"
	"github.com/eks-unauthorized-access/detector/internal/jsonstring"
)

// Decode decodes a raw Lambda event: a CloudWatch Logs subscription event or a Kinesis
// event. It returns one Payload per compressed payload, in order. The messages of the
// returned payloads alias the decoder's buffers and are valid until the next Decode.
func (d *Decoder) Decode(event []byte) ([]Payload, error) {
	datas, err := d.envelope(event)
	if err != nil {
		return nil, err
	}
	limit := d.MaxBytes
	if limit <= 0 {
		limit = DefaultMaxDecompressedBytes
	}
	d.out = d.out[:0]
	d.ps.events = d.ps.events[:0]
	payloads := make([]Payload, 0, len(datas))
	for i, data := range datas {
		start := len(d.out)
		if err := d.decodeData(data, limit-int64(start)); err != nil {
			return nil, fmt.Errorf("decode payload %d: %w", i, err)
		}
		p, err := d.ps.parse(d.out[start:])
		if err != nil {
			return nil, fmt.Errorf("decode payload %d: %w", i, err)
		}
		payloads = append(payloads, p)
	}
	return payloads, nil
}

// envelope returns the base64 data strings of the event, as raw JSON string contents.
// A small scanner finds them without decoding the (large) strings; encoding/json is the
// fallback for anything the scanner rejects, and gives the error message.
func (d *Decoder) envelope(event []byte) ([][]byte, error) {
	d.datas = d.datas[:0]
	s := scanner{b: event}
	shape := 0 // 1 awslogs, 2 Records
	ok := s.object(func(key []byte) bool {
		switch string(key) {
		case "awslogs":
			shape |= 1
			return s.object(func(key []byte) bool {
				if string(key) != "data" {
					return s.skip()
				}
				raw, ok := s.str()
				d.datas = append(d.datas, raw)
				return ok
			})
		case "Records":
			shape |= 2
			return s.array(func() bool {
				n := len(d.datas)
				ok := s.object(func(key []byte) bool {
					if string(key) != "kinesis" {
						return s.skip()
					}
					return s.object(func(key []byte) bool {
						if string(key) != "data" {
							return s.skip()
						}
						raw, ok := s.str()
						d.datas = append(d.datas, raw)
						return ok
					})
				})
				// A record must carry exactly one payload.
				return ok && len(d.datas) == n+1
			})
		default:
			return s.skip()
		}
	}) && s.end()
	if ok {
		if (shape == 1 || shape == 2) && len(d.datas) > 0 && (shape == 2 || len(d.datas) == 1) {
			return d.datas, nil
		}
		return nil, ErrUnknownEvent
	}
	return d.envelopeJSON(event)
}

// lambdaEvent is the envelope of both event shapes, for the encoding/json fallback.
type lambdaEvent struct {
	AWSLogs *struct {
		Data *string `json:"data"`
	} `json:"awslogs"`
	Records []struct {
		Kinesis struct {
			Data *string `json:"data"`
		} `json:"kinesis"`
	} `json:"Records"`
}

func (d *Decoder) envelopeJSON(event []byte) ([][]byte, error) {
	var ev lambdaEvent
	if err := json.Unmarshal(event, &ev); err != nil {
		return nil, fmt.Errorf("parse lambda event: %w", err)
	}
	d.datas = d.datas[:0]
	switch {
	case ev.AWSLogs != nil && ev.Records == nil:
		if ev.AWSLogs.Data == nil {
			return nil, fmt.Errorf("awslogs event without data: %w", ErrUnknownEvent)
		}
		d.datas = append(d.datas, []byte(*ev.AWSLogs.Data))
	case ev.AWSLogs == nil && len(ev.Records) > 0:
		for i, r := range ev.Records {
			if r.Kinesis.Data == nil {
				return nil, fmt.Errorf("record %d has no kinesis data: %w", i, ErrUnknownEvent)
			}
			d.datas = append(d.datas, []byte(*r.Kinesis.Data))
		}
	default:
		return nil, ErrUnknownEvent
	}
	// The strings are already unescaped; escape nothing further: base64 has no backslash.
	return d.datas, nil
}

// decodeData turns one base64 data string into inflated JSON appended to d.out.
func (d *Decoder) decodeData(data []byte, limit int64) error {
	comp, err := d.compressed(data)
	if err != nil {
		return err
	}
	return d.inflate(comp, limit)
}

// compressed decodes one base64 data string into d.comp.
func (d *Decoder) compressed(data []byte) ([]byte, error) {
	if bytes.IndexByte(data, '\\') >= 0 {
		// JSON writers may escape '/' as "\/"; base64 has no other character to escape.
		u, err := jsonstring.Unescape(data)
		if err != nil {
			return nil, fmt.Errorf("unescape base64 data: %w", err)
		}
		data = u
	}
	n := base64.StdEncoding.DecodedLen(len(data))
	if cap(d.comp) < n {
		d.comp = make([]byte, n)
	}
	n, err := base64.StdEncoding.Decode(d.comp[:n], data)
	if err != nil {
		return nil, fmt.Errorf("decode base64: %w", err)
	}
	return d.comp[:n], nil
}

// reader returns a reader of the inflated bytes of a gzip or zlib stream (told apart by
// its header bytes), and a hint of their size.
func (d *Decoder) reader(comp []byte) (io.Reader, int64, error) {
	d.src.Reset(comp)
	hint := int64(len(comp)) * 8
	switch {
	case len(comp) >= 2 && comp[0] == 0x1f && comp[1] == 0x8b:
		if d.gz == nil {
			d.gz = new(inflate.Reader)
		}
		if err := d.gz.Reset(comp); err != nil {
			return nil, 0, fmt.Errorf("read gzip header: %w", err)
		}
		if len(comp) >= 18 {
			// ISIZE, the size of the last member mod 2^32: exact for one-member streams.
			hint = int64(binary.LittleEndian.Uint32(comp[len(comp)-4:]))
		}
		return d.gz, hint, nil
	case len(comp) >= 2 && comp[0]&0x0f == 8 && (uint16(comp[0])<<8|uint16(comp[1]))%31 == 0:
		var err error
		if d.zl == nil {
			d.zl, err = zlib.NewReader(&d.src)
		} else {
			err = d.zl.(zlib.Resetter).Reset(&d.src, nil)
		}
		if err != nil {
			return nil, 0, fmt.Errorf("read zlib header: %w", err)
		}
		return d.zl, hint, nil
	default:
		return nil, 0, ErrUnknownCompression
	}
}

// inflateError wraps an error of the inflating reader.
func inflateError(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("inflate: truncated stream: %w", err)
	}
	return fmt.Errorf("inflate: %w", err)
}

// inflate decompresses a gzip or zlib stream and appends it to d.out, failing with
// ErrTooLarge as soon as more than limit bytes come out.
func (d *Decoder) inflate(comp []byte, limit int64) error {
	r, hint, err := d.reader(comp)
	if err != nil {
		return err
	}
	start := len(d.out)
	// One byte past the limit proves the excess; one byte past the hint lets the reader
	// report the end of the stream without a reallocation.
	ceil := start + int(min(limit, int64(^uint(0)>>2))) + 1
	want := start + int(min(hint, limit)) + 1
	if cap(d.out) < want {
		d.out = resize(d.out, want)
	}
	for {
		if len(d.out) == cap(d.out) {
			if cap(d.out) >= ceil {
				return ErrTooLarge
			}
			grow := min(max(cap(d.out), 64<<10), ceil-cap(d.out))
			d.out = resize(d.out, cap(d.out)+grow)
		}
		n, err := r.Read(d.out[len(d.out):cap(d.out)])
		d.out = d.out[:len(d.out)+n]
		if int64(len(d.out)-start) > limit {
			return ErrTooLarge
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return inflateError(err)
		}
	}
}

// resize returns b with capacity n (not rounded up, so the cap bounds memory exactly).
func resize(b []byte, n int) []byte {
	nb := make([]byte, len(b), n)
	copy(nb, b)
	return nb
}
