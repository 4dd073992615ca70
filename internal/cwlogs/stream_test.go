package cwlogs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// streamed decodes event with Stream into a Collect.
func streamed(d *Decoder, event []byte) ([]Payload, error) {
	var c Collect
	if err := d.Stream(event, &c); err != nil {
		return nil, err
	}
	return c.Payloads, nil
}

// edgeDecoders return decoders whose window starts tiny and whose inflater hands over a
// byte or a few at a time: every record, escape and key crosses a window edge somewhere.
// Those without a reader read gzip in place, the inflater adding a few bytes at a time.
func edgeDecoders() map[string]*Decoder {
	ds := map[string]*Decoder{"default": {}}
	for _, start := range []int{1, 7, 64} {
		ds[fmt.Sprintf("window %d, one byte", start)] = &Decoder{testWindow: start, testReader: iotest.OneByteReader}
		ds[fmt.Sprintf("window %d, halves", start)] = &Decoder{testWindow: start, testReader: iotest.HalfReader}
		ds[fmt.Sprintf("in place, %d bytes a fill", start)] = &Decoder{testWindow: start}
	}
	return ds
}

// TestStreamMatchesDecode checks Stream against Decode on the samples and on messages with
// every kind of escape, for windows whose edges fall everywhere.
func TestStreamMatchesDecode(t *testing.T) {
	events, messages := fuzzSeeds(t)
	for _, m := range append(messages, subscription(t, tricky)) {
		events = append(events, awslogsEvent(gzipBytes(t, m)))
	}
	for name, d := range edgeDecoders() {
		for i, event := range events {
			var ref Decoder
			want, werr := ref.Decode(event)
			got, err := streamed(d, event)
			if (err != nil) != (werr != nil) {
				t.Fatalf("%s, event %d: Stream error %v, Decode error %v", name, i, err, werr)
			}
			if g, w := flattenFuzz(got), flattenFuzz(want); !reflect.DeepEqual(g, w) {
				t.Fatalf("%s, event %d:\nStream %+v\nDecode %+v", name, i, g, w)
			}
		}
	}
}

