package handler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eks-unauthorized-access/detector/infra/local/localtest"
	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/alert"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/handler"
	"github.com/eks-unauthorized-access/detector/internal/notify"
	"github.com/eks-unauthorized-access/detector/internal/pipeline"
	"github.com/eks-unauthorized-access/detector/internal/store"
)

// TestHandlerWithPipeline runs the project's sample CloudWatch Logs delivery (whose batch
// includes a line with a requestObject body) through the real pipeline, store and topic.
func TestHandlerWithPipeline(t *testing.T) {
	event, err := os.ReadFile(filepath.Join("..", "..", "events", "cloudwatch-mixed-batch.json"))
	if err != nil {
		t.Fatal(err)
	}
	db, moto := localtest.DynamoDBForTest(t), localtest.MotoForTest(t, "e2e")
	ctx := context.Background()
	if err := db.CreateTable(ctx, "detector"); err != nil {
		t.Fatal(err)
	}
	// The sample's events have fixed dates, and DynamoDB Local deletes expired items by the
	// real clock: a long retention keeps them for the test.
	var emf bytes.Buffer
	st := store.New(db.Client(), store.Options{Table: "detector", Retention: 3650 * 24 * time.Hour})
	h := handler.New(handler.Options{
		Processor:  pipeline.New(pipeline.Options{Rule: detect.UnauthorizedAccess, Mode: detect.ModeSeed, GroupBy: aggregate.GroupByUser, Region: "eu-west-1"}),
		Store:      st,
		Publisher:  notify.New(moto.SNSClient(), moto.TopicARN("e2e")),
		Rule:       detect.UnauthorizedAccess,
		Alert:      alert.Options{Region: "eu-west-1"},
		ClaimLease: time.Minute,
		Logger:     slog.New(slog.DiscardHandler),
		Metrics:    &emf,
	})
	for range 2 {
		if _, err := h.Invoke(ctx, event); err != nil {
			t.Fatal(err)
		}
	}
	alerts, err := moto.Drain(ctx, "e2e")
	if err != nil {
		t.Fatal(err)
	}
	if len(alerts) == 0 {
		t.Fatal("no alert published")
	}
	// One EMF record per invocation: the first publishes every alert, the redelivery none.
	var records []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(emf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("EMF line %q: %v", line, err)
		}
		records = append(records, rec)
	}
	if len(records) != 2 {
		t.Fatalf("%d EMF records, want 2", len(records))
	}
	if got := records[0]["AlertsPublished"]; got != float64(len(alerts)) {
		t.Errorf("first delivery AlertsPublished = %v, want %d", got, len(alerts))
	}
	if got := records[1]["AlertsPublished"]; got != float64(0) {
		t.Errorf("redelivery AlertsPublished = %v, want 0", got)
	}
	if got, _ := records[1]["DuplicateDeliveries"].(float64); got < 1 {
		t.Errorf("redelivery DuplicateDeliveries = %v, want ≥ 1", records[1]["DuplicateDeliveries"])
	}
	if got, _ := records[0]["LogEventsReceived"].(float64); got == 0 {
		t.Errorf("LogEventsReceived = %v, want > 0", records[0]["LogEventsReceived"])
	}
	seen := map[string]int{}
	for _, a := range alerts {
		seen[a.MessageAttributes["user"].Value]++
	}
	for user, n := range seen {
		if n != 1 {
			t.Errorf("%d alerts for %s over two deliveries, want 1", n, user)
		}
	}
	out, err := db.Client().Scan(ctx, &dynamodb.ScanInput{TableName: aws.String("detector")})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Items) == 0 {
		t.Fatal("no items stored")
	}
	for _, item := range out.Items {
		if _, ok := item["expiresAt"].(*types.AttributeValueMemberN); !ok {
			t.Errorf("item %v has no numeric expiresAt", item["sk"])
		}
		for name, v := range item {
			if s, ok := v.(*types.AttributeValueMemberS); ok && strings.Contains(s.Value, "QUJDRA") {
				t.Errorf("item %v attribute %s holds a request body", item["sk"], name)
			}
			if strings.Contains(strings.ToLower(name), "object") {
				t.Errorf("item %v has attribute %s", item["sk"], name)
			}
		}
	}
}
