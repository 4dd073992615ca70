package notify_test

import (
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/eks-unauthorized-access/detector/infra/local/localtest"
	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/alert"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/notify"
)

// policyBlock is a documented filter policy: a marker comment naming it, then its JSON.
var policyBlock = regexp.MustCompile("(?s)<!-- filter-policy: ([a-z-]+) -->\n```json\n(.*?)```")

// documentedPolicies reads the filter policies of docs/alerts.md, by name: the test uses
// the text readers copy, so the two cannot drift apart.
func documentedPolicies(t *testing.T) map[string]string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/alerts.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range policyBlock.FindAllStringSubmatch(string(doc), -1) {
		out[m[1]] = strings.TrimSpace(m[2])
	}
	return out
}

// routedAlert builds the alert of one user on one cluster with denials in the given
// namespaces ("" for a cluster-scoped request).
func routedAlert(cluster, user, uid string, groups []string, namespaces ...string) alert.Alert {
	window := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	src := aggregate.Source{Owner: "111122223333", LogGroup: "/aws/eks/" + cluster + "/cluster", Cluster: cluster, Region: "eu-west-1"}
	var aggs []aggregate.Aggregate
	for i, ns := range namespaces {
		if ns == "" {
			ns = detect.FillValue
		}
		f := detect.Fields{Namespace: ns, Resource: "secrets", Code: "403", SrcIPs: []string{"198.51.100.23"}, User: user, UID: uid,
			Groups: groups, Verb: "create", RequestReceivedTimestamp: window.Add(time.Duration(i) * time.Minute).Format(time.RFC3339Nano)}
		aggs = append(aggs, aggregate.Aggregate{Rule: detect.UnauthorizedAccess.ID, Window: window, Key: aggregate.KeyOf(src, f),
			Group: user, Source: src, Fields: f, Count: 1, FirstSeen: window, LastSeen: window})
	}
	return alert.Build(alert.Group{Rule: detect.UnauthorizedAccess, Window: window, Key: cluster + "/" + user, Aggregates: aggs},
		alert.Options{Now: func() time.Time { return window.Add(30 * time.Minute) }})
}

// TestDocumentedRouting publishes alerts through the local SNS to one SQS subscription per
// filter policy of docs/alerts.md, and checks that each policy delivers exactly the alerts
// the documentation promises.
func TestDocumentedRouting(t *testing.T) {
	policies := documentedPolicies(t)
	const iamUID = "aws-iam-authenticator:111122223333:AROAQEXAMPLEROLE0001"
	sa := []string{"system:serviceaccounts", "system:authenticated"}
	anon := []string{"system:unauthenticated"}
	alerts := map[string]alert.Alert{
		"prod-alice-payments":    routedAlert("prod-eu", "alice", iamUID, []string{"system:authenticated"}, "payments"),
		"prod-ci-deployer":       routedAlert("prod-eu", "system:serviceaccount:ci:deployer", "5b1d", sa, "ci"),
		"prod-anonymous":         routedAlert("prod-eu", "system:anonymous", "", anon, ""),
		"staging-sa-payments":    routedAlert("staging", "system:serviceaccount:payments:api", "7c2e", sa, "payments"),
		"staging-anonymous":      routedAlert("staging", "system:anonymous", "", anon, "", "kube-system"),
		"staging-bob-two-teams":  routedAlert("staging", "bob", iamUID, []string{"system:authenticated"}, "kube-system", "payments"),
		"staging-node":           routedAlert("staging", "system:node:ip-10-0-3-15", iamUID, []string{"system:nodes"}, ""),
		"production-lookalike-1": routedAlert("preprod", "carol", iamUID, []string{"system:authenticated"}, "payments-old"),
	}
	promised := map[string][]string{
		// Only production clusters to e-mail.
		"production-email": {"prod-alice-payments", "prod-anonymous", "prod-ci-deployer"},
		// Service-account denials to the platform team.
		"platform-serviceaccounts": {"prod-ci-deployer", "staging-sa-payments"},
		// Anonymous requests to security.
		"security-anonymous": {"prod-anonymous", "staging-anonymous"},
		// A team's namespaces, wherever else the same user was denied.
		"payments-team": {"prod-alice-payments", "staging-bob-two-teams", "staging-sa-payments"},
	}
	for name := range policies {
		if _, ok := promised[name]; !ok {
			t.Errorf("docs/alerts.md documents filter policy %q, which this test does not check", name)
		}
	}
	for name := range promised {
		if _, ok := policies[name]; !ok {
			t.Errorf("docs/alerts.md lacks the filter policy %q", name)
		}
	}

	var topics []string
	for name := range promised {
		topics = append(topics, "route-"+name)
	}
	moto := localtest.MotoForTest(t, topics...)
	ctx := context.Background()
	for name, policy := range policies {
		topic := "route-" + name
		subs, err := moto.SNSClient().ListSubscriptionsByTopic(ctx, &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(moto.TopicARN(topic))})
		if err != nil || len(subs.Subscriptions) != 1 {
			t.Fatalf("subscriptions of %s: %v, %v", topic, subs, err)
		}
		if _, err := moto.SNSClient().SetSubscriptionAttributes(ctx, &sns.SetSubscriptionAttributesInput{
			SubscriptionArn: subs.Subscriptions[0].SubscriptionArn,
			AttributeName:   aws.String("FilterPolicy"), AttributeValue: aws.String(policy),
		}); err != nil {
			t.Fatalf("set the filter policy %s: %v", name, err)
		}
		p := notify.New(moto.SNSClient(), moto.TopicARN(topic))
		for _, a := range alerts {
			m, err := alert.Render(a)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.Publish(ctx, m); err != nil {
				t.Fatalf("publish to %s: %v", topic, err)
			}
		}
	}
	byID := map[string]string{}
	for name, a := range alerts {
		byID[a.ID] = name
	}
	for name := range policies {
		notes, err := moto.Drain(ctx, "route-"+name)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, n := range notes {
			got = append(got, byID[n.MessageAttributes["alertId"].Value])
		}
		slices.Sort(got)
		if want := promised[name]; !slices.Equal(got, want) {
			t.Errorf("filter policy %s delivered %v, want %v", name, got, want)
		}
	}
}
