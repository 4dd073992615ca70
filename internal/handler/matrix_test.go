package handler_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eks-unauthorized-access/detector/infra/local/localtest"
	"github.com/eks-unauthorized-access/detector/internal/cwlogs"
	"github.com/eks-unauthorized-access/detector/internal/store"
)

// gzipBomb returns about 1 MB of gzip that inflates to 1 GiB of zeros: 1,024 copies of
// one member holding 1 MiB (gzip readers inflate concatenated members as one stream).
func gzipBomb(t testing.TB) []byte {
	t.Helper()
	return bytes.Repeat(gzipped(t, make([]byte, 1<<20)), 1024)
}

// rawDelivery builds a delivery by hand so that messages reach the payload byte for byte
// (encoding/json would replace invalid UTF-8): only quotes, backslashes and control
// characters are escaped, except in the first message when verbatimFirst is set.
func rawDelivery(t testing.TB, messages []string, verbatimFirst bool) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteString(`{"messageType":"DATA_MESSAGE","owner":"111122223333","logGroup":"/aws/eks/prod/cluster","logStream":"kube-apiserver-audit-1","subscriptionFilters":["f"],"logEvents":[`)
	for i, m := range messages {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"%056d","timestamp":%d,"message":"`, i, hourNow.Add(30*time.Minute).UnixMilli())
		if verbatimFirst && i == 0 {
			b.WriteString(m)
		} else {
			for _, c := range []byte(m) {
				switch {
				case c == '"' || c == '\\':
					b.WriteByte('\\')
					b.WriteByte(c)
				case c < 0x20:
					fmt.Fprintf(&b, `\u%04x`, c)
				default:
					b.WriteByte(c)
				}
			}
		}
		b.WriteString(`"}`)
	}
	b.WriteString(`]}`)
	return awslogs(gzipped(t, b.Bytes()))
}

// eventCase is one Lambda event of the matrix and its specified outcome.
type eventCase struct {
	name  string
	event []byte
	// errIs / errHas: when either is set the invocation must fail with that error.
	errIs  error
	errHas string
	// log are summary fields the invocation must report; alerts the users alerted.
	log    map[string]float64
	alerts []string
}

