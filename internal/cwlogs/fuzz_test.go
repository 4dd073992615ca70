package cwlogs

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"testing/iotest"
)

// fuzzMaxBytes is the cap used by the fuzz targets: small, so that the fuzzer can reach it.
const fuzzMaxBytes = 1 << 20

// fuzzCompress compresses b with gzip or zlib, as CloudWatch Logs does.
func fuzzCompress(t testing.TB, b []byte, useZlib bool) []byte {
	if useZlib {
		return compressed(t, b, Zlib)
	}
	return compressed(t, b, Gzip)
}

// fuzzAWSLogs wraps a compressed payload in a CloudWatch Logs subscription Lambda event.
func fuzzAWSLogs(comp []byte) []byte { return SubscriptionEvent(comp) }

// fuzzSeeds returns the sample Lambda events (testdata and the repository's events folder)
// and the inflated subscription messages (decoded samples, and the payloads of the events).
func fuzzSeeds(t testing.TB) (events, messages [][]byte) {
	t.Helper()
	for _, pattern := range []string{filepath.Join("testdata", "*.json"), filepath.Join("..", "..", "events", "*.json")} {
		names, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range names {
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			var top map[string]json.RawMessage
			if json.Unmarshal(b, &top) != nil {
				continue
			}
			if _, ok := top["messageType"]; ok {
				messages = append(messages, b)
				continue
			}
			events = append(events, b)
			// The inflated payloads of an event seed the message target too.
			var d Decoder
			if _, err := d.Decode(b); err == nil {
				messages = append(messages, append([]byte(nil), d.out...))
			}
		}
	}
	if len(events) == 0 || len(messages) == 0 {
		t.Fatal("no seed samples found")
	}
	return events, messages
}

// flattenFuzz returns the payloads with messages decoded to text ("<bad escape>" when the
// escapes are invalid), for comparisons.
func flattenFuzz(ps []Payload) []want {
	out := make([]want, 0, len(ps))
	for _, p := range ps {
		w := want{
			MessageType: p.MessageType, Owner: p.Owner, LogGroup: p.LogGroup, LogStream: p.LogStream,
			SubscriptionFilters: p.SubscriptionFilters, PolicyLevel: p.PolicyLevel,
		}
		for _, e := range p.LogEvents {
			txt, err := e.Text()
			if err != nil {
				txt = []byte("<bad escape>")
			}
			w.IDs = append(w.IDs, e.ID)
			w.Timestamps = append(w.Timestamps, e.Timestamp)
			w.Messages = append(w.Messages, string(txt))
		}
		out = append(out, w)
	}
	return out
}

