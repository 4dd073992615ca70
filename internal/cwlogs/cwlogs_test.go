package cwlogs

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// want is a payload as the tests compare it: messages decoded to text.
type want struct {
	MessageType         MessageType
	Owner               string
	LogGroup            string
	LogStream           string
	SubscriptionFilters []string
	PolicyLevel         string
	IDs                 []string
	Timestamps          []int64
	Messages            []string
}

func flatten(t *testing.T, p Payload) want {
	t.Helper()
	w := want{
		MessageType: p.MessageType, Owner: p.Owner, LogGroup: p.LogGroup, LogStream: p.LogStream,
		SubscriptionFilters: p.SubscriptionFilters, PolicyLevel: p.PolicyLevel,
	}
	for _, e := range p.LogEvents {
		txt, err := e.Text()
		if err != nil {
			t.Fatalf("Text of event %q: %v", e.ID, err)
		}
		w.IDs = append(w.IDs, e.ID)
		w.Timestamps = append(w.Timestamps, e.Timestamp)
		w.Messages = append(w.Messages, string(txt))
	}
	return w
}

// oracle decodes an inflated subscription message with encoding/json alone.
func oracle(t *testing.T, msg []byte) want {
	t.Helper()
	var m subscriptionMessage
	if err := json.Unmarshal(msg, &m); err != nil {
		t.Fatalf("oracle: %v", err)
	}
	w := want{
		MessageType: MessageType(m.MessageType), Owner: m.Owner, LogGroup: m.LogGroup, LogStream: m.LogStream,
		SubscriptionFilters: m.SubscriptionFilters, PolicyLevel: m.PolicyLevel,
	}
	for _, e := range m.LogEvents {
		w.IDs = append(w.IDs, e.ID)
		w.Timestamps = append(w.Timestamps, e.Timestamp)
		w.Messages = append(w.Messages, e.Message)
	}
	return w
}

// inflateRef inflates one base64 payload with the standard library, no limits.
func inflateRef(t *testing.T, data string) []byte {
	t.Helper()
	comp, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		t.Fatal(err)
	}
	var r io.Reader
	if comp[0] == 0x1f {
		r, err = gzip.NewReader(bytes.NewReader(comp))
	} else {
		r, err = zlib.NewReader(bytes.NewReader(comp))
	}
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeSamples(t *testing.T) {
	tests := []struct {
		file        string
		payloads    int
		policyLevel string
		firstMsg    string
	}{
		{"aws-lambda-go_cloudwatch-logs-event.json", 1, "", "[ERROR] First test message"},
		{"powertools-python_cloudWatchLogEventWithPolicyLevel.json", 1, "ACCOUNT_LEVEL_POLICY", "[ERROR] First test message"},
		{"powertools-python_kinesisStreamCloudWatchLogsEvent.json", 2, "", "START RequestId: "},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			event := readFile(t, tt.file)
			var d Decoder
			got, err := d.Decode(event)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.payloads {
				t.Fatalf("got %d payloads, want %d", len(got), tt.payloads)
			}
			var env lambdaEvent
			if err := json.Unmarshal(event, &env); err != nil {
				t.Fatal(err)
			}
			var datas []string
			if env.AWSLogs != nil {
				datas = append(datas, *env.AWSLogs.Data)
			}
			for _, r := range env.Records {
				datas = append(datas, *r.Kinesis.Data)
			}
			for i, p := range got {
				w := flatten(t, p)
				if ref := oracle(t, inflateRef(t, datas[i])); !reflect.DeepEqual(w, ref) {
					t.Errorf("payload %d:\n got %+v\nwant %+v", i, w, ref)
				}
				if p.MessageType != DataMessage || p.PolicyLevel != tt.policyLevel || len(p.LogEvents) == 0 {
					t.Errorf("payload %d: type %q policy %q events %d", i, p.MessageType, p.PolicyLevel, len(p.LogEvents))
				}
				if !strings.HasPrefix(w.Messages[0], tt.firstMsg) {
					t.Errorf("payload %d: first message %q", i, w.Messages[0])
				}
			}
		})
	}
}

func TestParseMessageSamples(t *testing.T) {
	for _, tt := range []struct {
		file   string
		typ    MessageType
		events int
	}{
		{"vector_decoded-data-message.json", DataMessage, 2},
		{"vector_decoded-control-message.json", ControlMessage, 1},
	} {
		t.Run(tt.file, func(t *testing.T) {
			msg := readFile(t, tt.file)
			p, err := ParseMessage(msg)
			if err != nil {
				t.Fatal(err)
			}
			if p.MessageType != tt.typ || len(p.LogEvents) != tt.events {
				t.Fatalf("type %q with %d events", p.MessageType, len(p.LogEvents))
			}
			if w, ref := flatten(t, p), oracle(t, msg); !reflect.DeepEqual(w, ref) {
				t.Errorf("\n got %+v\nwant %+v", w, ref)
			}
		})
	}
}