// TestBadInputMatrix sends hostile and malformed deliveries through the handler wired to
// the real pipeline, DynamoDB Local and moto. A delivery that cannot be decoded fails the
// invocation with a clear error (so Lambda retries it and then uses the on-failure
// destination); a bad log event inside a good delivery is skipped and counted by reason
// while the good event beside it is still counted and alerted: nothing is dropped silently.
func TestBadInputMatrix(t *testing.T) {
	db, moto := localtest.DynamoDBForTest(t), localtest.MotoForTest(t, "matrix")

	good := func(user string) string { return auditLine(t, user, "203.0.113.9", time.Minute, nil) }
	plain := subscriptionMessage(t, []logEvent{{ID: "1", Timestamp: hourNow.UnixMilli(), Message: good("zlib-user")}})
	zcomp, err := cwlogs.Compress(plain, cwlogs.Zlib)
	if err != nil {
		t.Fatal(err)
	}
	comp := gzipped(t, plain)

	// Lines that pass the prefilter (they hold create and a quoted Forbidden), so they are
	// parsed.
	full := good("x")
	truncated := full[:len(full)-50] + "[Truncated...]"
	nested := `{"verb":"create","reason":"Forbidden","x":` + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + `}`
	huge := "create \"Forbidden\" " + strings.Repeat("A", 6<<20)
	hugeMatch := auditLine(t, "huge-agent", "203.0.113.9", 2*time.Minute, map[string]any{"userAgent": strings.Repeat("B", 5<<20)})
	badUTF8User := strings.Replace(auditLine(t, "BADUTF8", "203.0.113.9", 3*time.Minute, nil), `"username":"BADUTF8"`, "\"username\":\"bad\xff\xfeutf8\"", 1)

	lineCases := []struct {
		name     string
		line     string
		verbatim bool   // write the message into the payload without escaping
		skipped  string // skip reason expected for the bad line; "" when it must match
		alert    string // user alerted for the bad line itself, when it matches
	}{
		{"junk text", "I1124 08:30:01 trace.go:236] \"Create\" reason=\"Forbidden\"", false, "not_json", ""},
		{"truncated by CloudWatch Logs", truncated, false, "truncated", ""},
		{"deeply nested JSON", nested, false, "not_json", ""},
		{"several MB of junk", huge, false, "not_json", ""},
		{"not UTF-8 junk", "\xff\xfe create \xc0 \"Forbidden\" \xed\xa0\x80", false, "not_json", ""},
		{"kind of the wrong type", `{"kind":0,"verb":"create","responseStatus":{"reason":"Forbidden"}}`, false, "not_audit", ""},
		{"responseStatus a string", `{"apiVersion":"audit.k8s.io/v1","verb":"create","responseStatus":"Forbidden"}`, false, "not_audit", ""},
		{"verb an array", `{"apiVersion":"audit.k8s.io/v1","verb":["create"],"responseStatus":{"reason":"Forbidden"}}`, false, "not_audit", ""},
		{"username a number", `{"kind":"Event","verb":"create","user":{"username":403},"responseStatus":{"reason":"Forbidden"}}`, false, "not_audit", ""},
		{"invalid escape in the message", `create \"Forbidden\" \x`, true, "bad_encoding", ""},
		{"JSON array", `["create","Forbidden"]`, false, "not_audit", ""},
		{"missing fields everywhere", `{"apiVersion":"audit.k8s.io/v1","verb":"create","responseStatus":{"reason":"Forbidden"}}`, false, "", "0"},
		{"null fields everywhere", `{"apiVersion":"audit.k8s.io/v1","verb":"create","user":null,"sourceIPs":null,"objectRef":null,"userAgent":null,"responseStatus":{"reason":"Forbidden","code":null,"message":null}}`, false, "", "0"},
		{"user agent of several MB", hugeMatch, false, "", "huge-agent"},
		{"user name not UTF-8", badUTF8User, false, "", "bad\uFFFD\uFFFDutf8"},
	}
	for i, lc := range lineCases {
		t.Run("line/"+lc.name, func(t *testing.T) {
			r := newRig(t, db.Endpoint, moto, "matrix")
			goodUser := fmt.Sprintf("good-%d", i)
			h := r.handler(nil, nil)
			event := rawDelivery(t, []string{lc.line, good(goodUser)}, lc.verbatim)
			if err := invokeWith(h, event, "line", 30*time.Second); err != nil {
				t.Fatalf("a bad line failed the whole delivery: %v", err)
			}
			sums := r.summaries(t)
			if len(sums) != 1 {
				t.Fatalf("%d summary lines, want 1", len(sums))
			}
			s := sums[0]
			want := map[string]float64{"logEvents": 2, "matches": 1, "skipped": 1, "alertsPublished": 1}
			wantAlerts := []string{goodUser}
			if lc.skipped != "" {
				want["skipped_"+lc.skipped] = 1
			} else {
				want = map[string]float64{"logEvents": 2, "matches": 2, "skipped": 0, "alertsPublished": 2}
				wantAlerts = append(wantAlerts, lc.alert)
				slices.Sort(wantAlerts)
			}
			for k, v := range want {
				if s[k] != v {
					t.Errorf("summary %s = %v, want %v (summary %v)", k, s[k], v, s)
				}
			}
			if got := alertUsers(r.notifications(t)); !slices.Equal(got, wantAlerts) {
				t.Errorf("alerts for %q, want %q", got, wantAlerts)
			}
			// Stored values are bounded, whatever the line held.
			for _, item := range r.items(t) {
				for name, v := range item {
					if s, ok := v.(*types.AttributeValueMemberS); ok && len(s.Value) > store.MaxValueBytes+64 {
						t.Errorf("item attribute %s holds %d bytes", name, len(s.Value))
					}
				}
			}
		})
	}

	kinesisBomb := []byte(`{"Records":[{"kinesis":{"data":"` + base64.StdEncoding.EncodeToString(gzipBomb(t)) + `"}}]}`)
	eventCases := []eventCase{
		{name: "bad base64", event: []byte(`{"awslogs":{"data":"H4sI!!not base64!!"}}`), errHas: "base64"},
		{name: "truncated gzip", event: awslogs(comp[:len(comp)/2]), errIs: io.ErrUnexpectedEOF},
		{name: "gzip of garbage", event: awslogs(gzipped(t, []byte("garbage, not JSON"))), errHas: "parse subscription message"},
		{name: "gzip header then garbage", event: awslogs(append([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}, bytes.Repeat([]byte{0xde, 0xad}, 64)...)), errHas: "inflate"},
		{name: "neither gzip nor zlib", event: awslogs(plain), errIs: cwlogs.ErrUnknownCompression},
		{name: "zlib", event: awslogs(zcomp), log: map[string]float64{"logEvents": 1, "matches": 1}, alerts: []string{"zlib-user"}},
		{name: "gzip bomb", event: awslogs(gzipBomb(t)), errIs: cwlogs.ErrTooLarge},
		{name: "gzip bomb in a Kinesis record", event: kinesisBomb, errIs: cwlogs.ErrTooLarge},
		{name: "empty event", event: []byte(``), errHas: "parse lambda event"},
		{name: "null event", event: []byte(`null`), errIs: cwlogs.ErrUnknownEvent},
		{name: "empty object", event: []byte(`{}`), errIs: cwlogs.ErrUnknownEvent},
		{name: "EventBridge event", event: []byte(`{"version":"0","detail-type":"Scheduled Event","source":"aws.events","detail":{}}`), errIs: cwlogs.ErrUnknownEvent},
		{name: "SQS event", event: []byte(`{"Records":[{"messageId":"1","body":"hello","eventSource":"aws:sqs"}]}`), errIs: cwlogs.ErrUnknownEvent},
		{name: "awslogs data not a string", event: []byte(`{"awslogs":{"data":42}}`), errHas: "parse lambda event"},
		{name: "control message", event: awslogs(gzipped(t, []byte(`{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"","subscriptionFilters":[],"logEvents":[{"id":"","timestamp":1,"message":"CWL CONTROL MESSAGE: Checking health of destination"}]}`))),
			log: map[string]float64{"controlMessages": 1, "logEvents": 0, "aggregates": 0}},
		// CloudWatch Logs writes valid JSON: a payload that is not is a bad batch.
		{name: "payload not JSON", event: rawDelivery(t, []string{`create "Forbidden`}, true), errHas: "parse subscription message"},
		{name: "unknown messageType", event: awslogs(gzipped(t, bytes.Replace(plain, []byte("DATA_MESSAGE"), []byte("DATA_MESSAGE_V2"), 1))), errIs: cwlogs.ErrUnknownMessageType},
	}
	for _, ec := range eventCases {
		t.Run("event/"+ec.name, func(t *testing.T) {
			r := newRig(t, db.Endpoint, moto, "matrix")
			h := r.handler(nil, nil)
			err := invokeWith(h, ec.event, "event", 30*time.Second)
			wantErr := ec.errIs != nil || ec.errHas != ""
			switch {
			case wantErr && err == nil:
				t.Fatal("the invocation succeeded")
			case !wantErr && err != nil:
				t.Fatalf("the invocation failed: %v", err)
			case ec.errIs != nil && !errors.Is(err, ec.errIs):
				t.Errorf("error %q is not %q", err, ec.errIs)
			case ec.errHas != "" && !strings.Contains(err.Error(), ec.errHas):
				t.Errorf("error %q does not mention %q", err, ec.errHas)
			}
			sums := r.summaries(t)
			if len(sums) != 1 {
				t.Fatalf("%d summary lines, want 1", len(sums))
			}
			if wantErr && (sums[0]["level"] != "ERROR" || sums[0]["error"] == nil) {
				t.Errorf("failed invocation logged without its error: %v", sums[0])
			}
			for k, v := range ec.log {
				if sums[0][k] != v {
					t.Errorf("summary %s = %v, want %v", k, sums[0][k], v)
				}
			}
			if got := alertUsers(r.notifications(t)); !slices.Equal(got, ec.alerts) && len(got)+len(ec.alerts) > 0 {
				t.Errorf("alerts for %q, want %q", got, ec.alerts)
			}
		})
	}
}