// FuzzDecodeEvent decodes arbitrary Lambda events. Invariants: no panic; an error comes
// with no payload; a success yields only DATA_MESSAGE or CONTROL_MESSAGE payloads whose
// log events fit in the cap; the inflation buffer never grows past the cap (plus the one
// byte that proves an excess); a decoder reused after another event decodes the same.
func FuzzDecodeEvent(f *testing.F) {
	events, _ := fuzzSeeds(f)
	for _, e := range events {
		f.Add(e)
	}
	f.Add([]byte(`{"awslogs":{"data":"H4sI*"}}`))
	f.Add([]byte(`{"awslogs":{"data":""}}`))
	f.Add([]byte(`{"Records":[{"kinesis":{"data":"eJw="}}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, event []byte) {
		d := Decoder{MaxBytes: fuzzMaxBytes}
		got, err := d.Decode(event)
		if c := cap(d.out); c > fuzzMaxBytes+1 {
			t.Fatalf("inflation buffer grew to %d bytes, cap is %d", c, fuzzMaxBytes)
		}
		// Stream, through a window whose edges fall everywhere, agrees with Decode on
		// everything Decode accepts, and fails where Decode fails for another reason
		// than the cap (which is a bound on work for Stream).
		// Both ways: copied through the window, and read in place in the inflater's buffer
		// (gzip), each a few bytes at a time.
		for _, sd := range []*Decoder{
			{MaxBytes: fuzzMaxBytes, testWindow: 3, testReader: iotest.HalfReader},
			{MaxBytes: fuzzMaxBytes, testWindow: 3},
		} {
			sgot, serr := streamed(sd, event)
			switch {
			case err == nil && serr != nil:
				t.Fatalf("Stream fails where Decode succeeds: %v", serr)
			case err == nil && !reflect.DeepEqual(flattenFuzz(sgot), flattenFuzz(got)):
				t.Fatalf("Stream and Decode differ:\nStream %+v\nDecode %+v", flattenFuzz(sgot), flattenFuzz(got))
			case err != nil && !errors.Is(err, ErrTooLarge) && serr == nil:
				t.Fatalf("Stream succeeds where Decode fails: %v", err)
			}
		}
		if err != nil {
			if got != nil {
				t.Fatalf("error %v with %d payloads", err, len(got))
			}
			return
		}
		if len(got) == 0 {
			t.Fatal("success without a payload")
		}
		total := 0
		for _, p := range got {
			if p.MessageType != DataMessage && p.MessageType != ControlMessage {
				t.Fatalf("payload with messageType %q accepted", p.MessageType)
			}
			for _, e := range p.LogEvents {
				total += len(e.Message)
			}
		}
		if total > fuzzMaxBytes {
			t.Fatalf("log events hold %d bytes, cap is %d", total, fuzzMaxBytes)
		}
		first := flattenFuzz(got)

		// Reuse: decode something else, then the same event again.
		if _, err := d.Decode(fuzzAWSLogs(fuzzCompress(t, []byte(`{"messageType":"CONTROL_MESSAGE"}`), false))); err != nil {
			t.Fatalf("control message after a fuzzed event: %v", err)
		}
		again, err := d.Decode(event)
		if err != nil {
			t.Fatalf("second decode fails: %v", err)
		}
		if second := flattenFuzz(again); !reflect.DeepEqual(first, second) {
			t.Fatalf("reused decoder differs:\nfirst  %+v\nsecond %+v", first, second)
		}
	})
}

// FuzzDecodeMessage compresses an arbitrary inflated subscription message (gzip or zlib),
// decodes it under an arbitrary cap and checks: ErrTooLarge exactly when the message is
// larger than the cap; the buffer bounded by the cap; otherwise the same outcome as
// ParseMessage on the inflated bytes.
func FuzzDecodeMessage(f *testing.F) {
	_, messages := fuzzSeeds(f)
	for _, m := range messages {
		f.Add(m, false, uint32(len(m)))
		f.Add(m, true, uint32(len(m)-2)) // one byte over the cap
	}
	f.Add([]byte(`{"messageType":"CONTROL_MESSAGE","logEvents":[]}`), false, uint32(0))
	f.Add([]byte(`{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1.5,"message":{}}]}`), true, uint32(1<<20))
	f.Fuzz(func(t *testing.T, msg []byte, useZlib bool, limit uint32) {
		maxBytes := int64(limit%(2*fuzzMaxBytes)) + 1
		d := Decoder{MaxBytes: maxBytes}
		event := fuzzAWSLogs(fuzzCompress(t, msg, useZlib))
		got, err := d.Decode(event)
		if c := int64(cap(d.out)); c > maxBytes+1 {
			t.Fatalf("inflation buffer grew to %d bytes, cap is %d", c, maxBytes)
		}
		want, werr := ParseMessage(msg)
		// Stream: the cap is a bound on work. Every log event is handed over; those whose
		// message starts within the bound are exactly ParseMessage's.
		// Copied through the window a byte at a time, and read in place in the inflater's
		// buffer (gzip) five bytes a fill.
		for _, sd := range []*Decoder{
			{MaxBytes: maxBytes, testWindow: 5, testReader: iotest.OneByteReader},
			{MaxBytes: maxBytes, testWindow: 5},
		} {
			var c Collect
			if serr := sd.Stream(event, &c); serr == nil {
				if werr != nil {
					t.Fatalf("Stream succeeds where ParseMessage fails: %v", werr)
				}
				if len(c.Payloads) != 1 || len(c.Payloads[0].LogEvents) != len(want.LogEvents) {
					t.Fatalf("Stream handed over %+v, ParseMessage read %d log events", c.Payloads, len(want.LogEvents))
				}
				sp := c.Payloads[0]
				kept := sp.LogEvents[:0:0]
				for _, e := range sp.LogEvents {
					if !e.PastBound {
						kept = append(kept, e)
					}
				}
				sp.LogEvents = kept
				wp := want
				wp.LogEvents = want.LogEvents[:len(kept)]
				if g, w := flattenFuzz([]Payload{sp}), flattenFuzz([]Payload{wp}); !reflect.DeepEqual(g, w) {
					t.Fatalf("Stream and ParseMessage differ:\nStream       %+v\nParseMessage %+v", g, w)
				}
			} else if werr == nil && int64(len(msg)) <= maxBytes {
				t.Fatalf("Stream fails where ParseMessage succeeds: %v", serr)
			}
		}
		if int64(len(msg)) > maxBytes {
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("%d bytes under a cap of %d: got %v, want ErrTooLarge", len(msg), maxBytes, err)
			}
			return
		}
		if errors.Is(err, ErrTooLarge) {
			t.Fatalf("%d bytes under a cap of %d: ErrTooLarge", len(msg), maxBytes)
		}
		if (err != nil) != (werr != nil) {
			t.Fatalf("Decode error %v, ParseMessage error %v", err, werr)
		}
		if err != nil {
			return
		}
		if len(got) != 1 {
			t.Fatalf("%d payloads from one message", len(got))
		}
		if g, w := flattenFuzz(got), flattenFuzz([]Payload{want}); !reflect.DeepEqual(g, w) {
			t.Fatalf("Decode and ParseMessage differ:\nDecode       %+v\nParseMessage %+v", g, w)
		}
	})
}

// FuzzDecodeRoundTrip builds a subscription message with encoding/json from arbitrary
// field values, compresses it and checks that Decode gives back exactly what
// encoding/json reads from it: the fast scanner must agree with the standard decoder on
// every escape, invalid UTF-8 sequence and control character.
func FuzzDecodeRoundTrip(f *testing.F) {
	for _, m := range tricky {
		f.Add("123456789012", "/aws/eks/prod/cluster", "kube-apiserver-audit-1", m, int64(1764000000000), false)
	}
	f.Add("", "", "", `{"verb":"cre\u0061te"}`, int64(-1), true)
	f.Add("\u2028", "\\", "\"", "\xff\\u0000", int64(1<<62), true)
	f.Fuzz(func(t *testing.T, owner, group, stream, message string, ts int64, useZlib bool) {
		type ev struct {
			ID        string `json:"id"`
			Timestamp int64  `json:"timestamp"`
			Message   string `json:"message"`
		}
		type msg struct {
			MessageType         string   `json:"messageType"`
			Owner               string   `json:"owner"`
			LogGroup            string   `json:"logGroup"`
			LogStream           string   `json:"logStream"`
			SubscriptionFilters []string `json:"subscriptionFilters"`
			LogEvents           []ev     `json:"logEvents"`
		}
		in := msg{"DATA_MESSAGE", owner, group, stream, []string{stream}, []ev{{message, ts, message}, {"2", 0, owner}}}
		plain, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var oracle msg // what encoding/json reads back (invalid UTF-8 becomes U+FFFD)
		if err := json.Unmarshal(plain, &oracle); err != nil {
			t.Fatal(err)
		}
		var d Decoder
		got, err := d.Decode(fuzzAWSLogs(fuzzCompress(t, plain, useZlib)))
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		if len(got) != 1 {
			t.Fatalf("%d payloads", len(got))
		}
		w := want{
			MessageType: DataMessage, Owner: oracle.Owner, LogGroup: oracle.LogGroup, LogStream: oracle.LogStream,
			SubscriptionFilters: oracle.SubscriptionFilters,
		}
		for _, e := range oracle.LogEvents {
			w.IDs = append(w.IDs, e.ID)
			w.Timestamps = append(w.Timestamps, e.Timestamp)
			w.Messages = append(w.Messages, e.Message)
		}
		if g := flattenFuzz(got)[0]; !reflect.DeepEqual(g, w) {
			t.Fatalf("round trip differs:\ngot  %+v\nwant %+v", g, w)
		}
	})
}
