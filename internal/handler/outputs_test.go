package handler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/securityhub"
	shtypes "github.com/aws/aws-sdk-go-v2/service/securityhub/types"

	"github.com/eks-unauthorized-access/detector/infra/local"
	"github.com/eks-unauthorized-access/detector/infra/local/localtest"
	"github.com/eks-unauthorized-access/detector/internal/aggregate/aggregatetest"
	"github.com/eks-unauthorized-access/detector/internal/alert"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/eventbus"
	"github.com/eks-unauthorized-access/detector/internal/finding"
	"github.com/eks-unauthorized-access/detector/internal/handler"
	"github.com/eks-unauthorized-access/detector/internal/notify"
	"github.com/eks-unauthorized-access/detector/internal/pipeline"
	"github.com/eks-unauthorized-access/detector/internal/store"
)

// outputsTarget is the Security Hub the tests import into: moto's account and region.
var outputsTarget = finding.Target{Region: local.Region, Account: local.AccountID}

// outputFaults are the proxies between the outputs and moto (nil: none).
type outputFaults struct{ securityHub, eventBridge *faultyProxy }

// outputsHandler is the rig's handler with escalations at escalateAt and both outputs on,
// the event bus being moto's default bus.
func (r *rig) outputsHandler(f outputFaults, escalateAt ...int64) *handler.Handler {
	st := store.New(r.client(nil), store.Options{Table: r.table})
	sh := r.moto.SecurityHubClient(func(o *securityhub.Options) {
		if f.securityHub != nil {
			o.HTTPClient = &http.Client{Transport: f.securityHub}
		}
	})
	eb := r.moto.EventBridgeClient(func(o *eventbridge.Options) {
		if f.eventBridge != nil {
			o.HTTPClient = &http.Client{Transport: f.eventBridge}
		}
	})
	return handler.New(handler.Options{
		Processor:    pipeline.New(r.opts),
		Store:        st,
		Lifecycle:    st,
		EscalateAt:   escalateAt,
		Publisher:    notify.New(r.moto.SNSClient(), r.moto.TopicARN(r.topic)),
		Outputs:      []handler.Output{finding.New(sh, outputsTarget), eventbus.New(eb, "")},
		OutputClaims: st,
		Rule:         detect.UnauthorizedAccess,
		Alert:        alert.Options{Region: local.Region},
		ClaimLease:   time.Minute,
		Concurrency:  1,
		Logger:       handler.NewLogger(r.log, slog.LevelInfo),
	})
}

// findings returns the findings in moto's Security Hub of the given users, by user.
func findings(t *testing.T, moto *local.Moto, users ...string) map[string][]shtypes.AwsSecurityFinding {
	t.Helper()
	out := map[string][]shtypes.AwsSecurityFinding{}
	p := securityhub.NewGetFindingsPaginator(moto.SecurityHubClient(), &securityhub.GetFindingsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range page.Findings {
			u := f.ProductFields["user"]
			for _, want := range users {
				if u == want {
					out[u] = append(out[u], f)
				}
			}
		}
	}
	return out
}

// event is what an SQS target of an EventBridge rule receives.
type event struct {
	Source     string      `json:"source"`
	DetailType string      `json:"detail-type"`
	Resources  []string    `json:"resources"`
	Detail     alert.Alert `json:"detail"`
}

func drainEvents(t *testing.T, moto *local.Moto, rule string) []event {
	t.Helper()
	raw, err := moto.DrainEvents(context.Background(), rule)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]event, len(raw))
	for i, b := range raw {
		if err := json.Unmarshal(b, &out[i]); err != nil {
			t.Fatalf("event %s: %v", b, err)
		}
	}
	return out
}

// lines returns n forbidden creates of user from ip, at distinct times from offset on.
func lines(t *testing.T, user, ip string, offset time.Duration, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = auditLine(t, user, ip, offset+time.Duration(i)*time.Second, nil)
	}
	return out
}