// TestGzipBombMemory checks that a delivery inflating to 1 GiB fails with ErrTooLarge
// after allocating memory in proportion to the configured cap, not to the bomb.
func TestGzipBombMemory(t *testing.T) {
	db, moto := localtest.DynamoDBForTest(t), localtest.MotoForTest(t, "bomb")
	event := awslogs(gzipBomb(t))
	for _, capBytes := range []int64{8 << 20, cwlogs.DefaultMaxDecompressedBytes} {
		t.Run(fmt.Sprint(capBytes>>20, "MiB"), func(t *testing.T) {
			r := newRig(t, db.Endpoint, moto, "bomb")
			r.opts.MaxDecompressedBytes = capBytes
			h := r.handler(nil, nil)
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err := invokeWith(h, event, "bomb", 30*time.Second)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, cwlogs.ErrTooLarge) {
				t.Fatalf("got %v, want ErrTooLarge", err)
			}
			allocated := int64(after.TotalAlloc - before.TotalAlloc)
			t.Logf("cap %d MiB: allocated %d MiB while refusing a 1 GiB bomb", capBytes>>20, allocated>>20)
			// Growing the buffer by doubling allocates at most about twice the cap; the
			// base64 and compressed copies of the event add about 3 MB.
			if limit := 3*capBytes + 16<<20; allocated > limit {
				t.Errorf("allocated %d bytes, more than %d for a cap of %d", allocated, limit, capBytes)
			}
			if !strings.Contains(r.log.String(), "exceeds") {
				t.Errorf("summary does not explain the failure: %s", r.log.String())
			}
		})
	}
}
