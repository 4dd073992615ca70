package finding_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/securityhub/types"

	"github.com/eks-unauthorized-access/detector/internal/alert"
	"github.com/eks-unauthorized-access/detector/internal/audit"
	"github.com/eks-unauthorized-access/detector/internal/finding"
)

// sample is a first alert as Build makes it, at a fixed time.
func sample() alert.Alert {
	start := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	return alert.Alert{
		ID: "0123456789abcdef0123456789abcdef", Title: "Unauthorized access to Kubernetes from user mallory",
		Rule: alert.RuleRef{ID: "kubernetes-unauthorized-access"}, Severity: alert.SeverityMedium, RiskScore: 49,
		MITRE:      alert.MITRE{TechniqueID: "T1204", Technique: "User Execution", Tactic: "Execution"},
		RiskObject: alert.RiskObject{Value: "mallory"},
		// A forged X-Forwarded-For entry first: the finding's network source is the peer.
		ThreatObjects: []alert.ThreatObject{{Value: "203.0.113.50", Origin: alert.OriginClientSupplied}, {Value: "::ffff:198.51.100.7", Origin: alert.OriginPeer}},
		Identities: []alert.Identity{
			{Kind: alert.IdentityServiceAccount, Identity: audit.Identity{PodName: "web-0"}},
			{Kind: alert.IdentityIAM, Identity: audit.Identity{CanonicalARN: "arn:aws:iam::111122223333:role/ci-deployer", SessionName: "build-42", AccessKeyID: "ASIAEXAMPLE"}},
			{Kind: alert.IdentityIAM, Identity: audit.Identity{CanonicalARN: "arn:aws:iam::111122223333:user/mallory"}},
			{Kind: alert.IdentityIAM, Identity: audit.Identity{CanonicalARN: "arn:aws:iam::111122223333:role/ci-deployer", SessionName: "build-43"}},
		},
		Source:    alert.Source{Cluster: "prod", Account: "111122223333", Region: "eu-west-1", LogGroup: "/aws/eks/prod/cluster"},
		Window:    alert.Window{Start: start, End: start.Add(time.Hour)},
		FirstSeen: start.Add(5 * time.Minute), LastSeen: start.Add(7 * time.Minute),
		Attempts: 3, GeneratedAt: start.Add(8 * time.Minute), Kind: alert.KindFirst,
		ConsoleURL: "https://console.aws.amazon.com/cloudwatch/home", NextSteps: []string{"Ask mallory."},
	}
}

var target = finding.Target{Partition: "aws", Region: "us-east-1", Account: "444455556666"}

func TestBuildFirst(t *testing.T) {
	f := finding.Build(sample(), target)
	for name, got := range map[string][2]string{
		"Id":            {aws.ToString(f.Id), "eks-unauthorized-access/0123456789abcdef0123456789abcdef"},
		"ProductArn":    {aws.ToString(f.ProductArn), "arn:aws:securityhub:us-east-1:444455556666:product/444455556666/default"},
		"AwsAccountId":  {aws.ToString(f.AwsAccountId), "444455556666"},
		"GeneratorId":   {aws.ToString(f.GeneratorId), "eks-unauthorized-access/kubernetes-unauthorized-access"},
		"SchemaVersion": {aws.ToString(f.SchemaVersion), "2018-10-08"},
		"Types":         {strings.Join(f.Types, "|"), "TTPs/Execution/T1204 User Execution|Unusual Behaviors/User"},
		"CreatedAt":     {aws.ToString(f.CreatedAt), "2026-03-04T10:05:00Z"},
		"UpdatedAt":     {aws.ToString(f.UpdatedAt), "2026-03-04T10:08:00.000Z"},
		"LastObserved":  {aws.ToString(f.LastObservedAt), "2026-03-04T10:07:00Z"},
		"Severity":      {string(f.Severity.Label) + " " + aws.ToString(f.Severity.Original), "MEDIUM 49"},
		"ProviderSev":   {string(f.FindingProviderFields.Severity.Label), "MEDIUM"},
		"Resource":      {aws.ToString(f.Resources[0].Type) + " " + aws.ToString(f.Resources[0].Id), "AwsEksCluster arn:aws:eks:eu-west-1:111122223333:cluster/prod"},
		"SourceIpV4":    {aws.ToString(f.Network.SourceIpV4), "198.51.100.7"},
		"Direction":     {string(f.Network.Direction), "IN"},
		"Workflow":      {string(f.Workflow.Status), "NEW"},
		"RecordState":   {string(f.RecordState), "ACTIVE"},
		"alertId":       {f.ProductFields["alertId"], "0123456789abcdef0123456789abcdef"},
		"attempts":      {f.ProductFields["attempts"], "3"},
		"windowStart":   {f.ProductFields["windowStart"], "2026-03-04T10:00:00Z"},
		"sourceIps":     {f.ProductFields["sourceIps"], "203.0.113.50,::ffff:198.51.100.7"},
		"peerAddresses": {f.ProductFields["peerAddresses"], "::ffff:198.51.100.7"},
		"iamPrincipal":  {f.ProductFields["iamPrincipal"], "arn:aws:iam::111122223333:role/ci-deployer"},
		"iamSession":    {f.ProductFields["iamSessionName"] + " " + f.ProductFields["iamAccessKeyId"], "build-42 ASIAEXAMPLE"},
		"Resources":     {resourceList(f), "AwsEksCluster arn:aws:eks:eu-west-1:111122223333:cluster/prod, AwsIamRole arn:aws:iam::111122223333:role/ci-deployer, AwsIamUser arn:aws:iam::111122223333:user/mallory"},
		"Remediation":   {aws.ToString(f.Remediation.Recommendation.Text), "Ask mallory."},
	} {
		if got[0] != got[1] {
			t.Errorf("%s = %q, want %q", name, got[0], got[1])
		}
	}
	if d := aws.ToString(f.Description); !strings.Contains(d, `3 forbidden Kubernetes create request(s) by user "mallory" on EKS cluster "prod"`) {
		t.Errorf("Description = %q", d)
	}
}

