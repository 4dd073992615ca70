package handler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/eks-unauthorized-access/detector/infra/local"
	"github.com/eks-unauthorized-access/detector/infra/local/localtest"
	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/aggregate/aggregatetest"
	"github.com/eks-unauthorized-access/detector/internal/alert"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/handler"
	"github.com/eks-unauthorized-access/detector/internal/notify"
	"github.com/eks-unauthorized-access/detector/internal/pipeline"
	"github.com/eks-unauthorized-access/detector/internal/store"
)

// window is the current hour: DynamoDB Local expires items by the real clock.
var window = time.Now().UTC().Truncate(time.Hour)

// deliveries maps a raw event to the pipeline result it stands for, so each test
// controls exactly which aggregates and event ids a delivery carries.
type deliveries map[string]pipeline.Result

func (d deliveries) Process(event []byte) (pipeline.Result, error) {
	r, ok := d[string(event)]
	if !ok {
		return pipeline.Result{}, fmt.Errorf("unknown test event %q", event)
	}
	return r, nil
}

type env struct {
	db     *local.DynamoDB
	moto   *local.Moto
	tables atomic.Int64
}

// fixture is one test's table, topic and handler parts.
type fixture struct {
	env   *env
	table string
	topic string
	store *store.Store
	log   *bytes.Buffer
}

func (e *env) fixture(t *testing.T, topic string) *fixture {
	t.Helper()
	f := &fixture{env: e, table: fmt.Sprintf("detector-%d", e.tables.Add(1)), topic: topic, log: &bytes.Buffer{}}
	if err := e.db.CreateTable(context.Background(), f.table); err != nil {
		t.Fatal(err)
	}
	f.store = store.New(e.db.Client(), store.Options{Table: f.table})
	if _, err := e.moto.Drain(context.Background(), topic); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) handler(proc handler.Processor, st handler.Store, pub handler.Publisher) *handler.Handler {
	if st == nil {
		st = f.store
	}
	if pub == nil {
		pub = notify.New(f.env.moto.SNSClient(), f.env.moto.TopicARN(f.topic))
	}
	return handler.New(handler.Options{
		Processor:   proc,
		Store:       st,
		Publisher:   pub,
		Rule:        detect.UnauthorizedAccess,
		Alert:       alert.Options{Region: "eu-west-1"},
		ClaimLease:  time.Minute,
		Concurrency: 4,
		Logger:      handler.NewLogger(f.log, slog.LevelInfo),
	})
}

// alerts drains the topic's queue and returns the user attribute of each alert, sorted.
func (f *fixture) alerts(t *testing.T) []string {
	t.Helper()
	ns, err := f.env.moto.Drain(context.Background(), f.topic)
	if err != nil {
		t.Fatal(err)
	}
	var users []string
	for _, n := range ns {
		users = append(users, n.MessageAttributes["user"].Value)
	}
	sort.Strings(users)
	return users
}

func (f *fixture) counts(t *testing.T, user string) map[string]int64 {
	t.Helper()
	aggs, err := f.store.Aggregates(context.Background(), store.GroupKey{Rule: detect.UnauthorizedAccess.ID, Window: window, Group: user})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int64{}
	for _, a := range aggs {
		m[a.Key] = a.Count
	}
	return m
}

func invoke(t *testing.T, h *handler.Handler, event string) error {
	t.Helper()
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "req-" + event})
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := h.Invoke(ctx, []byte(event))
	return err
}

// closedEndpoint returns a loopback URL where nothing listens.
func closedEndpoint(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "http://" + l.Addr().String()
}