// TestStreamLayouts covers what the window must get right at its edges and beyond the
// layout CloudWatch Logs writes: envelope fields after logEvents, records in another key
// order, a repeated logEvents key, escapes in keys, and invalid JSON after valid records.
func TestStreamLayouts(t *testing.T) {
	rec := func(id, msg string) string {
		return `{"id":"` + id + `","timestamp":1764000000000,"message":"` + msg + `"}`
	}
	long := strings.Repeat(`x\"\\\u0041`, 300)
	tests := []struct {
		name string
		msg  string
		bad  bool
	}{
		{"envelope after logEvents", `{"logEvents":[` + rec("1", "a") + `,` + rec("2", long) + `],"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s","policyLevel":"ACCOUNT_LEVEL_POLICY"}`, false},
		{"other key order", `{"messageType":"DATA_MESSAGE","logEvents":[{"message":"` + long + `","timestamp":2,"id":"9"},{"timestamp":3,"message":"b\"},{\"id\":\"","id":"10"}]}`, false},
		{"mixed key orders", `{"messageType":"DATA_MESSAGE","logEvents":[` + rec("1", "a") + `,{"timestamp":2,"id":"2","message":"b"},` + rec("3", "c") + `]}`, false},
		{"keys after message", `{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"a","x":[{"y":"z"}]},` + rec("2", "b") + `]}`, false},
		{"repeated logEvents", `{"messageType":"DATA_MESSAGE","logEvents":[` + rec("1", "old") + `],"logEvents":[` + rec("2", "new") + `]}`, false},
		{"escaped keys", `{"message\u0054ype":"DATA_MESSAGE","logEvents":[{"\u0069d":"1","timestamp":1,"message":"m"}]}`, false},
		{"whitespace", " {\n\"messageType\" : \"DATA_MESSAGE\" ,\"logEvents\" : [ " + rec("1", "a") + " , " + rec("2", "b") + " ] } \n", false},
		{"control message", `{"messageType":"CONTROL_MESSAGE","logEvents":[` + rec("1", "CWL CONTROL MESSAGE") + `]}`, false},
		{"non-string owner", `{"messageType":"DATA_MESSAGE","owner":null,"logEvents":[` + rec("1", "a") + `]}`, false},
		{"garbage after records", `{"messageType":"DATA_MESSAGE","logEvents":[` + rec("1", "a") + `,` + rec("2", "b") + `]}x`, true},
		{"unclosed array", `{"messageType":"DATA_MESSAGE","logEvents":[` + rec("1", "a") + `,` + rec("2", "b"), true},
		{"deep nesting", `{"messageType":"DATA_MESSAGE","x":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `,"logEvents":[]}`, false},
	}
	for _, tt := range tests {
		for name, d := range edgeDecoders() {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				event := awslogsEvent(gzipBytes(t, []byte(tt.msg)))
				got, err := streamed(d, event)
				want, werr := ParseMessage([]byte(tt.msg))
				if tt.bad {
					if err == nil || werr == nil {
						t.Fatalf("Stream error %v, ParseMessage error %v: want both", err, werr)
					}
					return
				}
				if err != nil || werr != nil {
					t.Fatalf("Stream error %v, ParseMessage error %v", err, werr)
				}
				if g, w := flattenFuzz(got), flattenFuzz([]Payload{want}); !reflect.DeepEqual(g, w) {
					t.Fatalf("\nStream       %+v\nParseMessage %+v", g, w)
				}
			})
		}
	}
}

// sinkFunc counts what Stream hands over.
type countSink struct {
	events, past, cut, restarts int
	cutText                     []string
}

func (c *countSink) Restart(*Payload) { c.restarts++ }
func (c *countSink) LogEvent(e *LogEvent) {
	c.events++
	if e.PastBound {
		c.past++
		if e.Message != nil {
			panic("message past the bound")
		}
	}
	if e.Cut {
		c.cut++
		txt, err := e.Text()
		if err != nil {
			panic(err)
		}
		c.cutText = append(c.cutText, string(txt))
	}
}
func (c *countSink) Payload(*Payload) error { return nil }

// TestStreamBounds checks that Stream hands over every log event of a delivery larger
// than the bound on work, those past it flagged and without their bytes, with a window
// that stays small; and that a message longer than MaxLineBytes is cut on an escape.
func TestStreamBounds(t *testing.T) {
	var msgs []string
	for i := range 2000 {
		msgs = append(msgs, fmt.Sprintf(`{"verb":"create","n":%d,"pad":"%s"}`, i, strings.Repeat("p", 500)))
	}
	msg := subscription(t, msgs)
	event := awslogsEvent(gzipBytes(t, msg))
	d := Decoder{MaxBytes: int64(len(msg) / 2)}
	var c countSink
	if err := d.Stream(event, &c); err != nil {
		t.Fatal(err)
	}
	if c.events != len(msgs) {
		t.Errorf("%d log events handed over, want %d", c.events, len(msgs))
	}
	if c.past < len(msgs)/2-10 || c.past > len(msgs)/2+10 {
		t.Errorf("%d log events past a bound of half the payload, want about %d", c.past, len(msgs)/2)
	}
	if n := cap(d.win.buf); n > 512<<10 {
		t.Errorf("window grew to %d bytes for a payload of %d", n, len(msg))
	}

	// A long line: cut at MaxLineBytes, never in the middle of an escape.
	long := `{"verb":"create","responseStatus":{"reason":"Forbidden"},"q":"` + strings.Repeat(`\u00e9`, 40000) + `"}`
	for _, maxLine := range []int{100000, 100001, 100003, 100005} {
		d := Decoder{MaxLineBytes: maxLine}
		var c countSink
		if err := d.Stream(awslogsEvent(gzipBytes(t, subscription(t, []string{"a", long, "b"}))), &c); err != nil {
			t.Fatal(err)
		}
		if c.events != 3 || c.cut != 1 {
			t.Fatalf("max line %d: %d events, %d cut", maxLine, c.events, c.cut)
		}
		if !strings.HasPrefix(long, c.cutText[0]) || len(c.cutText[0]) < maxLine/3 {
			t.Errorf("max line %d: cut line is not a prefix of the line (%d bytes)", maxLine, len(c.cutText[0]))
		}
	}
}

// TestStreamErrors checks that a broken payload fails Stream as it fails Decode.
func TestStreamErrors(t *testing.T) {
	data := subscription(t, []string{"x"})
	comp := gzipBytes(t, data)
	for name, event := range map[string][]byte{
		"truncated gzip":  awslogsEvent(comp[:len(comp)/2]),
		"truncated tail":  awslogsEvent(comp[:len(comp)-3]),
		"not compressed":  awslogsEvent(data),
		"not JSON":        awslogsEvent(gzipBytes(t, []byte("hello"))),
		"unknown type":    awslogsEvent(gzipBytes(t, bytes.Replace(data, []byte("DATA_MESSAGE"), []byte("OTHER"), 1))),
		"zeros (a bomb)":  awslogsEvent(gzipBytes(t, make([]byte, 8<<20))),
		"event not JSON":  []byte(`{"awslogs":`),
		"no data at all":  []byte(`{}`),
		"bad base64 data": []byte(`{"awslogs":{"data":"H4sI*"}}`),
	} {
		var ref Decoder
		_, werr := ref.Decode(event)
		var d Decoder
		_, err := streamed(&d, event)
		if err == nil || werr == nil {
			t.Errorf("%s: Stream error %v, Decode error %v", name, err, werr)
			continue
		}
		if errors.Is(werr, io.ErrUnexpectedEOF) != errors.Is(err, io.ErrUnexpectedEOF) ||
			errors.Is(werr, ErrUnknownMessageType) != errors.Is(err, ErrUnknownMessageType) {
			t.Errorf("%s: Stream error %v, Decode error %v", name, err, werr)
		}
	}
}

// TestDeepValues checks that a skipped member nested far deeper than the window follows
// (a few KiB gzipped) is read on the buffered path without following it down the call
// stack: accepted when it is well formed, as at smaller depths, refused when it is not.
func TestDeepValues(t *testing.T) {
	const nest = 8 << 20
	for _, tt := range []struct {
		name, value string
		ok          bool
	}{
		{"arrays", strings.Repeat("[", nest) + strings.Repeat("]", nest), true},
		{"objects", strings.Repeat(`{"a":`, nest/16) + "1" + strings.Repeat("}", nest/16), true},
		{"mixed", strings.Repeat(`[{"a":[1,{}],"b":`, nest/64) + "null" + strings.Repeat("}]", nest/64), true},
		{"unclosed", strings.Repeat("[", nest/8) + strings.Repeat("]", nest/8-1), false},
		{"bad key deep inside", strings.Repeat("[", nest/8) + "{a:1}" + strings.Repeat("]", nest/8), false},
	} {
		msg := `{"messageType":"DATA_MESSAGE","deep":` + tt.value + `,"logEvents":[{"id":"1","timestamp":1,"message":"m"}]}`
		p, err := ParseMessage([]byte(msg))
		if (err == nil) != tt.ok {
			t.Errorf("%s: ParseMessage error %v, want ok %v", tt.name, err, tt.ok)
		}
		if err == nil && (len(p.LogEvents) != 1 || p.LogEvents[0].ID != "1") {
			t.Errorf("%s: log events %+v", tt.name, p.LogEvents)
		}
	}
}
