package cwlogs

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/eks-unauthorized-access/detector/internal/inflate"
	"github.com/eks-unauthorized-access/detector/internal/jsonscan"
	"github.com/eks-unauthorized-access/detector/internal/jsonstring"
)

// DefaultMaxLineBytes is the default bound on the bytes of one log message held at once
// (as written in the payload, escapes included). CloudWatch Logs accepts events of up to
// 1 MB; a longer message is handed over cut (LogEvent.Cut).
const DefaultMaxLineBytes = 8 << 20

// Sink receives what Decoder.Stream decodes, in order.
type Sink interface {
	// Restart comes before the log events of a payload and voids those of the current
	// payload received so far: a logEvents array starts (a repeated key replaces the
	// earlier array, as with encoding/json), or the decoder starts the payload over on its
	// buffered path. env holds the payload's envelope (every field but LogEvents), which
	// the log events that follow belong to: Payload receives the same values. env is valid
	// only during the call.
	Restart(env *Payload)
	// LogEvent receives one log event of the current payload. The event and its bytes are
	// valid only during the call.
	LogEvent(e *LogEvent)
	// Payload ends the current payload; p holds its fields except LogEvents. An error
	// stops the decoding and is returned by Stream.
	Payload(p *Payload) error
}

// Stream decodes a raw Lambda event like Decode, but hands each log event to sink as soon
// as it is inflated instead of returning a whole payload: the inflated bytes pass through
// one small reused window, so memory does not grow with the delivery. MaxBytes is a bound
// on work rather than a cap: a log event whose message starts past MaxBytes inflated bytes
// of the invocation is handed over with PastBound set and no message, so that it can be
// counted.
//
// Records in the layout CloudWatch Logs writes are split as in Decode; any other layout is
// walked record by record. A payload whose envelope the window cannot walk (a header field
// of another type, a header field after logEvents, invalid JSON) is decoded again on
// Decode's buffered path, capped by MaxBytes and by MaxLineBytes (ErrTooLarge past
// either); the sink is told by Restart. CloudWatch Logs writes the header first, so the
// sink knows the envelope of every log event it receives and never needs to hold one
// back until the payload ends.
func (d *Decoder) Stream(event []byte, sink Sink) error {
	datas, err := d.envelope(event)
	if err != nil {
		return err
	}
	limit := d.MaxBytes
	if limit <= 0 {
		limit = DefaultMaxDecompressedBytes
	}
	var done int64 // inflated bytes of the earlier payloads
	for i, data := range datas {
		n, err := d.streamData(data, limit, done, sink)
		if err != nil {
			return fmt.Errorf("decode payload %d: %w", i, err)
		}
		done += n
	}
	return nil
}

// streamData decodes one base64 data string and returns its inflated size.
func (d *Decoder) streamData(data []byte, limit, done int64, sink Sink) (int64, error) {
	comp, err := d.compressed(data)
	if err != nil {
		return 0, err
	}
	r, _, err := d.reader(comp)
	if err != nil {
		return 0, err
	}
	maxLine := d.MaxLineBytes
	if maxLine <= 0 {
		maxLine = DefaultMaxLineBytes
	}
	z, inPlace := r.(*inflate.Reader)
	switch {
	case d.testWindow > 0 && d.testReader != nil:
		d.win.reset(d.testReader(r), d.testWindow, maxLine)
	case inPlace:
		// gzip, the format of CloudWatch Logs: the window is the inflater's buffer.
		z.MaxFill = d.testWindow
		d.win.resetInflater(z, maxLine)
	default:
		d.win.reset(r, windowStart, maxLine)
	}
	p, ok := d.streamPayload(limit-done, sink)
	if d.win.err != nil {
		return 0, inflateError(d.win.err)
	}
	if ok {
		if err := checkType(p.MessageType); err != nil {
			return 0, err
		}
		return d.win.off + int64(d.win.n), sink.Payload(&p)
	}
	// The buffered path: the payload whole in memory, capped by what is left of the bound
	// and by the line bound, so that memory stays what a long line takes.
	d.out = d.out[:0]
	if err := d.inflate(comp, min(limit-done, int64(maxLine))); err != nil {
		return 0, err
	}
	d.ps.events = d.ps.events[:0]
	p, err = d.ps.parse(d.out)
	if err != nil {
		return 0, err
	}
	env := p
	env.LogEvents = nil
	sink.Restart(&env)
	for i := range p.LogEvents {
		sink.LogEvent(&p.LogEvents[i])
	}
	p.LogEvents = nil
	d.ps.events = d.ps.events[:0]
	return int64(len(d.out)), sink.Payload(&p)
}