func TestHandler(t *testing.T) {
	topics := []string{"first", "concurrent", "dynamodown", "snsfail", "logline"}
	e := &env{db: localtest.DynamoDBForTest(t), moto: localtest.MotoForTest(t, topics...)}

	batch := pipeline.Result{
		Aggregates: []aggregate.Aggregate{aggregatetest.Denied(window, "alice", "k1", "e1", "e2"), aggregatetest.Denied(window, "alice", "k2", "e3"), aggregatetest.Denied(window, "bob", "k3", "e4")},
		Stats:      pipeline.Stats{Payloads: 1, LogEvents: 6, Matches: 4},
	}

	t.Run("first delivery alerts once per group, redelivery changes nothing", func(t *testing.T) {
		f := e.fixture(t, "first")
		h := f.handler(deliveries{"b1": batch}, nil, nil)
		if err := invoke(t, h, "b1"); err != nil {
			t.Fatal(err)
		}
		if got, want := f.counts(t, "alice"), map[string]int64{"k1": 2, "k2": 1}; !maps.Equal(got, want) {
			t.Errorf("alice counts = %v, want %v", got, want)
		}
		if got, want := f.alerts(t), []string{"alice", "bob"}; !slices.Equal(got, want) {
			t.Errorf("alerts for %v, want %v", got, want)
		}
		if err := invoke(t, h, "b1"); err != nil {
			t.Fatal(err)
		}
		if got, want := f.counts(t, "alice"), map[string]int64{"k1": 2, "k2": 1}; !maps.Equal(got, want) {
			t.Errorf("alice counts after redelivery = %v, want %v", got, want)
		}
		if got := f.alerts(t); len(got) != 0 {
			t.Errorf("redelivery published %v", got)
		}
	})

	t.Run("concurrent overlapping invocations", func(t *testing.T) {
		f := e.fixture(t, "concurrent")
		d := deliveries{}
		users := []string{"alice", "bob", "carol"}
		for i := range 10 {
			var aggs []aggregate.Aggregate
			for _, u := range users {
				// Invocation i carries events i..i+4 of each user: neighbours overlap.
				var ids []string
				for j := i; j < i+5; j++ {
					ids = append(ids, fmt.Sprintf("%s-%03d", u, j))
				}
				aggs = append(aggs, aggregatetest.Denied(window, u, u+"-k", ids...))
			}
			d[fmt.Sprint(i)] = pipeline.Result{Aggregates: aggs}
		}
		h := f.handler(d, nil, nil)
		var wg sync.WaitGroup
		errs := make([]error, 10)
		for i := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = invoke(t, h, fmt.Sprint(i))
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		for _, u := range users {
			if got := f.counts(t, u)[u+"-k"]; got != 14 { // ids 0..13
				t.Errorf("%s count = %d, want 14", u, got)
			}
		}
		if got := f.alerts(t); !slices.Equal(got, users) {
			t.Errorf("alerts for %v, want one each for %v", got, users)
		}
	})

	t.Run("DynamoDB unreachable: error, nothing published", func(t *testing.T) {
		f := e.fixture(t, "dynamodown")
		down := dynamodb.NewFromConfig(local.AWSConfig(), func(o *dynamodb.Options) {
			o.BaseEndpoint = aws.String(closedEndpoint(t))
			o.RetryMaxAttempts = 1
		})
		h := f.handler(deliveries{"b1": batch}, store.New(down, store.Options{Table: f.table}), nil)
		if err := invoke(t, h, "b1"); err == nil {
			t.Fatal("Invoke succeeded with DynamoDB down")
		}
		if got := f.alerts(t); len(got) != 0 {
			t.Errorf("published %v with DynamoDB down", got)
		}
	})

	t.Run("SNS failing: error, then the next delivery publishes once", func(t *testing.T) {
		f := e.fixture(t, "snsfail")
		for name, pub := range map[string]handler.Publisher{
			"missing topic": notify.New(e.moto.SNSClient(), e.moto.TopicARN("no-such-topic")),
			"SNS down": notify.New(sns.NewFromConfig(local.AWSConfig(), func(o *sns.Options) {
				o.BaseEndpoint = aws.String(closedEndpoint(t))
				o.RetryMaxAttempts = 1
			}), e.moto.TopicARN("snsfail")),
		} {
			if err := invoke(t, f.handler(deliveries{"b1": batch}, nil, pub), "b1"); err == nil {
				t.Fatalf("%s: Invoke succeeded", name)
			}
		}
		h := f.handler(deliveries{"b1": batch}, nil, nil)
		if err := invoke(t, h, "b1"); err != nil {
			t.Fatal(err)
		}
		if got, want := f.alerts(t), []string{"alice", "bob"}; !slices.Equal(got, want) {
			t.Errorf("alerts for %v, want %v", got, want)
		}
		if err := invoke(t, h, "b1"); err != nil {
			t.Fatal(err)
		}
		if got := f.alerts(t); len(got) != 0 {
			t.Errorf("third delivery published %v", got)
		}
		if got, want := f.counts(t, "alice"), map[string]int64{"k1": 2, "k2": 1}; !maps.Equal(got, want) {
			t.Errorf("alice counts = %v, want %v", got, want)
		}
	})

	t.Run("one summary line with counts only", func(t *testing.T) {
		f := e.fixture(t, "logline")
		secret := aggregatetest.Denied(window, "alice", "k9", "e9")
		secret.Fields.Message = "requestObject: s3cr3t" // a value that must not be logged
		h := f.handler(deliveries{"b1": pipeline.Result{
			Aggregates: []aggregate.Aggregate{secret},
			Stats:      pipeline.Stats{Payloads: 1, LogEvents: 3, Matches: 1, Skipped: map[pipeline.SkipReason]int{pipeline.SkipTruncated: 2}},
		}}, nil, nil)
		if err := invoke(t, h, "b1"); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(f.log.String()), "\n")
		if len(lines) != 1 {
			t.Fatalf("%d log lines, want 1:\n%s", len(lines), f.log)
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
			t.Fatal(err)
		}
		for key, want := range map[string]any{
			"message": "invocation", "requestId": "req-b1", "level": "INFO",
			"logEvents": 3.0, "matches": 1.0, "skipped": 2.0, "skipped_truncated": 2.0,
			"aggregates": 1.0, "alertGroups": 1.0, "alertsPublished": 1.0,
		} {
			if rec[key] != want {
				t.Errorf("log %s = %v, want %v", key, rec[key], want)
			}
		}
		if strings.Contains(lines[0], "s3cr3t") {
			t.Errorf("log line carries event contents: %s", lines[0])
		}
		if got := f.alerts(t); len(got) != 1 {
			t.Errorf("alerts %v, want 1", got)
		}
	})
}
