package alert

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/audit"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/golden"
)

var (
	window   = time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	fixedNow = func() time.Time { return time.Date(2026, 5, 4, 11, 2, 3, 0, time.UTC) }
	source   = aggregate.Source{
		Owner:     "111122223333",
		LogGroup:  "/aws/eks/prod/cluster",
		LogStream: "kube-apiserver-audit-0a1b2c3d4e5f",
		Cluster:   "prod",
		Region:    "eu-west-1",
	}
)

// sampleIdentity is what the EKS authenticator writes into user.extra for an assumed role.
var sampleIdentity = audit.Identity{
	ARN: "arn:aws:sts::111122223333:assumed-role/Developer/alice", CanonicalARN: "arn:aws:iam::111122223333:role/Developer",
	SessionName: "alice", AccessKeyID: "ASIAQEXAMPLEKEY00001", PrincipalID: "AROAQEXAMPLEROLE0001:alice",
}

// sampleGroup is a user denied three kinds of create within one window, shaped like the
// RBAC and admission denials kube-apiserver writes.
func sampleGroup() Group {
	fields := func(ns, res, uri, msg, ts string, ips ...string) detect.Fields {
		return detect.Fields{
			Namespace: ns, Resource: res, RequestReceivedTimestamp: ts, RequestURI: uri,
			Code: "403", Message: msg, SrcIPs: ips, Stage: "ResponseComplete",
			Groups: []string{"system:authenticated"},
			UID:    "aws-iam-authenticator:111122223333:AROAEXAMPLEID",
			User:   "alice", UserAgent: "kubectl/v1.30.2 (linux/amd64) kubernetes/3968350", Verb: "create",
		}
	}
	at := func(m, s int) time.Time {
		return window.Add(time.Duration(m)*time.Minute + time.Duration(s)*time.Second)
	}
	return Group{
		Rule:   detect.UnauthorizedAccess,
		Window: window,
		Key:    "alice",
		Aggregates: []aggregate.Aggregate{
			{
				Rule: detect.UnauthorizedAccess.ID, Window: window, Key: "k1", Group: "alice", Source: source, Count: 5,
				Fields: fields("kube-system", "secrets", "/api/v1/namespaces/kube-system/secrets",
					`secrets is forbidden: User "alice" cannot create resource "secrets" in API group "" in the namespace "kube-system"`,
					"2026-05-04T10:04:05.123456Z", "10.0.12.7"),
				FirstSeen: at(4, 5), LastSeen: at(31, 0),
			},
			{
				Rule: detect.UnauthorizedAccess.ID, Window: window, Key: "k2", Group: "alice", Source: source, Count: 6,
				Fields: fields(detect.FillValue, "clusterrolebindings", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
					`clusterrolebindings.rbac.authorization.k8s.io is forbidden: User "alice" cannot create resource "clusterrolebindings" in API group "rbac.authorization.k8s.io" at the cluster scope`,
					"2026-05-04T10:40:00.000001Z", "203.0.113.9", "10.0.12.7"),
				FirstSeen: at(40, 0), LastSeen: at(55, 1),
				Identity: sampleIdentity,
			},
			{
				Rule: detect.UnauthorizedAccess.ID, Window: window, Key: "k3", Group: "alice", Source: source, Count: 1,
				Fields: fields("kube-system", "pods", "/api/v1/namespaces/kube-system/pods/coredns-5d78c9869d-abcde/exec?command=sh&stdin=true",
					`pods "coredns-5d78c9869d-abcde" is forbidden: User "alice" cannot create resource "pods/exec" in API group "" in the namespace "kube-system"`,
					"2026-05-04T10:12:00.5Z", "10.0.12.7"),
				FirstSeen: at(12, 0), LastSeen: at(12, 0),
			},
		},
	}
}