// TestOutputsOncePerGroup runs deliveries and their redeliveries with both outputs on: each
// alert group gets one finding and each alert one event whatever the redeliveries, and an
// escalation updates the group's finding (same Id, more attempts, workflow untouched)
// and puts one update event.
func TestOutputsOncePerGroup(t *testing.T) {
	db, moto := localtest.DynamoDBForTest(t), localtest.MotoForTest(t, "outputs")
	r := newRig(t, db.Endpoint, moto, "outputs")
	if err := moto.RouteEvents(context.Background(), "", "outputs-all", `{"source":["`+eventbus.Source+`"]}`); err != nil {
		t.Fatal(err)
	}
	h := r.outputsHandler(outputFaults{}, 3)
	role := map[string]any{"user": map[string]any{"username": "ada", "uid": "aws-iam-authenticator:111122223333:AROAEXAMPLE",
		"groups": []string{"system:authenticated"}, "extra": map[string]any{
			"canonicalArn": []string{"arn:aws:iam::111122223333:role/deployer"}, "sessionName": []string{"ada-laptop"},
			"accessKeyId": []string{"ASIAEXAMPLE"}}}}
	first := delivery(t, []string{auditLine(t, "ada", "198.51.100.7", time.Minute, role), auditLine(t, "bo", "2001:db8::5", 2*time.Minute, nil)}, aggregatetest.EventIDs("a", 2))
	for i := range 2 { // a delivery and its redelivery
		if err := invokeWith(h, first, fmt.Sprint("first-", i), 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	fs := findings(t, moto, "ada", "bo")
	if len(fs["ada"]) != 1 || len(fs["bo"]) != 1 {
		t.Fatalf("findings per user = ada %d, bo %d; want 1 each", len(fs["ada"]), len(fs["bo"]))
	}
	events := drainEvents(t, moto, "outputs-all")
	if len(events) != 2 {
		t.Fatalf("%d events after a delivery and its redelivery, want 2", len(events))
	}
	if n := len(r.notifications(t)); n != 2 {
		t.Fatalf("%d SNS alerts, want 2", n)
	}
	ada := fs["ada"][0]
	for _, e := range events {
		if e.Source != eventbus.Source || e.DetailType != eventbus.DetailTypeAlert || e.Detail.Kind != alert.KindFirst {
			t.Errorf("event source %q detail-type %q kind %q", e.Source, e.DetailType, e.Detail.Kind)
		}
		if want := []string{"arn:aws:eks:" + local.Region + ":111122223333:cluster/prod"}; strings.Join(e.Resources, ",") != want[0] {
			t.Errorf("event resources %v, want %v", e.Resources, want)
		}
		if e.Detail.RiskObject.Value == "ada" && finding.IDPrefix+e.Detail.ID != aws.ToString(ada.Id) {
			t.Errorf("event alert id %s, finding id %s", e.Detail.ID, aws.ToString(ada.Id))
		}
	}
	if got := aws.ToString(ada.Network.SourceIpV4); got != "198.51.100.7" {
		t.Errorf("finding source IPv4 %q", got)
	}
	if got := aws.ToString(fs["bo"][0].Network.SourceIpV6); got != "2001:db8::5" {
		t.Errorf("finding source IPv6 %q", got)
	}
	if ada.Workflow == nil || ada.Workflow.Status != shtypes.WorkflowStatusNew || ada.ProductFields["attempts"] != "1" {
		t.Errorf("first finding: workflow %+v attempts %s", ada.Workflow, ada.ProductFields["attempts"])
	}
	if got := aws.ToString(ada.Resources[0].Id); got != "arn:aws:eks:"+local.Region+":111122223333:cluster/prod" || aws.ToString(ada.Resources[0].Type) != "AwsEksCluster" {
		t.Errorf("finding resource %s %s", aws.ToString(ada.Resources[0].Type), got)
	}
	// The IAM role behind ada, from user.extra; bo's requests carried no identity.
	if len(ada.Resources) != 2 || aws.ToString(ada.Resources[1].Type) != "AwsIamRole" ||
		aws.ToString(ada.Resources[1].Id) != "arn:aws:iam::111122223333:role/deployer" || ada.ProductFields["iamSessionName"] != "ada-laptop" {
		t.Errorf("finding resources %+v, product fields %v: want the IAM role too", ada.Resources, ada.ProductFields)
	}
	if len(fs["bo"][0].Resources) != 1 {
		t.Errorf("bo's finding has %d resources, want the cluster only", len(fs["bo"][0].Resources))
	}

	// Three more attempts of ada cross the threshold 3: one update, delivered twice.
	more := delivery(t, lines(t, "ada", "203.0.113.9", 10*time.Minute, 3), aggregatetest.EventIDs("b", 3))
	for i := range 2 {
		if err := invokeWith(h, more, fmt.Sprint("more-", i), 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	fs = findings(t, moto, "ada")
	if len(fs["ada"]) != 1 {
		t.Fatalf("%d findings for ada after the escalation, want the same one", len(fs["ada"]))
	}
	up := fs["ada"][0]
	if aws.ToString(up.Id) != aws.ToString(ada.Id) || up.ProductFields["attempts"] != "4" || up.ProductFields["alertKind"] != string(alert.KindEscalation) {
		t.Errorf("updated finding %s: attempts %s kind %s", aws.ToString(up.Id), up.ProductFields["attempts"], up.ProductFields["alertKind"])
	}
	if up.Workflow == nil || up.Workflow.Status != shtypes.WorkflowStatusNew {
		t.Errorf("the update changed the workflow: %+v", up.Workflow)
	}
	events = drainEvents(t, moto, "outputs-all")
	if len(events) != 1 || events[0].DetailType != eventbus.DetailTypeUpdate || events[0].Detail.Escalation == nil ||
		finding.IDPrefix+events[0].Detail.Escalation.FirstAlertID != aws.ToString(ada.Id) {
		t.Fatalf("events after the escalation: %+v, want one update of ada's alert", events)
	}
}

// isPutEvents and isImport pick the outputs' requests for a faulty proxy.
func isPutEvents(op string, _ []byte) bool { return op == "PutEvents" }
func isImport(_ string, body []byte) bool  { return strings.Contains(string(body), `"Findings"`) }

// TestOutputAmbiguousAnswers puts a faulty proxy between an output and moto. Whatever the
// fault, the delivery and Lambda's retry leave one SNS alert, one finding, and one event
// per alert, plus, only when the put may have been applied, one flagged copy of the event
// with the same alert id.
func TestOutputAmbiguousAnswers(t *testing.T) {
	db, moto := localtest.DynamoDBForTest(t), localtest.MotoForTest(t, "outamb")
	for i, tc := range []struct {
		name        string
		faults      outputFaults
		firstFails  bool
		wantFlagged int
	}{
		{"put applied, answered 500", outputFaults{eventBridge: &faultyProxy{pick: isPutEvents, f: applyThen500, times: 1, json: true}}, true, 1},
		{"put applied, connection reset", outputFaults{eventBridge: &faultyProxy{pick: isPutEvents, f: applyThenReset, times: 1, json: true}}, true, 1},
		{"put throttled", outputFaults{eventBridge: &faultyProxy{pick: isPutEvents, f: throttle, times: 2, json: true}}, false, 0},
		{"import applied, answered 500 past the SDK's retries", outputFaults{securityHub: &faultyProxy{pick: isImport, f: applyThen500, times: 5, json: true}}, true, 0},
		{"import applied, connection reset", outputFaults{securityHub: &faultyProxy{pick: isImport, f: applyThenReset, times: 5, json: true}}, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, db.Endpoint, moto, "outamb")
			rule := fmt.Sprint("outamb-", i)
			if err := moto.RouteEvents(context.Background(), "", rule, `{"source":["`+eventbus.Source+`"]}`); err != nil {
				t.Fatal(err)
			}
			user := fmt.Sprint("amb", i)
			event := delivery(t, lines(t, user, "198.51.100.8", time.Minute, 1), aggregatetest.EventIDs(user, 1))
			err := invokeWith(r.outputsHandler(tc.faults), event, "first", 30*time.Second)
			if (err != nil) != tc.firstFails {
				t.Fatalf("first delivery: error %v, want failure %v", err, tc.firstFails)
			}
			for _, p := range []*faultyProxy{tc.faults.eventBridge, tc.faults.securityHub} {
				if p != nil && p.hits == 0 {
					t.Fatal("the fault was never injected")
				}
			}
			if err := invokeWith(r.outputsHandler(outputFaults{}), event, "retry", 30*time.Second); err != nil {
				t.Fatalf("redelivery: %v", err)
			}
			if got := r.received(t); len(got) != 1 || got[0].flagged {
				t.Errorf("SNS alerts %+v, want one unflagged: an output's failure must not repeat it", got)
			}
			if fs := findings(t, moto, user); len(fs[user]) != 1 {
				t.Errorf("%d findings, want 1", len(fs[user]))
			}
			events := drainEvents(t, moto, rule)
			plain, flagged := 0, 0
			for _, e := range events {
				if e.Detail.PossibleDuplicate {
					flagged++
				} else {
					plain++
				}
				if e.Detail.ID != events[0].Detail.ID {
					t.Errorf("events with ids %s and %s", events[0].Detail.ID, e.Detail.ID)
				}
			}
			if plain != 1 || flagged != tc.wantFlagged {
				t.Errorf("%d plain and %d flagged events, want 1 and %d", plain, flagged, tc.wantFlagged)
			}
		})
	}
}
