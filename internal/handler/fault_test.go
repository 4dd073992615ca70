package handler_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/eks-unauthorized-access/detector/infra/local"
	"github.com/eks-unauthorized-access/detector/infra/local/localtest"
	"github.com/eks-unauthorized-access/detector/internal/alert"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/handler"
	"github.com/eks-unauthorized-access/detector/internal/notify"
	"github.com/eks-unauthorized-access/detector/internal/pipeline"
	"github.com/eks-unauthorized-access/detector/internal/store"
)

// diskDynamoDB is a DynamoDB Local keeping its data in a folder (-dbPath), so that it can
// be killed in the middle of a delivery and started again on the same port with its data.
type diskDynamoDB struct {
	t        *testing.T
	java     string
	jar      string
	dir      string
	port     int
	endpoint string
	mu       sync.Mutex
	cmd      *exec.Cmd
}

func startDiskDynamoDB(t *testing.T) *diskDynamoDB {
	t.Helper()
	localtest.MustHaveServices(t)
	java, jar, err := local.DynamoDBTools()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	d := &diskDynamoDB{t: t, java: java, jar: jar, dir: t.TempDir(), port: port, endpoint: "http://127.0.0.1:" + strconv.Itoa(port)}
	d.start()
	t.Cleanup(d.kill)
	return d
}