// resourceList is "Type Id, ..." of the finding's resources.
func resourceList(f types.AwsSecurityFinding) string {
	var out []string
	for _, r := range f.Resources {
		out = append(out, aws.ToString(r.Type)+" "+aws.ToString(r.Id))
	}
	return strings.Join(out, ", ")
}

// TestNetworkIsThePeer: an alert whose addresses are all client-supplied (X-Forwarded-For)
// gets no network source: any client can write those.
func TestNetworkIsThePeer(t *testing.T) {
	a := sample()
	a.ThreatObjects = []alert.ThreatObject{{Value: "203.0.113.50", Origin: alert.OriginClientSupplied}}
	if f := finding.Build(a, target); f.Network != nil {
		t.Errorf("network %+v from a client-supplied address", f.Network)
	}
}

// TestBuildUpdate: an update is the same finding (the first alert's id) and leaves the
// analyst's workflow alone.
func TestBuildUpdate(t *testing.T) {
	a := sample()
	a.Kind, a.ID = alert.KindEscalation, alert.EscalationID(a.ID, 10)
	a.Escalation = &alert.Escalation{Threshold: 10, From: 3, To: 12, FirstAlertID: sample().ID}
	f := finding.Build(a, target)
	if aws.ToString(f.Id) != aws.ToString(finding.Build(sample(), target).Id) {
		t.Errorf("update Id %s differs from the first alert's finding", aws.ToString(f.Id))
	}
	if f.Workflow != nil {
		t.Errorf("update sets Workflow %+v", f.Workflow)
	}
	if f.ProductFields["threshold"] != "10" || !strings.Contains(aws.ToString(f.Description), "rose from 3 to 12") {
		t.Errorf("update fields %v, description %q", f.ProductFields, aws.ToString(f.Description))
	}
}

// TestBuildBounds: values over ASFF's limits are cut, and an alert without a cluster still
// names a resource.
func TestBuildBounds(t *testing.T) {
	a := sample()
	a.Title = strings.Repeat("t", 600)
	a.RiskObject.Value = strings.Repeat("u", 2000)
	a.Source.Cluster = ""
	a.ThreatObjects = []alert.ThreatObject{{Value: "2001:db8::1", Origin: alert.OriginPeer}}
	f := finding.Build(a, target)
	if n := len([]rune(aws.ToString(f.Title))); n != 256 {
		t.Errorf("title of %d characters", n)
	}
	if n := len([]rune(aws.ToString(f.Description))); n > 1024 {
		t.Errorf("description of %d characters", n)
	}
	if r := f.Resources[0]; aws.ToString(r.Type) != "Other" || aws.ToString(r.Id) != "/aws/eks/prod/cluster" {
		t.Errorf("resource %s %s", aws.ToString(r.Type), aws.ToString(r.Id))
	}
	if aws.ToString(f.Network.SourceIpV6) != "2001:db8::1" || f.Network.SourceIpV4 != nil {
		t.Errorf("network %+v", f.Network)
	}
	if finding.PartitionOf("cn-north-1") != "aws-cn" || finding.PartitionOf("us-gov-west-1") != "aws-us-gov" {
		t.Error("partitions")
	}
}