func gzipBytes(t testing.TB, b []byte) []byte { return compressed(t, b, Gzip) }

func zlibBytes(t testing.TB, b []byte) []byte { return compressed(t, b, Zlib) }

func compressed(t testing.TB, b []byte, c Compression) []byte {
	t.Helper()
	comp, err := Compress(b, c)
	if err != nil {
		t.Fatal(err)
	}
	return comp
}

func awslogsEvent(comp []byte) []byte { return SubscriptionEvent(comp) }

// tricky holds messages whose escaping the fast path must get exactly right.
var tricky = []string{
	`{"kind":"Event","verb":"create","responseStatus":{"reason":"Forbidden","code":403}}`,
	`quote " backslash \ slash / tab 	 newline` + "\n" + `end`,
	"unicode: é ü 日本 😀 and control \x01\x1f",
	`a message ending in a backslash \`,
	`\"already escaped\" \\u0046orbidden`,
	"",
	"invalid utf-8: \xff\xfe done",
}

// subscription builds a DATA_MESSAGE with the given messages, encoded by encoding/json
// (which escapes <, >, & and invalid UTF-8 its own way).
func subscription(t testing.TB, msgs []string) []byte {
	type ev struct {
		ID        string `json:"id"`
		Timestamp int64  `json:"timestamp"`
		Message   string `json:"message"`
	}
	m := struct {
		MessageType         string   `json:"messageType"`
		Owner               string   `json:"owner"`
		LogGroup            string   `json:"logGroup"`
		LogStream           string   `json:"logStream"`
		SubscriptionFilters []string `json:"subscriptionFilters"`
		LogEvents           []ev     `json:"logEvents"`
	}{"DATA_MESSAGE", "123456789012", "/aws/eks/prod/cluster", "kube-apiserver-audit-abc", []string{"f"}, nil}
	for i, s := range msgs {
		m.LogEvents = append(m.LogEvents, ev{ID: strings.Repeat("7", 50) + string(rune('0'+i%10)), Timestamp: 1764000000000 + int64(i), Message: s})
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeRoundTrip(t *testing.T) {
	plain := subscription(t, tricky)
	indented := func() []byte {
		var buf bytes.Buffer
		if err := json.Indent(&buf, plain, " ", "\t"); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}()
	// Keys in another order, unknown keys, escaped key names and \u escapes of ASCII.
	reordered := []byte(`{"logEvents":[{"message":"\u0046orbidden \ud83d\ude00 \ud800 x\u00e9","extra":[1,{"a":null}],"timestamp":-5,"id":"1"},` +
		`{"timestamp":0,"id":"","message":"\\\"\/"}],"unknown":{"x":[true,false,1.5e3]},"subscriptionFilters":[],` +
		`"logStream":"s","logGroup":"g\/h","\u006fwner":"o","policyLevel":"ACCOUNT_LEVEL_POLICY","messageType":"DATA_MESSAGE"}`)
	// Shapes the fast path leaves to encoding/json.
	fallback := []byte(`{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1000,"message":null}]}`)
	for name, msg := range map[string][]byte{"plain": plain, "indented": indented, "reordered": reordered, "fallback": fallback} {
		for cname, comp := range map[string][]byte{"gzip": gzipBytes(t, msg), "zlib": zlibBytes(t, msg)} {
			t.Run(name+"/"+cname, func(t *testing.T) {
				var d Decoder
				got, err := d.Decode(awslogsEvent(comp))
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != 1 {
					t.Fatalf("%d payloads", len(got))
				}
				if w, ref := flatten(t, got[0]), oracle(t, msg); !reflect.DeepEqual(w, ref) {
					t.Errorf("\n got %+v\nwant %+v", w, ref)
				}
			})
		}
	}
}

func TestDecodeKinesisAndReuse(t *testing.T) {
	m1 := subscription(t, tricky)
	m2 := subscription(t, []string{"second payload"})
	event := []byte(`{"Records":[{"eventSource":"aws:kinesis","kinesis":{"partitionKey":"k","data":"` +
		base64.StdEncoding.EncodeToString(gzipBytes(t, m1)) + `"}},{"kinesis":{"data":"` +
		// JSON writers may escape the '/' of base64 as "\/".
		strings.ReplaceAll(base64.StdEncoding.EncodeToString(zlibBytes(t, m2)), "/", `\/`) + `"}}]}`)
	var d Decoder
	for round := 0; round < 3; round++ { // buffers are reused between calls
		got, err := d.Decode(event)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Fatalf("%d payloads", len(got))
		}
		for i, msg := range [][]byte{m1, m2} {
			if w, ref := flatten(t, got[i]), oracle(t, msg); !reflect.DeepEqual(w, ref) {
				t.Errorf("round %d payload %d:\n got %+v\nwant %+v", round, i, w, ref)
			}
		}
	}
	// The cap applies to the whole invocation, not to each payload.
	small := Decoder{MaxBytes: int64(len(m1) + len(m2) - 1)}
	if _, err := small.Decode(event); !errors.Is(err, ErrTooLarge) {
		t.Errorf("cap over two payloads: got %v", err)
	}
	exact := Decoder{MaxBytes: int64(len(m1) + len(m2))}
	if _, err := exact.Decode(event); err != nil {
		t.Errorf("cap equal to the size: %v", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	data := subscription(t, []string{"x"})
	comp := gzipBytes(t, data)
	control := []byte(`{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"","subscriptionFilters":[],"logEvents":[{"id":"","timestamp":1,"message":"CWL CONTROL MESSAGE: Checking health of destination"}]}`)
	tests := []struct {
		name    string
		event   []byte
		is      error  // when set, errors.Is must hold
		content string // when set, the message must contain it
	}{
		{"firehose event", readFile(t, "powertools-python_kinesisFirehoseKinesisEvent.json"), ErrUnknownEvent, ""},
		{"empty object", []byte(`{}`), ErrUnknownEvent, ""},
		{"awslogs without data", []byte(`{"awslogs":{}}`), ErrUnknownEvent, ""},
		{"record without data", []byte(`{"Records":[{"kinesis":{}}]}`), ErrUnknownEvent, ""},
		{"event not JSON", []byte(`{"awslogs":`), nil, "parse lambda event"},
		{"bad base64", []byte(`{"awslogs":{"data":"H4sI*"}}`), nil, "decode base64"},
		{"not compressed", awslogsEvent(data), ErrUnknownCompression, ""},
		{"truncated gzip", awslogsEvent(comp[:len(comp)/2]), io.ErrUnexpectedEOF, "truncated"},
		{"truncated trailer", awslogsEvent(comp[:len(comp)-3]), io.ErrUnexpectedEOF, "truncated"},
		{"payload not JSON", awslogsEvent(gzipBytes(t, []byte("hello"))), nil, "parse subscription message"},
		{"unknown messageType", awslogsEvent(gzipBytes(t, bytes.Replace(data, []byte("DATA_MESSAGE"), []byte("OTHER"), 1))), ErrUnknownMessageType, "OTHER"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Decoder
			_, err := d.Decode(tt.event)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.content) {
				t.Errorf("error %q does not mention %q", err, tt.content)
			}
		})
	}
	// A control message is decoded, not rejected.
	var d Decoder
	got, err := d.Decode(awslogsEvent(gzipBytes(t, control)))
	if err != nil || len(got) != 1 || got[0].MessageType != ControlMessage {
		t.Errorf("control message: %v %+v", err, got)
	}
}

// TestDecodeBomb inflates 1 GiB of zeros (1,024 gzip members of 1 MiB, about 1 MB
// compressed) against the cap: the decoder must stop at the cap with a bounded buffer.
func TestDecodeBomb(t *testing.T) {
	member := gzipBytes(t, make([]byte, 1<<20))
	gz := bytes.Repeat(member, 1024)
	z := zlibBytes(t, make([]byte, 8<<20))
	for name, event := range map[string][]byte{"gzip": awslogsEvent(gz), "zlib": awslogsEvent(z)} {
		for _, limit := range []int64{1 << 20, 4 << 20} {
			d := Decoder{MaxBytes: limit}
			_, err := d.Decode(event)
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("%s limit %d: got %v, want ErrTooLarge", name, limit, err)
			}
			if c := int64(cap(d.out)); c > limit+64<<10 {
				t.Errorf("%s limit %d: buffer grew to %d bytes", name, limit, c)
			}
		}
	}
	// The default cap applies to the zero value.
	var d Decoder
	if _, err := d.Decode(awslogsEvent(gz)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("default cap: got %v", err)
	}
	if c := cap(d.out); c > DefaultMaxDecompressedBytes+64<<10 {
		t.Errorf("default cap: buffer grew to %d bytes", c)
	}
}