// start runs DynamoDB Local and waits until it answers.
func (d *diskDynamoDB) start() {
	d.t.Helper()
	lib := filepath.Join(filepath.Dir(d.jar), "DynamoDBLocal_lib")
	cmd := exec.Command(d.java, "-Xms64m", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-Djava.library.path="+lib, "-jar", d.jar, "-sharedDb", "-dbPath", d.dir, "-disableTelemetry", "-port", strconv.Itoa(d.port))
	cmd.Dir = filepath.Dir(d.jar)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.mu.Lock()
	d.cmd = cmd
	d.mu.Unlock()
	client := dynamodb.NewFromConfig(local.AWSConfig(), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(d.endpoint)
		o.RetryMaxAttempts = 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		if _, err := client.ListTables(ctx, &dynamodb.ListTablesInput{}); err == nil {
			return
		} else if ctx.Err() != nil {
			d.t.Fatalf("DynamoDB Local on %s not ready: %v", d.dir, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// kill kills DynamoDB Local (with its process group) and waits for it; idempotent.
func (d *diskDynamoDB) kill() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		return
	}
	_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	_ = d.cmd.Wait()
	d.cmd = nil
}

// tripwire is an HTTP transport that calls fire once, before forwarding the first
// request for which match returns true.
type tripwire struct {
	mu    sync.Mutex
	match func(target string, n int) bool // target: the X-Amz-Target operation; n: requests so far
	fire  func(*http.Request)
	n     int
	fired bool
}

func (w *tripwire) RoundTrip(req *http.Request) (*http.Response, error) {
	w.mu.Lock()
	w.n++
	op := req.Header.Get("X-Amz-Target")
	if i := strings.LastIndexByte(op, '.'); i >= 0 {
		op = op[i+1:]
	}
	trip := !w.fired && w.match(op, w.n)
	if trip {
		w.fired = true
	}
	w.mu.Unlock()
	if trip {
		w.fire(req)
	}
	return http.DefaultTransport.RoundTrip(req)
}

// faultBatch is a delivery of 12 forbidden creates by 3 users (4 distinct aggregates each).
func faultBatch(t *testing.T) ([]byte, map[string]int64) {
	var lines []string
	want := map[string]int64{}
	for i := range 12 {
		user := fmt.Sprintf("user-%d", i%3)
		offset := time.Duration(i) * time.Second
		lines = append(lines, auditLine(t, user, "198.51.100.7", offset, nil))
		want[user+" "+hourNow.Add(offset).Format("2006-01-02T15:04:05.000000Z")] = 1
	}
	return delivery(t, lines, nil), want
}

var faultUsers = []string{"user-0", "user-1", "user-2"}

// TestDynamoDBStopsMidBatch kills DynamoDB Local at chosen points of a delivery: during
// the aggregate writes, and after the first alert claim, before that alert is published.
// The invocation must fail; once DynamoDB is back, the redelivery must leave exact counts
// and exactly one alert per group.
func TestDynamoDBStopsMidBatch(t *testing.T) {
	moto := localtest.MotoForTest(t, "dbfault")
	db := startDiskDynamoDB(t)
	tests := []struct {
		name  string
		match func(op string, n int) bool
		// staleClaim: the first claim could not be released while DynamoDB was down, so a
		// redelivery within its lease must fail (ErrClaimHeld) rather than succeed without
		// the alert, and one after the lease must publish it.
		staleClaim bool
	}{
		{"during the aggregate writes", func(op string, n int) bool { return n == 5 }, false},
		{"after the first claim, before its publish", func(op string, n int) bool { return op == "Query" }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, db.endpoint, moto, "dbfault")
			event, want := faultBatch(t)
			wire := &tripwire{match: tt.match, fire: func(*http.Request) { db.kill() }}
			faulty := store.New(r.client(wire), store.Options{Table: r.table})
			if err := invokeWith(r.handler(faulty, nil), event, "first", 30*time.Second); err == nil {
				t.Fatal("the invocation succeeded although DynamoDB stopped")
			}
			if !wire.fired {
				t.Fatal("the fault was never injected")
			}
			first := alertUsers(r.notifications(t))
			db.start()

			retry := r.handler(nil, nil)
			if tt.staleClaim {
				held := handler.New(handler.Options{
					Processor: pipeline.New(r.opts), Store: store.New(r.client(nil), store.Options{Table: r.table}),
					Publisher: notify.New(r.moto.SNSClient(), r.moto.TopicARN(r.topic)),
					Rule:      detect.UnauthorizedAccess, ClaimLease: time.Minute, HeldWait: 200 * time.Millisecond,
					Logger: handler.NewLogger(r.log, slog.LevelInfo),
				})
				if err := invokeWith(held, event, "retry-within-lease", 30*time.Second); !errors.Is(err, handler.ErrClaimHeld) {
					t.Fatalf("redelivery within the stale claim's lease = %v, want ErrClaimHeld", err)
				}
				// Lambda's next retry comes after the lease: a store clock past it stands for that.
				later := func() time.Time { return time.Now().Add(5 * time.Minute) }
				retry = r.handler(store.New(r.client(nil), store.Options{Table: r.table, Now: later}), nil)
			}
			if err := invokeWith(retry, event, "retry", 30*time.Second); err != nil {
				t.Fatalf("redelivery: %v", err)
			}
			r.checkRedelivered(t, want, first)
		})
	}
}

// failingAfter publishes through ok for the first n alerts, then through broken.
type failingAfter struct {
	mu         sync.Mutex
	n          int
	ok, broken *notify.Publisher
}

func (p *failingAfter) Publish(ctx context.Context, m alert.Message) (string, error) {
	p.mu.Lock()
	use := p.broken
	if p.n > 0 {
		p.n--
		use = p.ok
	}
	p.mu.Unlock()
	return use.Publish(ctx, m)
}

// TestSNSFailsMidBatch lets the first alert of a delivery through and then makes SNS
// unreachable: the invocation fails, and the redelivery publishes the remaining alerts
// only, with the counts unchanged.
func TestSNSFailsMidBatch(t *testing.T) {
	db, moto := localtest.DynamoDBForTest(t), localtest.MotoForTest(t, "snsfault")
	r := newRig(t, db.Endpoint, moto, "snsfault")
	event, want := faultBatch(t)
	broken := notify.New(sns.NewFromConfig(local.AWSConfig(), func(o *sns.Options) {
		o.BaseEndpoint = aws.String(closedEndpoint(t))
		o.RetryMaxAttempts = 1
	}), moto.TopicARN("snsfault"))
	pub := &failingAfter{n: 1, ok: notify.New(moto.SNSClient(), moto.TopicARN("snsfault")), broken: broken}
	if err := invokeWith(r.handler(nil, pub), event, "first", 30*time.Second); err == nil {
		t.Fatal("the invocation succeeded although SNS failed")
	}
	first := alertUsers(r.notifications(t))
	if len(first) != 1 {
		t.Fatalf("first delivery published %q, want exactly one alert", first)
	}
	if err := invokeWith(r.handler(nil, nil), event, "retry", 30*time.Second); err != nil {
		t.Fatalf("redelivery: %v", err)
	}
	all := append(first, alertUsers(r.notifications(t))...)
	slices.Sort(all)
	if !slices.Equal(all, faultUsers) {
		t.Errorf("alerts over both deliveries for %q, want one for each of %q", all, faultUsers)
	}
	if got := r.counts(t, faultUsers...); !maps.Equal(got, want) {
		t.Errorf("counts = %v, want %v", got, want)
	}
}

// TestDeadlineExpiresMidBatch lets the invocation's deadline pass while a request is in
// flight: during the aggregate writes, and after the first claim. The invocation fails;
// the redelivery, with time to spare, completes with exact counts and one alert per group.
func TestDeadlineExpiresMidBatch(t *testing.T) {
	db, moto := localtest.DynamoDBForTest(t), localtest.MotoForTest(t, "deadline")
	tests := []struct {
		name  string
		match func(op string, n int) bool
	}{
		{"during the aggregate writes", func(op string, n int) bool { return n == 5 }},
		{"after the first claim, before its publish", func(op string, n int) bool { return op == "Query" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, db.Endpoint, moto, "deadline")
			event, want := faultBatch(t)
			// The request that trips the wire waits for the invocation's deadline.
			wire := &tripwire{match: tt.match, fire: func(req *http.Request) { <-req.Context().Done() }}
			slow := store.New(r.client(wire), store.Options{Table: r.table})
			if err := invokeWith(r.handler(slow, nil), event, "first", 2*time.Second); err == nil {
				t.Fatal("the invocation succeeded past its deadline")
			}
			if !wire.fired {
				t.Fatal("the fault was never injected")
			}
			first := alertUsers(r.notifications(t))
			if err := invokeWith(r.handler(nil, nil), event, "retry", 30*time.Second); err != nil {
				t.Fatalf("redelivery: %v", err)
			}
			r.checkRedelivered(t, want, first)
		})
	}
}

// checkRedelivered checks, after a delivery and its redelivery, that each of faultUsers is
// counted as want says and alerted once over both deliveries (first: the users alerted by
// the first one).
func (r *rig) checkRedelivered(t *testing.T, want map[string]int64, first []string) {
	t.Helper()
	if got := r.counts(t, faultUsers...); !maps.Equal(got, want) {
		t.Errorf("counts after redelivery = %v, want %v", got, want)
	}
	all := append(first, alertUsers(r.notifications(t))...)
	slices.Sort(all)
	if !slices.Equal(all, faultUsers) {
		t.Errorf("alerts over both deliveries for %q, want one for each of %q", all, faultUsers)
	}
}
