package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/eks-unauthorized-access/detector/infra/local"
	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/alert"
	"github.com/eks-unauthorized-access/detector/internal/audit"
	"github.com/eks-unauthorized-access/detector/internal/detect"
)

func notification(t *testing.T, subject string, a alert.Alert) local.Notification {
	t.Helper()
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	return local.Notification{Subject: subject, Message: string(b)}
}

func TestPrintAlert(t *testing.T) {
	start := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	a := alert.Alert{
		SchemaVersion:   "1",
		RiskObject:      alert.RiskObject{Value: "alice"},
		Source:          alert.Source{Cluster: "prod-cluster", Account: "111122223333", Region: "us-east-1"},
		Window:          alert.Window{Start: start, End: start.Add(time.Hour)},
		Attempts:        3,
		Requests:        3,
		AggregatesTotal: 2,
		ThreatObjects: []alert.ThreatObject{{Value: "192.0.2.1", Origin: alert.OriginPeer, Class: alert.ClassPublic},
			{Value: "10.0.0.1", Origin: alert.OriginClientSupplied, Class: alert.ClassPrivate}},
		UserKind: alert.UserIAM,
		Identities: []alert.Identity{
			{Kind: alert.IdentityIAM, Identity: audit.Identity{CanonicalARN: "arn:aws:iam::111122223333:role/Developer", SessionName: "alice", AccessKeyID: "ASIAQEXAMPLEKEY00001"},
				CloudTrailURL: "https://us-east-1.console.aws.amazon.com/cloudtrailv2/home?region=us-east-1#/events?AccessKeyId=ASIAQEXAMPLEKEY00001"},
			{Kind: alert.IdentityServiceAccount, Identity: audit.Identity{PodName: "web-1", NodeName: "ip-10-0-3-17"}},
		},
		Severity:  alert.SeverityMedium,
		RiskScore: 49,
		Aggregates: []alert.Aggregate{
			{Count: 2, Fields: detect.Fields{Verb: "create", Resource: "secrets", Namespace: "kube-system", Code: "403", Stage: "ResponseComplete"}},
			{Count: 1, Fields: detect.Fields{Verb: "create", Resource: "clusterroles", Namespace: "0", Code: "403", Stage: "ResponseComplete"}},
		},
		SuppressExample: `user == "alice"`,
	}
	var b strings.Builder
	printAlert(&b, 1, notification(t, "[MEDIUM] subject", a))
	want := `  Alert 1: [MEDIUM] subject
    user        alice (iam)
    identity    arn:aws:iam::111122223333:role/Developer, session alice (chosen by the caller), access key ASIAQEXAMPLEKEY00001
    cloudtrail  https://us-east-1.console.aws.amazon.com/cloudtrailv2/home?region=us-east-1#/events?AccessKeyId=ASIAQEXAMPLEKEY00001
    identity    pod web-1 on node ip-10-0-3-17
    cluster     prod-cluster (account 111122223333, us-east-1)
    window      2026-11-24 08:00 to 09:00 UTC
    attempts    3 in 2 aggregates, 3 distinct requests
    source IPs  192.0.2.1 (peer, public), 10.0.0.1 (client-supplied, private)
    risk        medium, score 49; MITRE   ()
    denied      2x create secrets in namespace kube-system (HTTP 403, stage ResponseComplete)
    denied      1x create clusterroles cluster-wide (HTTP 403, stage ResponseComplete)
    suppress    SUPPRESSIONS='user == "alice"'
`
	if b.String() != want {
		t.Errorf("printAlert:\n%s\nwant:\n%s", b.String(), want)
	}

	b.Reset()
	printAlert(&b, 2, local.Notification{Subject: "plain", Message: "hello"})
	if want := "  Alert 2: plain\n    (not a structured alert) hello\n"; b.String() != want {
		t.Errorf("printAlert(plain) = %q, want %q", b.String(), want)
	}
}

func TestSortByWindow(t *testing.T) {
	at := func(h int) alert.Alert {
		start := time.Date(2026, 11, 24, h, 0, 0, 0, time.UTC)
		return alert.Alert{SchemaVersion: "1", Window: alert.Window{Start: start}}
	}
	notes := []local.Notification{
		notification(t, "b", at(9)), notification(t, "z", at(8)), notification(t, "a", at(9)),
	}
	sortByWindow(notes)
	var got []string
	for _, n := range notes {
		got = append(got, n.Subject)
	}
	if strings.Join(got, ",") != "z,a,b" {
		t.Errorf("order = %v, want [z a b]", got)
	}
}

func TestPrintUpdateAndReport(t *testing.T) {
	start := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	u := alert.Alert{
		SchemaVersion: "1", Kind: alert.KindEscalation, RiskObject: alert.RiskObject{Value: "alice"},
		Window: alert.Window{Start: start, End: start.Add(time.Hour)}, Attempts: 10, AggregatesTotal: 9,
		Escalation: &alert.Escalation{Threshold: 10, From: 2, To: 10, NewSrcIPs: []string{"192.0.2.50"}},
		Aggregates: []alert.Aggregate{{Count: 1, Fields: detect.Fields{Verb: "create"}}},
	}
	n := notification(t, "[MEDIUM] Update: 10+ attempts", u)
	n.MessageAttributes = map[string]local.NotificationAttribute{"alertKind": {Value: "escalation"}}
	var b strings.Builder
	printAlert(&b, 1, n)
	for _, want := range []string{"  Update 1: [MEDIUM] Update: 10+ attempts\n", "    update      attempts 2 -> 10 (threshold 10)\n", "    new IPs     192.0.2.50\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("printAlert(update) lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "denied") || strings.Contains(b.String(), "new agents") {
		t.Errorf("printAlert(update) lists the aggregates or an empty list:\n%s", b.String())
	}

	row := alert.ReportRow{Cluster: "prod-cluster", Account: "111122223333", RiskScore: 49,
		RiskObject: alert.RiskObject{Field: "user"}, ThreatObject: alert.ThreatObject{Field: "src_ip"}}
	row.Row = aggregate.Row{Count: 3, User: "alice", SrcIP: "192.0.2.50", Verb: "create", Resource: "secrets", Namespace: "default", RequestReceivedTimestamp: "2026-11-24T08:31:00Z"}
	r := alert.Report{SchemaVersion: "1", Kind: alert.KindReport, Part: 1, Parts: 1, Window: alert.Window{Start: start, End: start.Add(time.Hour)},
		Rows: 1, Attempts: 3, Clusters: []alert.ClusterTotal{{Cluster: "prod-cluster", Account: "111122223333", Rows: 1, Attempts: 3}}, RowsInPart: []alert.ReportRow{row}}
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	printReport(&b, local.Notification{Subject: "[REPORT] s", Message: string(raw)})
	want := `  Report part 1 of 1: [REPORT] s
    window      2026-11-24 08:00 to 09:00 UTC
    total       3 attempts in 1 rows
    cluster     prod-cluster (account 111122223333): 3 attempts in 1 rows
    risk        every row: score 49, risk object user, threat object src_ip
    count  user     src_ip         verb    resource             namespace    time
        3  alice    192.0.2.50     create  secrets              default      2026-11-24T08:31:00Z
`
	if b.String() != want {
		t.Errorf("printReport:\n%s\nwant:\n%s", b.String(), want)
	}
}