func checkType(t MessageType) error {
	switch t {
	case DataMessage, ControlMessage:
		return nil
	}
	return fmt.Errorf("parse subscription message: %w %q", ErrUnknownMessageType, t)
}

// streamPayload walks one subscription message through the window, as payloadScanner.fast
// walks a buffer. bound is the inflated offset past which messages are not kept.
func (d *Decoder) streamPayload(bound int64, sink Sink) (Payload, bool) {
	w := &d.win
	var p Payload
	started := false // a logEvents array has been read
	str := func(dst *string) bool {
		raw, ok := w.str()
		if !ok {
			return false
		}
		v, err := jsonstring.Unescape(raw)
		*dst = string(v)
		return err == nil
	}
	ok := w.object(func(key []byte) bool {
		if ok, read := envelopeMember(&p, key, str, w.array); read {
			// A header field after the log events: the sink took them as belonging to
			// the envelope read before them, so the buffered path reads the payload again.
			return ok && !started
		}
		switch string(key) {
		case "logEvents":
			started = true
			sink.Restart(&p)
			return w.array(func() bool {
				if w.ws() != '{' {
					return false
				}
				return d.fastRecord(bound, sink) || d.record(bound, sink)
			})
		default:
			return w.skip(0)
		}
	}) && w.end()
	return p, ok
}

// recordHead is room for the fixed part of a record in CloudWatch Logs' layout before its
// message: {"id":"<56 digits>","timestamp":<13 digits>,"message":".
const recordHead = 256

// fastRecord reads the record at the window's position when it has the layout CloudWatch
// Logs writes (see payloadScanner.split): the message ends just before the next record's
// start, found by a vectorised search, so its bytes are not walked. It returns false,
// with the window's position unchanged, for any other layout, for a message that starts
// past bound, and for a message longer than the window can hold; record then reads it.
func (d *Decoder) fastRecord(bound int64, sink Sink) bool {
	w := &d.win
	w.ensure(recordHead)
	rec := w.i
	b := w.buf[:w.n]
	if !bytes.HasPrefix(b[rec:], recordStart) {
		return false
	}
	i := rec + len(recordStart)
	idStart := i
	i = jsonscan.Digits(b, i)
	if i == idStart || !bytes.HasPrefix(b[i:], []byte(timestampKey)) {
		return false
	}
	idLen := i - idStart
	s := scanner{b: b, i: i + len(timestampKey)}
	ts, ok := s.int()
	if !ok || !bytes.HasPrefix(b[s.i:], []byte(messageKey)) {
		return false
	}
	msg := s.i + len(messageKey)
	if w.off+int64(msg) > bound {
		return false
	}
	from := msg
	for {
		b = w.buf[:w.n]
		if k := indexRecordStart(b[from:]); k >= 0 {
			k += from
			end := k - len(`"},`)
			if end < msg || !bytes.Equal(b[end:k], []byte(`"},`)) || jsonscan.Escaped(b, msg, end) || end-rec > w.max {
				w.i = rec
				return false
			}
			d.emit(b[idStart:idStart+idLen], ts, b[msg:end:end+1], sink)
			w.i = k - 1 // the comma before the next record
			return true
		}
		if w.eof {
			// The last record: its message ends at its first unescaped quote, which must
			// close the record and the array.
			end := jsonscan.StringEnd(b, msg)
			if end < 0 || !bytes.HasPrefix(b[end:], []byte(`"}]`)) || jsonscan.Escaped(b, msg, end) || end-rec > w.max {
				w.i = rec
				return false
			}
			d.emit(b[idStart:idStart+idLen], ts, b[msg:end:end+1], sink)
			w.i = end + 2 // the closing bracket
			return true
		}
		from = max(msg, w.n-len(recordStart)+1)
		w.i = rec
		ks, ok := w.more(rec)
		shift := rec - ks
		rec, idStart, msg, from = ks, idStart-shift, msg-shift, from-shift
		if !ok && !w.eof {
			w.i = rec
			return false
		}
	}
}

