package cwlogs

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestSplit checks the record splitter against encoding/json on subscription messages
// built by hand, and that it takes (or declines) the fast path as intended.
func TestSplit(t *testing.T) {
	const head = `{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"/aws/eks/prod/cluster","logStream":"s","subscriptionFilters":["f"],"logEvents":`
	const tail = `}`
	rec := func(id, msg string) string {
		return `{"id":"` + id + `","timestamp":1764000000000,"message":"` + msg + `"}`
	}
	tests := []struct {
		name   string
		events string
		fast   bool
	}{
		{"one record", `[` + rec("1", `{\"verb\":\"create\"}`) + `]`, true},
		{"empty", `[]`, true},
		{"several", `[` + rec("1", "a") + `,` + rec("22", "b") + `,` + rec("333", "") + `]`, true},
		{"message ending in a backslash", `[` + rec("1", `ends in \\`) + `,` + rec("2", `\\\\`) + `]`, true},
		{"message holding a record start", `[` + rec("1", `{\"id\":\"9\",\"timestamp\":1,\"message\":\"x\"}`) + `,` + rec("2", "b") + `]`, true},
		{"message holding record ends", `[` + rec("1", `\"},{\"id\":\"`) + `,` + rec("2", `x\"}]`) + `]`, true},
		{"last message holding the array end", `[` + rec("1", `a\"}]\"}]`) + `]`, true},
		{"escapes and unicode", `[` + rec("1", `\u0046orbidden \u00e9 \/ \n é`) + `,` + rec("2", "z") + `]`, true},
		{"keys after the message", `[{"id":"1","timestamp":5,"message":"m","x":"y"},{"id":"2","timestamp":6,"message":"n","x":"z"}]`, false},
		{"object after the last message", `[{"id":"1","timestamp":5,"message":"m","x":{"a":"b"}}]`, false},
		{"timestamp first", `[{"timestamp":5,"id":"1","message":"m"}]`, false},
		{"whitespace", `[ {"id":"1","timestamp":5,"message":"m"}]`, false},
		{"whitespace between records", `[{"id":"1","timestamp":5,"message":"m"}, {"id":"2","timestamp":5,"message":"m"}]`, false},
		{"escaped key", `[{"\u0069d":"1","timestamp":5,"message":"m"}]`, false},
		{"id not digits", `[{"id":"a1","timestamp":5,"message":"m"}]`, false},
		{"negative timestamp", `[{"id":"1","timestamp":-5,"message":"m"}]`, true},
		{"message not last", `[{"id":"1","message":"m","timestamp":5}]`, false},
	}
	// Layouts CloudWatch Logs never writes, where a fast path must not disagree with
	// encoding/json: the result is encoding/json's, or the decoded line is refused.
	for _, tt := range []struct {
		name, msg string
		refused   bool // Text of a log event fails with ErrMalformedMessage
	}{
		{"logEvents twice: the last wins", `{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logEvents":[{"id":"1","timestamp":5,"message":"a"}],"logEvents":[{"id":"2","timestamp":6,"message":"b"}]}`, false},
		{"logEvents twice, the first not split", `{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logEvents":[ {"id":"1","timestamp":5,"message":"a"},{"id":"3","timestamp":5,"message":"c"}],"logEvents":[{"id":"2","timestamp":6,"message":"b"}]}`, false},
		{"keys with objects after logEvents", `{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":5,"message":"a"}],"owner":"111","logGroup":"/aws/eks/x/cluster","x":[{"a":"b"}]}`, false},
		{"id repeated after the message", `{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logEvents":[{"id":"1","timestamp":5,"message":"a","id":"2"},{"id":"3","timestamp":6,"message":"b"}]}`, true},
		{"message repeated", `{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logEvents":[{"id":"3","timestamp":5,"message":"b","message":"c"},{"id":"4","timestamp":6,"message":"d"}]}`, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var ps payloadScanner
			p, err := ps.parse([]byte(tt.msg))
			if err != nil {
				t.Fatal(err)
			}
			var refused bool
			for _, e := range p.LogEvents {
				if _, err := e.Text(); errors.Is(err, ErrMalformedMessage) {
					refused = true
				}
			}
			if refused != tt.refused {
				t.Fatalf("refused = %v, want %v", refused, tt.refused)
			}
			if !refused {
				if got, want := flatten(t, p), oracle(t, []byte(tt.msg)); !reflect.DeepEqual(got, want) {
					t.Errorf("got  %+v\nwant %+v", got, want)
				}
			}
		})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := []byte(head + tt.events + tail)
			var ps payloadScanner
			p, err := ps.parse(msg)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := flatten(t, p), oracle(t, msg); !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
			for _, e := range p.LogEvents {
				if e.split != tt.fast {
					t.Errorf("event %s: split = %v, want %v", e.ID, e.split, tt.fast)
				}
			}
			// The splitter alone accepts exactly the CloudWatch layout.
			i := strings.Index(string(msg), `"logEvents":`) + len(`"logEvents":`)
			if _, ok := ps.split(msg, i); ok != tt.fast {
				t.Errorf("split ok = %v, want %v", ok, tt.fast)
			}
		})
	}
}
