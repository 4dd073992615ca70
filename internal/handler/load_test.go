package handler_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eks-unauthorized-access/detector/infra/local/localtest"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/handler"
	"github.com/eks-unauthorized-access/detector/internal/notify"
	"github.com/eks-unauthorized-access/detector/internal/pipeline"
	"github.com/eks-unauthorized-access/detector/internal/store"
)

// TestConcurrentLoad runs 50 concurrent invocations of one handler against DynamoDB Local
// and moto. The deliveries overlap: 100 log events (5 users × 20 request times, so 20
// aggregates of 5 events each) are spread over the invocations, each carrying 10
// consecutive events, so every event arrives in five deliveries. The counts must be exact
// (each event once), and there must be exactly one alert per user. The throughput is
// logged, not asserted.
func TestConcurrentLoad(t *testing.T) {
	db, moto := localtest.DynamoDBForTest(t), localtest.MotoForTest(t, "load")
	r := newRig(t, db.Endpoint, moto, "load")
	const (
		invocations = 50
		pool        = 100
		perDelivery = 10
		users       = 5
	)
	lines := make([]string, pool)
	ids := make([]string, pool)
	want := map[string]int64{}
	var userNames []string
	for k := range pool {
		user := fmt.Sprintf("load-user-%d", k%users)
		offset := time.Duration(k%20) * time.Second
		lines[k] = auditLine(t, user, "192.0.2.50", offset, nil)
		ids[k] = fmt.Sprintf("%056d", 1_000_000+k)
		want[user+" "+hourNow.Add(offset).Format("2006-01-02T15:04:05.000000Z")]++
	}
	for u := range users {
		userNames = append(userNames, fmt.Sprintf("load-user-%d", u))
	}
	events := make([][]byte, invocations)
	for i := range invocations {
		var ls, is []string
		for j := range perDelivery {
			k := (i*2 + j) % pool
			ls, is = append(ls, lines[k]), append(is, ids[k])
		}
		events[i] = delivery(t, ls, is)
	}
	h := r.handler(nil, nil)
	errs := make([]error, invocations)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range invocations {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = invokeWith(h, events[i], fmt.Sprint("load-", i), time.Minute)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	for i, err := range errs {
		if err != nil {
			t.Errorf("invocation %d: %v", i, err)
		}
	}
	if got := r.counts(t, userNames...); !maps.Equal(got, want) {
		t.Errorf("counts = %v, want %v", got, want)
	}
	var total int64
	for _, n := range r.counts(t, userNames...) {
		total += n
	}
	if total != pool {
		t.Errorf("total count %d, want %d", total, pool)
	}
	if got := alertUsers(r.notifications(t)); !slices.Equal(got, userNames) {
		t.Errorf("alerts for %q, want one for each of %q", got, userNames)
	}
	var published float64
	for _, s := range r.summaries(t) {
		published += s["alertsPublished"].(float64)
	}
	if published != users {
		t.Errorf("summaries report %v alerts published, want %d", published, users)
	}
	t.Logf("load: %d concurrent invocations, %d log events (%d distinct, %d aggregates, %d alert groups) in %v: %.0f invocations/s, %.0f log events/s",
		invocations, invocations*perDelivery, pool, len(want), users, elapsed.Round(time.Millisecond),
		float64(invocations)/elapsed.Seconds(), float64(invocations*perDelivery)/elapsed.Seconds())
}

// TestSecretsNeverLeak feeds events whose bodies and user.extra carry recognisable secrets
// and checks that none reaches the log, the metrics, the published alerts (the whole SNS
// envelope a subscriber receives) or any DynamoDB item. Of user.extra only the listed
// identifiers (audit.IdentityKeys) are kept: they do reach the alert, every other key
// (a session token, a tag, an unlisted claim) reaches nothing.
func TestSecretsNeverLeak(t *testing.T) {
	db, moto := localtest.DynamoDBForTest(t), localtest.MotoForTest(t, "secrets")
	r := newRig(t, db.Endpoint, moto, "secrets")
	canaries := []string{"SECRET-CANARY-REQUEST-7f3a", "SECRET-CANARY-RESPONSE-91bc", "SECRET-CANARY-TOKEN-0c1d", "SECRET-CANARY-TAG-5d2e",
		"SECRET-CANARY-NODE-UID-44aa"}
	identifiers := []string{"ASIAQEXAMPLEKEY00077", "canary-session-5d2e", "arn:aws:sts::111122223333:assumed-role/Leaky/canary-session-5d2e",
		"arn:aws:iam::111122223333:role/Leaky", "AROAQEXAMPLEROLE0077:canary-session-5d2e"}
	extra := map[string]any{
		"requestObject": map[string]any{"kind": "Secret", "apiVersion": "v1", "metadata": map[string]any{"name": "db"},
			"data": map[string]any{"password": canaries[0]}, "stringData": map[string]any{"token": canaries[0]}},
		"responseObject": map[string]any{"kind": "Status", "details": map[string]any{"echo": canaries[1]}},
		"user": map[string]any{
			"username": "leaky", "uid": "aws-iam-authenticator:111122223333:AIDACANARYUSER",
			"groups": []string{"system:authenticated"},
			"extra": map[string]any{
				"accessKeyId": []string{identifiers[0]}, "sessionName": []string{identifiers[1]},
				"arn": []string{identifiers[2]}, "canonicalArn": []string{identifiers[3]}, "principalId": []string{identifiers[4]},
				"sessionToken": []string{canaries[2]}, "iam.amazonaws.com/tag-team": []string{canaries[3]},
				"authentication.kubernetes.io/node-uid": []string{canaries[4]},
			},
		},
		"level": "RequestResponse",
	}
	var lines []string
	for i := range 3 {
		lines = append(lines, auditLine(t, "leaky", "192.0.2.60", time.Duration(i)*time.Second, extra))
	}
	for _, l := range lines {
		for _, c := range canaries {
			if !strings.Contains(l, c) {
				t.Fatalf("test line lacks canary %s", c)
			}
		}
	}
	h := r.handler(nil, nil)
	// The same handler with its EMF metrics captured, as Lambda writes them to the log.
	var emf syncBuffer
	hm := handler.New(handler.Options{
		Processor: pipeline.New(r.opts), Store: store.New(r.client(nil), store.Options{Table: r.table}),
		Publisher: notify.New(r.moto.SNSClient(), r.moto.TopicARN(r.topic)),
		Rule:      detect.UnauthorizedAccess, ClaimLease: time.Minute,
		Logger: slog.New(slog.DiscardHandler), Metrics: &emf,
	})
	event := delivery(t, lines, nil)
	if err := invokeWith(hm, event, "secrets-metrics", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(emf.String(), `"Matches"`) {
		t.Fatalf("no EMF record written: %q", emf.String())
	}
	for i := range 2 { // redeliveries as well
		if err := invokeWith(h, event, fmt.Sprint("secrets-", i), 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	notes := r.notifications(t)
	if len(notes) != 1 {
		t.Fatalf("%d alerts, want 1", len(notes))
	}
	places := map[string]string{"log": r.log.String(), "metrics": emf.String()}
	for i, n := range notes {
		b, err := json.Marshal(n)
		if err != nil {
			t.Fatal(err)
		}
		places[fmt.Sprint("alert ", i)] = string(b)
	}
	items := r.items(t)
	if len(items) == 0 {
		t.Fatal("no items stored")
	}
	var dump strings.Builder
	for _, item := range items {
		for name, v := range item {
			dump.WriteString(name + "=" + attributeText(v) + "\n")
		}
	}
	places["DynamoDB items"] = dump.String()
	for where, text := range places {
		for _, c := range canaries {
			if strings.Contains(text, c) {
				t.Errorf("%s carries the secret %s", where, c)
			}
		}
	}
	// The alert does identify the user and the identity behind it, so the check above
	// looked at real content.
	for _, want := range append([]string{"leaky"}, identifiers...) {
		if !strings.Contains(places["alert 0"], want) {
			t.Errorf("alert does not carry %q: %s", want, places["alert 0"])
		}
	}
}

// attributeText renders a DynamoDB attribute value, nested values included, as text.
func attributeText(v types.AttributeValue) string {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return v.Value
	case *types.AttributeValueMemberN:
		return v.Value
	case *types.AttributeValueMemberB:
		return string(v.Value)
	case *types.AttributeValueMemberSS:
		return strings.Join(v.Value, ",")
	case *types.AttributeValueMemberNS:
		return strings.Join(v.Value, ",")
	case *types.AttributeValueMemberL:
		var parts []string
		for _, e := range v.Value {
			parts = append(parts, attributeText(e))
		}
		return "[" + strings.Join(parts, ",") + "]"
	case *types.AttributeValueMemberM:
		var parts []string
		for k, e := range v.Value {
			parts = append(parts, k+":"+attributeText(e))
		}
		return "{" + strings.Join(parts, ",") + "}"
	case *types.AttributeValueMemberBOOL:
		return fmt.Sprint(v.Value)
	default:
		return fmt.Sprintf("%T", v)
	}
}
