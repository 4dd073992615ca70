package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eks-unauthorized-access/detector/infra/local"
	"github.com/eks-unauthorized-access/detector/infra/local/localtest"
	"github.com/eks-unauthorized-access/detector/internal/alert"
)

const (
	table = "e2e-unauthorized-access"
	topic = "e2e-alerts"
)

// wantAlert is what the alert of one window of events/cloudwatch-iam-user.json must say:
// alice is denied four creates on prod-cluster, two in each of two hourly windows.
type wantAlert struct {
	attempts   int64
	aggregates int
	sourceIPs  []string
}

var wantAlerts = map[string]wantAlert{
	"2026-11-24T08:00:00Z": {attempts: 2, aggregates: 2, sourceIPs: []string{"10.0.12.4", "198.51.100.23", "203.0.113.9"}},
	"2026-11-24T09:00:00Z": {attempts: 2, aggregates: 2, sourceIPs: []string{"198.51.100.23"}},
}

// TestEndToEnd delivers a sample event through the emulator twice, then a bad batch, and
// checks what a subscriber of the topic receives and what DynamoDB holds after each.
func TestEndToEnd(t *testing.T) {
	stack := localtest.FunctionStackForTest(t, table, topic)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	event := readEvent(t, "cloudwatch-iam-user.json")

	t.Run("first delivery publishes one alert per window", func(t *testing.T) {
		invokeOK(ctx, t, stack, event)
		notes, err := stack.Moto.Drain(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		if len(notes) != len(wantAlerts) {
			t.Fatalf("got %d alerts, want %d: %+v", len(notes), len(wantAlerts), notes)
		}
		seen := map[string]bool{}
		for _, n := range notes {
			window := checkAlert(t, n)
			if seen[window] {
				t.Errorf("two alerts for window %s", window)
			}
			seen[window] = true
		}
		if got := totalCount(ctx, t, stack); got != 4 {
			t.Errorf("DynamoDB counts sum to %d, want 4 (one per denied create)", got)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	counts := aggregateCounts(ctx, t, stack)

	t.Run("redelivery publishes nothing and counts nothing twice", func(t *testing.T) {
		invokeOK(ctx, t, stack, event)
		notes, err := stack.Moto.Drain(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		if len(notes) != 0 {
			t.Errorf("redelivery published %d alerts, want 0: %+v", len(notes), notes)
		}
		assertCounts(t, aggregateCounts(ctx, t, stack), counts)
	})

	t.Run("bad batch returns an error and publishes nothing", func(t *testing.T) {
		other := readEvent(t, "cloudwatch-anonymous.json")
		// The same delivery with its compressed data cut in half: a corrupt batch.
		var doc struct {
			AWSLogs struct {
				Data string `json:"data"`
			} `json:"awslogs"`
		}
		if err := json.Unmarshal(other, &doc); err != nil {
			t.Fatal(err)
		}
		data := doc.AWSLogs.Data
		bad := []byte(`{"awslogs":{"data":"` + data[:len(data)/2/4*4] + `"}}`)

		resp, err := stack.Emulator.Invoke(ctx, bad)
		var fe *local.FunctionError
		if !errors.As(err, &fe) {
			t.Fatalf("Invoke(bad batch) = %s, %v; want a function error\n%s", resp, err, stack.Emulator.Logs())
		}
		if fe.Message == "" || fe.Type == "" {
			t.Errorf("function error %+v: want errorMessage and errorType", fe)
		}
		notes, err := stack.Moto.Drain(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		if len(notes) != 0 {
			t.Errorf("bad batch published %d alerts, want 0", len(notes))
		}
		assertCounts(t, aggregateCounts(ctx, t, stack), counts)

		// The function still works after a failed invocation.
		invokeOK(ctx, t, stack, other)
		notes, err = stack.Moto.Drain(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		if len(notes) != 1 || notes[0].MessageAttributes["user"].Value != "system:anonymous" {
			t.Errorf("good batch after the bad one: got %+v, want one alert for system:anonymous", notes)
		}
	})
}

func readEvent(t *testing.T, name string) []byte {
	t.Helper()
	root, err := local.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func invokeOK(ctx context.Context, t *testing.T, stack *local.FunctionStack, event []byte) {
	t.Helper()
	resp, err := stack.Emulator.Invoke(ctx, event)
	if err != nil {
		t.Fatalf("Invoke: %v\nemulator output:\n%s", err, stack.Emulator.Logs())
	}
	if string(bytes.TrimSpace(resp)) != "null" {
		t.Fatalf("Invoke returned %s, want null", resp)
	}
}

// checkAlert checks one notification as an SQS subscriber receives it and returns the
// start of its window.
func checkAlert(t *testing.T, n local.Notification) string {
	t.Helper()
	if n.Type != "Notification" || n.TopicARN == "" || n.MessageID == "" {
		t.Errorf("SNS envelope: %+v", n)
	}
	const wantSubject = "[MEDIUM] prod-cluster: Unauthorized access to Kubernetes from user alice"
	if n.Subject != wantSubject {
		t.Errorf("Subject = %q, want %q", n.Subject, wantSubject)
	}
	for name, want := range map[string]string{"user": "alice", "cluster": "prod-cluster", "severity": "medium", "userKind": "iam", "account": "111122223333"} {
		if got := n.MessageAttributes[name].Value; got != want {
			t.Errorf("attribute %s = %q, want %q", name, got, want)
		}
	}

	// The sqs entry is the structured alert: it must decode into alert.Alert with no
	// field unknown to it.
	dec := json.NewDecoder(strings.NewReader(n.Message))
	dec.DisallowUnknownFields()
	var a alert.Alert
	if err := dec.Decode(&a); err != nil {
		t.Fatalf("queue message is not the structured alert: %v\n%s", err, n.Message)
	}
	window := a.Window.Start.Format(time.RFC3339)
	want, ok := wantAlerts[window]
	if !ok {
		t.Fatalf("alert for unexpected window %s", window)
	}
	if a.SchemaVersion != alert.SchemaVersion || a.ID == "" {
		t.Errorf("schemaVersion %q, id %q", a.SchemaVersion, a.ID)
	}
	if a.RiskObject.Value != "alice" || a.RiskObject.Field != "user" {
		t.Errorf("riskObject = %+v, want user alice", a.RiskObject)
	}
	wantSource := alert.Source{Cluster: "prod-cluster", Account: "111122223333", Region: local.Region, LogGroup: "/aws/eks/prod-cluster/cluster"}
	if a.Source.Cluster != wantSource.Cluster || a.Source.Account != wantSource.Account ||
		a.Source.Region != wantSource.Region || a.Source.LogGroup != wantSource.LogGroup {
		t.Errorf("source = %+v, want %+v", a.Source, wantSource)
	}
	if a.RiskScore != 49 || a.MITRE.TechniqueID != "T1204" || a.Severity != alert.SeverityMedium {
		t.Errorf("risk: score %d, MITRE %s, severity %s; want 49, T1204, medium", a.RiskScore, a.MITRE.TechniqueID, a.Severity)
	}
	if !a.Window.End.Equal(a.Window.Start.Add(time.Hour)) {
		t.Errorf("window %v to %v is not one hour", a.Window.Start, a.Window.End)
	}
	if a.Attempts != want.attempts || a.AggregatesTotal != want.aggregates || len(a.Aggregates) != want.aggregates {
		t.Errorf("window %s: attempts %d, aggregates %d (%d listed); want %d, %d", window, a.Attempts, a.AggregatesTotal, len(a.Aggregates), want.attempts, want.aggregates)
	}
	var ips []string
	for _, o := range a.ThreatObjects {
		ips = append(ips, o.Value)
	}
	if strings.Join(ips, ",") != strings.Join(want.sourceIPs, ",") {
		t.Errorf("window %s: threat objects %v, want %v", window, ips, want.sourceIPs)
	}
	for _, ag := range a.Aggregates {
		if ag.Fields.User != "alice" || !strings.EqualFold(ag.Fields.Verb, "create") || ag.Fields.Code != "403" || ag.Count < 1 {
			t.Errorf("aggregate %+v: want a counted 403 create by alice", ag)
		}
	}
	return window
}

// aggregateCounts returns the count of every aggregate item in the table, by key.
func aggregateCounts(ctx context.Context, t *testing.T, stack *local.FunctionStack) map[string]int64 {
	t.Helper()
	counts := map[string]int64{}
	p := dynamodb.NewScanPaginator(stack.DynamoDB.Client(), &dynamodb.ScanInput{TableName: aws.String(stack.Table)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("scan %s: %v", stack.Table, err)
		}
		for _, item := range page.Items {
			pk, _ := item["pk"].(*types.AttributeValueMemberS)
			sk, _ := item["sk"].(*types.AttributeValueMemberS)
			if pk == nil || sk == nil || !strings.HasPrefix(sk.Value, "agg#") {
				continue
			}
			c, _ := item["count"].(*types.AttributeValueMemberN)
			if c == nil {
				t.Fatalf("aggregate item %s %s has no count", pk.Value, sk.Value)
			}
			n, err := strconv.ParseInt(c.Value, 10, 64)
			if err != nil {
				t.Fatalf("aggregate item %s %s: count %q: %v", pk.Value, sk.Value, c.Value, err)
			}
			counts[pk.Value+" "+sk.Value] = n
		}
	}
	return counts
}

func totalCount(ctx context.Context, t *testing.T, stack *local.FunctionStack) int64 {
	t.Helper()
	var sum int64
	for _, n := range aggregateCounts(ctx, t, stack) {
		sum += n
	}
	return sum
}

func assertCounts(t *testing.T, got, want map[string]int64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d aggregate items, want %d", len(got), len(want))
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("count of %s = %d, want %d", k, got[k], n)
		}
	}
}
