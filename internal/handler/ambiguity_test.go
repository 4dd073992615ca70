package handler_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/eks-unauthorized-access/detector/infra/local/localtest"
	"github.com/eks-unauthorized-access/detector/internal/alert"
	"github.com/eks-unauthorized-access/detector/internal/handler"
	"github.com/eks-unauthorized-access/detector/internal/notify"
	"github.com/eks-unauthorized-access/detector/internal/store"
)

// fault is what the faulty proxy does to a request it picks.
type fault int

const (
	// applyThen500 forwards the request (the service applies it) and answers 500.
	applyThen500 fault = iota + 1
	// applyThenReset forwards the request and then fails as a reset connection.
	applyThenReset
	// applyThenHang forwards the request and holds the answer past the caller's deadline.
	applyThenHang
	// throttle answers 400 ThrottlingException without forwarding.
	throttle
)

// faultyProxy is an HTTP transport between a client and a local service. It applies f to
// the first times requests for which pick returns true (given the X-Amz-Target or query
// action and the body), and forwards everything else untouched.
type faultyProxy struct {
	mu    sync.Mutex
	pick  func(op string, body []byte) bool
	f     fault
	times int
	hits  int
	json  bool // the service speaks JSON (DynamoDB); otherwise XML (SNS)
}

func (p *faultyProxy) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		_ = req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	op := req.Header.Get("X-Amz-Target")
	if i := strings.LastIndexByte(op, '.'); i >= 0 {
		op = op[i+1:]
	}
	p.mu.Lock()
	hit := p.times > 0 && p.pick(op, body)
	if hit {
		p.times--
		p.hits++
	}
	p.mu.Unlock()
	if !hit {
		return http.DefaultTransport.RoundTrip(req)
	}
	if p.f == throttle {
		return p.answer(req, 400, "ThrottlingException", "Throttling"), nil
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	switch p.f {
	case applyThenReset:
		return nil, fmt.Errorf("read response: %w", syscall.ECONNRESET)
	case applyThenHang:
		<-req.Context().Done()
		return nil, req.Context().Err()
	}
	return p.answer(req, 500, "InternalServerError", "InternalFailure"), nil
}

// answer builds an error response in the service's protocol.
func (p *faultyProxy) answer(req *http.Request, status int, jsonType, xmlCode string) *http.Response {
	var b string
	h := http.Header{}
	if p.json {
		b = `{"__type":"com.amazonaws.dynamodb.v20120810#` + jsonType + `","message":"injected fault"}`
		h.Set("Content-Type", "application/x-amz-json-1.0")
	} else {
		code := xmlCode
		if status == 400 {
			code = "Throttling"
		}
		b = `<ErrorResponse><Error><Type>Sender</Type><Code>` + code + `</Code><Message>injected fault</Message></Error><RequestId>x</RequestId></ErrorResponse>`
		h.Set("Content-Type", "text/xml")
	}
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Header: h,
		Body: io.NopCloser(strings.NewReader(b)), ContentLength: int64(len(b)), Request: req}
}

func isPublish(_ string, body []byte) bool { return bytes.Contains(body, []byte("Action=Publish")) }

func isClaim(op string, body []byte) bool {
	return op == "UpdateItem" && bytes.Contains(body, []byte(`"claimedAt"`))
}

func isMarkSent(op string, body []byte) bool {
	return op == "UpdateItem" && bytes.Contains(body, []byte(`"sentAt"`))
}

// received is one alert a subscriber got.
type received struct {
	user, id string
	flagged  bool
}

func (r *rig) received(t *testing.T) []received {
	t.Helper()
	var out []received
	for _, n := range r.notifications(t) {
		var a alert.Alert
		if err := json.Unmarshal([]byte(n.Message), &a); err != nil {
			t.Fatalf("not a structured alert: %v", err)
		}
		if n.MessageAttributes["alertId"].Value != a.ID || n.MessageAttributes["possibleDuplicate"].Value != fmt.Sprint(a.PossibleDuplicate) {
			t.Errorf("attributes %v disagree with the alert (id %s, possibleDuplicate %v)", n.MessageAttributes, a.ID, a.PossibleDuplicate)
		}
		out = append(out, received{user: a.RiskObject.Value, id: a.ID, flagged: a.PossibleDuplicate})
	}
	return out
}

// checkAlerts checks that every user got exactly one unflagged alert, and that any other
// alert is a flagged copy (same id) of one of them: a recognisable duplicate, never an
// unexpected one. It returns the number of flagged copies.
func checkAlerts(t *testing.T, got []received, users []string) int {
	t.Helper()
	ids := map[string]string{}
	plain := map[string]int{}
	flagged := 0
	for _, a := range got {
		if prev, ok := ids[a.user]; ok && prev != a.id {
			t.Errorf("two alerts for %s with different ids %s and %s", a.user, prev, a.id)
		}
		ids[a.user] = a.id
		if a.flagged {
			flagged++
		} else {
			plain[a.user]++
		}
	}
	for _, u := range users {
		if plain[u] > 1 {
			t.Errorf("%s got %d unflagged alerts: an unrecognisable duplicate", u, plain[u])
		}
		if _, ok := ids[u]; !ok {
			t.Errorf("no alert for %s", u)
		}
	}
	if len(ids) != len(users) {
		t.Errorf("alerts for %v, want %v", maps.Keys(ids), users)
	}
	return flagged
}