func (d *Decoder) emit(id []byte, ts int64, msg []byte, sink Sink) {
	// One event reused: passed through the interface, a local would escape to the heap.
	d.ev = LogEvent{Timestamp: ts, Message: msg, Escaped: true, split: true, rawID: id}
	sink.LogEvent(&d.ev)
}

// record reads one log event of any layout, as payloadScanner.fast does; a message is
// copied out of the window (more members may follow it), cut when longer than the window.
func (d *Decoder) record(bound int64, sink Sink) bool {
	w := &d.win
	d.ev = LogEvent{}
	e := &d.ev
	d.idBuf, d.msgBuf = d.idBuf[:0], d.msgBuf[:0]
	ok := w.object(func(key []byte) bool {
		switch string(key) {
		case "id":
			raw, ok := w.str()
			if !ok {
				return false
			}
			v, err := jsonstring.Unescape(raw)
			d.idBuf = append(d.idBuf[:0], v...)
			return err == nil
		case "timestamp":
			n, ok := w.int()
			e.Timestamp = n
			return ok
		case "message":
			if w.ws() != '"' {
				return false
			}
			e.Escaped = true
			d.msgBuf = d.msgBuf[:0]
			if w.off+int64(w.i+1) > bound {
				e.PastBound, e.Cut = true, false
				return w.skipStr()
			}
			raw, cut, ok := w.strCut()
			d.msgBuf = append(d.msgBuf, raw...)
			e.PastBound, e.Cut = false, cut
			return ok
		default:
			return w.skip(0)
		}
	})
	if !ok {
		return false
	}
	if e.Escaped && !e.PastBound {
		e.Message = d.msgBuf
	}
	e.rawID = d.idBuf
	sink.LogEvent(e)
	return true
}

// Collect is a Sink that keeps the payloads, copying their log events: a reference for
// tests of Stream, and a way to read a small delivery whole. It also checks the promise
// of Restart: a payload's envelope is the one its log events were handed over with.
type Collect struct {
	Payloads []Payload
	events   []LogEvent
	env      *Payload // the envelope given by the last Restart, nil before one
}

var _ Sink = (*Collect)(nil)

// ErrEnvelopeChanged is returned by Collect.Payload when a payload's envelope differs from
// the one its log events were handed over with.
var ErrEnvelopeChanged = errors.New("payload envelope differs from the one given with its log events")

// Restart implements Sink.
func (c *Collect) Restart(env *Payload) {
	c.events = c.events[:0]
	e := *env
	e.SubscriptionFilters = slices.Clone(env.SubscriptionFilters)
	c.env = &e
}

// LogEvent implements Sink.
func (c *Collect) LogEvent(e *LogEvent) {
	cp := *e
	cp.ID = e.EventID()
	cp.rawID = nil
	if e.Message != nil {
		// Keep the closing quote in capacity, as Text needs for a split message.
		full := e.Message
		if e.split {
			full = e.Message[:len(e.Message)+1]
		}
		m := append([]byte(nil), full...)
		cp.Message = m[:len(e.Message):len(m)]
	}
	c.events = append(c.events, cp)
}

// Payload implements Sink.
func (c *Collect) Payload(p *Payload) error {
	env := c.env
	c.env = nil
	if env != nil && !SameEnvelope(env, p) {
		return ErrEnvelopeChanged
	}
	cp := *p
	if len(c.events) > 0 {
		cp.LogEvents = c.events
	}
	c.events = nil
	c.Payloads = append(c.Payloads, cp)
	return nil
}

// SameEnvelope reports whether a and b have the same envelope fields (LogEvents aside).
func SameEnvelope(a, b *Payload) bool {
	return a.MessageType == b.MessageType && a.Owner == b.Owner && a.LogGroup == b.LogGroup &&
		a.LogStream == b.LogStream && a.PolicyLevel == b.PolicyLevel &&
		slices.Equal(a.SubscriptionFilters, b.SubscriptionFilters)
}
