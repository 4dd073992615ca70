package handler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
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
	"github.com/eks-unauthorized-access/detector/internal/suppress"
)

// TestMatchModesAndSuppressions runs the mixed sample delivery (an RBAC denial by mallory,
// a ResourceQuota admission 403 for the CI service account, allowed requests and junk)
// through the real pipeline, DynamoDB Local and moto with each match mode and with a
// suppression: only the expected users are stored and alerted, and suppressed matches are
// counted in the metrics but never stored.
func TestMatchModesAndSuppressions(t *testing.T) {
	event, err := os.ReadFile(filepath.Join("..", "..", "events", "cloudwatch-mixed-batch.json"))
	if err != nil {
		t.Fatal(err)
	}
	const ci, mallory, eve = "system:serviceaccount:ci:deployer", "mallory", "eve"
	// A second delivery: a create answered 403 whose reason a log pipeline dropped.
	noReason := delivery(t, []string{auditLine(t, eve, "203.0.113.50", time.Minute, map[string]any{
		"responseStatus": map[string]any{"metadata": map[string]any{}, "status": "Failure", "code": 403},
	})}, nil)
	tests := []struct {
		name       string
		mode       detect.Mode
		exprs      []string
		wantUsers  []string
		suppressed float64
	}{
		{"seed", detect.ModeSeed, nil, []string{mallory, ci}, 0},
		{"authz drops the admission 403", detect.ModeAuthz, nil, []string{mallory}, 0},
		{"broad adds the 403 create without a reason", detect.ModeBroad, nil, []string{eve, mallory, ci}, 0},
		{"seed with the CI service accounts suppressed", detect.ModeSeed,
			[]string{`user.startsWith("system:serviceaccount:ci:")`}, []string{mallory}, 1},
		{"suppression on a field that does not match", detect.ModeSeed,
			[]string{`objectRef.namespace == "nowhere"`}, []string{mallory, ci}, 0},
	}
	topics := make([]string, len(tests))
	for i := range tests {
		topics[i] = fmt.Sprintf("modes%d", i)
	}
	db, moto := localtest.DynamoDBForTest(t), localtest.MotoForTest(t, topics...)
	ctx := context.Background()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table := fmt.Sprintf("modes-%d", i)
			if err := db.CreateTable(ctx, table); err != nil {
				t.Fatal(err)
			}
			opts := pipeline.Options{Rule: detect.UnauthorizedAccess, Mode: tt.mode, GroupBy: aggregate.GroupByUser, Region: "eu-west-1"}
			if len(tt.exprs) > 0 {
				f, err := suppress.Compile(tt.exprs)
				if err != nil {
					t.Fatal(err)
				}
				opts.Suppressor = f
			}
			var emf bytes.Buffer
			h := handler.New(handler.Options{
				Processor: pipeline.New(opts),
				// The sample's events have fixed dates; DynamoDB Local expires items by the real clock.
				Store:      store.New(db.Client(), store.Options{Table: table, Retention: 3650 * 24 * time.Hour}),
				Publisher:  notify.New(moto.SNSClient(), moto.TopicARN(topics[i])),
				Rule:       detect.UnauthorizedAccess,
				Alert:      alert.Options{Region: "eu-west-1"},
				ClaimLease: time.Minute,
				Logger:     slog.New(slog.DiscardHandler),
				Metrics:    &emf,
			})
			for _, ev := range [][]byte{event, noReason} {
				if _, err := h.Invoke(ctx, ev); err != nil {
					t.Fatal(err)
				}
			}

			ns, err := moto.Drain(ctx, topics[i])
			if err != nil {
				t.Fatal(err)
			}
			var alerted []string
			for _, n := range ns {
				alerted = append(alerted, n.MessageAttributes["user"].Value)
			}
			want := slices.Sorted(slices.Values(tt.wantUsers))
			if slices.Sort(alerted); !slices.Equal(alerted, want) {
				t.Errorf("alerts for %q, want %q", alerted, want)
			}

			out, err := db.Client().Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(table)})
			if err != nil {
				t.Fatal(err)
			}
			stored := map[string]bool{}
			for _, item := range out.Items {
				if u, ok := item["user"].(*types.AttributeValueMemberS); ok {
					stored[u.Value] = true
				}
			}
			if got := slices.Sorted(func(yield func(string) bool) {
				for u := range stored {
					if !yield(u) {
						return
					}
				}
			}); !slices.Equal(got, want) {
				t.Errorf("aggregates stored for %q, want %q", got, want)
			}

			// The first delivery's EMF record (the second carries only eve's line).
			var rec map[string]any
			if err := json.NewDecoder(&emf).Decode(&rec); err != nil {
				t.Fatalf("EMF record %q: %v", emf.String(), err)
			}
			if rec["Suppressed"] != tt.suppressed {
				t.Errorf("Suppressed metric = %v, want %v", rec["Suppressed"], tt.suppressed)
			}
			if want := float64(len(slices.DeleteFunc(slices.Clone(want), func(u string) bool { return u == eve }))); rec["AlertsPublished"] != want {
				t.Errorf("AlertsPublished metric of the first delivery = %v, want %v", rec["AlertsPublished"], want)
			}
		})
	}
}