func TestBuild(t *testing.T) {
	a := Build(sampleGroup(), Options{Now: fixedNow})

	checks := []struct {
		name      string
		got, want any
	}{
		{"title", a.Title, "Unauthorized access to Kubernetes from user alice"},
		{"rule", a.Rule, RuleRef{ID: "kubernetes-unauthorized-access", Name: "Kubernetes Unauthorized Access"}},
		{"severity", a.Severity, SeverityMedium},
		{"risk score", a.RiskScore, 49},
		{"impact", a.Impact, 70},
		{"confidence", a.Confidence, 70},
		{"mitre", a.MITRE, MITRE{TechniqueID: "T1204", Technique: "User Execution", Tactic: "Execution"}},
		{"risk object", a.RiskObject, RiskObject{Field: "user", Type: "user", Value: "alice"}},
		{"threat objects", len(a.ThreatObjects), 2},
		{"first threat object", a.ThreatObjects[0], ThreatObject{Field: "src_ip", Type: "ip_address", Value: "10.0.12.7", Origin: OriginPeer, Class: ClassPrivate}},
		{"second threat object", a.ThreatObjects[1], ThreatObject{Field: "src_ip", Type: "ip_address", Value: "203.0.113.9", Origin: OriginClientSupplied, Class: ClassPublic}},
		{"user kind", a.UserKind, UserIAM},
		{"namespaces", a.Namespaces, []string{"kube-system"}},
		{"identities", a.Identities, []Identity{{Kind: IdentityIAM, Identity: sampleIdentity, SessionNameCallerChosen: true,
			CloudTrailURL: "https://eu-west-1.console.aws.amazon.com/cloudtrailv2/home?region=eu-west-1#/events?AccessKeyId=ASIAQEXAMPLEKEY00001",
			IAMURL:        "https://console.aws.amazon.com/iam/home#/roles/details/Developer"}}},
		{"source", a.Source, Source{Cluster: "prod", Account: "111122223333", Region: "eu-west-1",
			LogGroup: "/aws/eks/prod/cluster", LogStream: "kube-apiserver-audit-0a1b2c3d4e5f"}},
		{"window", a.Window, Window{Start: window, End: window.Add(time.Hour)}},
		{"first seen", a.FirstSeen, window.Add(4*time.Minute + 5*time.Second)},
		{"last seen", a.LastSeen, window.Add(55*time.Minute + time.Second)},
		{"attempts", a.Attempts, int64(12)},
		{"aggregates total", a.AggregatesTotal, 3},
		{"aggregates omitted", a.AggregatesOmitted, 0},
		{"most recent first", []string{a.Aggregates[0].Fields.Resource, a.Aggregates[1].Fields.Resource, a.Aggregates[2].Fields.Resource},
			[]string{"clusterrolebindings", "secrets", "pods"}},
		{"suppress example", a.SuppressExample, `user == "alice"`},
		{"generated at", a.GeneratedAt, fixedNow()},
		{"schema version", a.SchemaVersion, "1"},
		{"id is stable", a.ID, Build(sampleGroup(), Options{}).ID},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

func TestBuildOptions(t *testing.T) {
	g := sampleGroup()
	for i := range g.Aggregates {
		g.Aggregates[i].Source.Region = ""
	}
	a := Build(g, Options{Region: "us-east-2", MaxAggregates: 2, Now: fixedNow})
	if a.Source.Region != "us-east-2" {
		t.Errorf("region = %q, want the Options fallback us-east-2", a.Source.Region)
	}
	if len(a.Aggregates) != 2 || a.AggregatesOmitted != 1 || a.AggregatesTotal != 3 {
		t.Errorf("aggregates listed/omitted/total = %d/%d/%d, want 2/1/3", len(a.Aggregates), a.AggregatesOmitted, a.AggregatesTotal)
	}
	if a.Attempts != 12 {
		t.Errorf("attempts = %d, want 12: every aggregate counts, listed or not", a.Attempts)
	}
}

func TestSeverityOf(t *testing.T) {
	for _, c := range []struct {
		score int
		want  Severity
	}{
		{0, SeverityInformational}, {20, SeverityInformational}, {21, SeverityLow}, {40, SeverityLow},
		{41, SeverityMedium}, {49, SeverityMedium}, {60, SeverityMedium}, {61, SeverityHigh},
		{80, SeverityHigh}, {81, SeverityCritical}, {100, SeverityCritical},
	} {
		if got := SeverityOf(c.score); got != c.want {
			t.Errorf("SeverityOf(%d) = %s, want %s", c.score, got, c.want)
		}
	}
}

// checkGolden compares got with testdata/name, rewriting it under -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", name), got)
}

// TestDistinctRequests: a denied exec logged at ResponseStarted and ResponseComplete is one
// request, whatever the number of deliveries that counted it; the alert says so in every
// channel and keeps the per-event attempts.
func TestDistinctRequests(t *testing.T) {
	g := sampleGroup()
	exec := g.Aggregates[2] // the denied exec, count 1, stage ResponseComplete
	started := exec
	started.Key, started.Fields.Stage = "k3-started", "ResponseStarted"
	g.Aggregates = append(g.Aggregates, started)
	// Another request alike but for its timestamp is another request.
	other := exec
	other.Key, other.Fields.RequestReceivedTimestamp = "k4", "2026-05-04T10:12:00.6Z"
	g.Aggregates = append(g.Aggregates, other)

	a := Build(g, Options{Now: fixedNow})
	if a.Attempts != 14 || a.Requests != 13 {
		t.Errorf("attempts %d, requests %d; want 14 events and 13 requests", a.Attempts, a.Requests)
	}
	m, err := Render(a)
	if err != nil {
		t.Fatal(err)
	}
	ch := channels(t, m)
	for _, name := range []string{"email", "https"} {
		if !strings.Contains(ch[name], "13 distinct requests (14 audit events: the stages of one exec, attach or portforward count once)") {
			t.Errorf("%s does not say the requests are counted once:\n%s", name, ch[name])
		}
	}
	if !strings.Contains(ch["sqs"], `"attempts":14`) || !strings.Contains(ch["sqs"], `"requests":13`) {
		t.Error("the structured alert lacks attempts 14 and requests 13")
	}
}