// TestAmbiguousAnswers puts a faulty proxy between the handler and SNS or DynamoDB Local.
// Whatever the fault, counts are exact, nothing is lost, and every alert beyond the first
// of a group is a flagged copy with the same id.
func TestAmbiguousAnswers(t *testing.T) {
	db, moto := localtest.DynamoDBForTest(t), localtest.MotoForTest(t, "ambiguous")
	for _, tc := range []struct {
		name string
		sns  *faultyProxy // between the publisher and SNS
		ddb  *faultyProxy // between the store and DynamoDB
		// firstFails: the first invocation must fail (so that Lambda retries it).
		firstFails bool
		// wantFlagged: flagged copies expected over both deliveries.
		wantFlagged int
	}{
		{"publish applied, answered 500", &faultyProxy{pick: isPublish, f: applyThen500, times: 1}, nil, true, 1},
		{"publish applied, connection reset", &faultyProxy{pick: isPublish, f: applyThenReset, times: 1}, nil, true, 1},
		{"publishes applied, all answered 500", &faultyProxy{pick: isPublish, f: applyThen500, times: 3}, nil, true, 3},
		{"publish applied, answer held past the deadline", &faultyProxy{pick: isPublish, f: applyThenHang, times: 1}, nil, true, 1},
		{"publish throttled", &faultyProxy{pick: isPublish, f: throttle, times: 2}, nil, false, 0},
		{"claim applied, answered 500", nil, &faultyProxy{pick: isClaim, f: applyThen500, times: 1, json: true}, false, 0},
		{"mark-sent applied, answered 500", nil, &faultyProxy{pick: isMarkSent, f: applyThen500, times: 1, json: true}, false, 0},
		{"mark-sent throttled past the SDK's retries", nil, &faultyProxy{pick: isMarkSent, f: throttle, times: 5, json: true}, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, db.Endpoint, moto, "ambiguous")
			event, want := faultBatch(t)
			var st handler.Store = store.New(r.client(nil), store.Options{Table: r.table})
			if tc.ddb != nil {
				st = store.New(r.client(tc.ddb), store.Options{Table: r.table})
			}
			var pub handler.Publisher
			if tc.sns != nil {
				pub = notify.New(moto.SNSClient(func(o *sns.Options) { o.HTTPClient = &http.Client{Transport: tc.sns} }), moto.TopicARN("ambiguous"))
			}
			budget := 30 * time.Second
			if tc.sns != nil && tc.sns.f == applyThenHang {
				budget = 3 * time.Second
			}
			err := invokeWith(r.handler(st, pub), event, "first", budget)
			if (err != nil) != tc.firstFails {
				t.Fatalf("first delivery: error %v, want failure %v", err, tc.firstFails)
			}
			if p := tc.sns; p != nil && p.hits == 0 {
				t.Fatal("the SNS fault was never injected")
			}
			if p := tc.ddb; p != nil && p.hits == 0 {
				t.Fatal("the DynamoDB fault was never injected")
			}
			got := r.received(t)
			// Lambda retries a failed delivery; a successful one may be redelivered too.
			if err := invokeWith(r.handler(nil, nil), event, "retry", 30*time.Second); err != nil {
				t.Fatalf("redelivery: %v", err)
			}
			got = append(got, r.received(t)...)
			if flagged := checkAlerts(t, got, faultUsers); flagged > tc.wantFlagged {
				t.Errorf("%d flagged copies, want at most %d", flagged, tc.wantFlagged)
			}
			if got := r.counts(t, faultUsers...); !maps.Equal(got, want) {
				t.Errorf("counts = %v, want %v", got, want)
			}
			for _, item := range r.items(t) {
				if sk := item["sk"].(*types.AttributeValueMemberS).Value; sk == "alert" {
					if s := item["state"].(*types.AttributeValueMemberS).Value; s != "sent" {
						t.Errorf("alert item %v in state %s after the redelivery, want sent", item["pk"], s)
					}
				}
			}
		})
	}
}

var (
	_ = errors.New
	_ = aws.String
	_ = dynamodb.NewFromConfig
)

// TestDynamoDBStopsDuringConcurrentDeliveries kills DynamoDB Local while three copies of a
// delivery run at once. Once it is back, Lambda's retry (after the leases) leaves exact
// counts, and every group has exactly one unflagged alert over all deliveries.
func TestDynamoDBStopsDuringConcurrentDeliveries(t *testing.T) {
	moto := localtest.MotoForTest(t, "dbconcurrent")
	db := startDiskDynamoDB(t)
	r := newRig(t, db.endpoint, moto, "dbconcurrent")
	event, want := faultBatch(t)
	wire := &tripwire{match: func(_ string, n int) bool { return n == 12 }, fire: func(*http.Request) { db.kill() }}
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := r.handler(store.New(r.client(wire), store.Options{Table: r.table}), nil)
			_ = invokeWith(h, event, fmt.Sprintf("copy-%d", i), 20*time.Second) // may fail: DynamoDB is gone
		}()
	}
	wg.Wait()
	if !wire.fired {
		t.Fatal("the fault was never injected")
	}
	got := r.received(t)
	db.start()
	// Lambda's retries come after the leases of the claims left behind.
	later := func() time.Time { return time.Now().Add(5 * time.Minute) }
	retry := r.handler(store.New(r.client(nil), store.Options{Table: r.table, Now: later}), nil)
	if err := invokeWith(retry, event, "retry", 30*time.Second); err != nil {
		t.Fatalf("redelivery: %v", err)
	}
	got = append(got, r.received(t)...)
	checkAlerts(t, got, faultUsers)
	if counts := r.counts(t, faultUsers...); !maps.Equal(counts, want) {
		t.Errorf("counts = %v, want %v", counts, want)
	}
}
