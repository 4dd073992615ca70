package eventbus_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/alert"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/eventbus"
)

// TestEntry: the event's detail is exactly the structured alert that sqs subscribers get.
func TestEntry(t *testing.T) {
	now := time.Date(2026, 3, 4, 10, 30, 0, 0, time.UTC)
	g := alert.Group{Rule: detect.UnauthorizedAccess, Window: now.Truncate(time.Hour), Key: "k", Aggregates: []aggregate.Aggregate{{
		Key: "a", Count: 2, FirstSeen: now, LastSeen: now,
		Source: aggregate.Source{Cluster: "prod", Owner: "111122223333", Region: "eu-west-1", LogGroup: "/aws/eks/prod/cluster"},
		Fields: detect.Fields{User: "mallory", SrcIPs: []string{"198.51.100.7"}},
	}}}
	a := alert.Build(g, alert.Options{Now: func() time.Time { return now }})
	first, err := alert.Render(a)
	if err != nil {
		t.Fatal(err)
	}
	update, err := alert.RenderEscalation(a, alert.Escalation{Threshold: 10, From: 2, To: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		m          alert.Message
		bus        string
		detailType string
	}{
		{first, "", eventbus.DetailTypeAlert},
		{update, "security", eventbus.DetailTypeUpdate},
	} {
		e, err := eventbus.Entry(tc.m, tc.bus)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]string
		if err := json.Unmarshal([]byte(tc.m.Message), &body); err != nil {
			t.Fatal(err)
		}
		if aws.ToString(e.Detail) != body["sqs"] {
			t.Errorf("detail is not the sqs body")
		}
		if aws.ToString(e.Source) != eventbus.Source || aws.ToString(e.DetailType) != tc.detailType || aws.ToString(e.EventBusName) != tc.bus {
			t.Errorf("source %q detail-type %q bus %q", aws.ToString(e.Source), aws.ToString(e.DetailType), aws.ToString(e.EventBusName))
		}
		if strings.Join(e.Resources, ",") != "arn:aws:eks:eu-west-1:111122223333:cluster/prod" || !aws.ToTime(e.Time).Equal(now) {
			t.Errorf("resources %v time %v", e.Resources, aws.ToTime(e.Time))
		}
	}
	if eventbus.DetailType(alert.KindReport) != eventbus.DetailTypeReport {
		t.Error("report detail-type")
	}
}
