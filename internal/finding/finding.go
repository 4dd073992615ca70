// Package finding turns alerts into AWS Security Hub findings in the AWS Security Finding
// Format (ASFF) and imports them with BatchImportFindings, as a custom integration of the
// account's own default product.
//
// A finding stands for one alert group in one window: its Id is derived from the group's
// first alert id, so a retry, a redelivery and every update of the group (an escalation)
// import the same finding again, which Security Hub treats as an update of it. The import
// is therefore idempotent: after an ambiguous answer it is simply sent again.
//
// Every value in a finding comes from the structured alert, whose attacker-controlled
// values are already cleaned and bounded; the finding adds no markup of its own.
package finding

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/securityhub"
	"github.com/aws/aws-sdk-go-v2/service/securityhub/types"

	"github.com/eks-unauthorized-access/detector/internal/alert"
	"github.com/eks-unauthorized-access/detector/internal/notify"
)

// SchemaVersion is the ASFF version the findings follow.
const SchemaVersion = "2018-10-08"

// IDPrefix starts the Id of every finding of this project.
const IDPrefix = "eks-unauthorized-access/"

// ASFF limits, in characters, and the IAM principals listed as resources.
const (
	maxPrincipals   = 10
	maxTitle        = 256
	maxDescription  = 1024
	maxProductValue = 2048
)

// Target says where findings go: the account and region of the Security Hub that imports
// them (the function's own: the default product ARN accepts findings of the calling
// account only).
type Target struct {
	Partition string // "aws" when empty
	Region    string
	Account   string
}

func (t Target) partition() string {
	if t.Partition == "" {
		return "aws"
	}
	return t.Partition
}

// PartitionOf returns the partition of region: aws-cn, aws-us-gov or aws.
func PartitionOf(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}

// ProductARN is the ARN of the account's default product, the one custom integrations
// import findings under.
func (t Target) ProductARN() string {
	return "arn:" + t.partition() + ":securityhub:" + t.Region + ":" + t.Account + ":product/" + t.Account + "/default"
}

// ClusterARN is the ARN of the EKS cluster named cluster in region and account.
func ClusterARN(partition, region, account, cluster string) string {
	return "arn:" + partition + ":eks:" + region + ":" + account + ":cluster/" + cluster
}

// ID is the finding Id of alert a: the same for the group's first alert and all its
// updates in the window.
func ID(a alert.Alert) string {
	id := a.ID
	if a.Escalation != nil && a.Escalation.FirstAlertID != "" {
		id = a.Escalation.FirstAlertID
	}
	return IDPrefix + id
}

// severityLabels maps the alert's severity bands to ASFF's labels.
var severityLabels = map[alert.Severity]types.SeverityLabel{
	alert.SeverityInformational: types.SeverityLabelInformational,
	alert.SeverityLow:           types.SeverityLabelLow,
	alert.SeverityMedium:        types.SeverityLabelMedium,
	alert.SeverityHigh:          types.SeverityLabelHigh,
	alert.SeverityCritical:      types.SeverityLabelCritical,
}

// Types are the ASFF finding types of alert a (namespace/category/classifier): the MITRE
// ATT&CK tactic and technique under TTPs, and unusual behaviour of a user.
func Types(a alert.Alert) []string {
	out := []string{}
	if a.MITRE.Tactic != "" {
		out = append(out, "TTPs/"+a.MITRE.Tactic+"/"+strings.TrimSpace(a.MITRE.TechniqueID+" "+a.MITRE.Technique))
	}
	return append(out, "Unusual Behaviors/User")
}

// Build returns the finding of alert a, imported into t. It is pure. The first alert of a
// group sets the workflow status NEW; an update leaves Workflow out, so that it never
// touches the analyst's workflow (BatchImportFindings ignores Workflow on an existing
// finding anyway).
func Build(a alert.Alert, t Target) types.AwsSecurityFinding {
	first, last := a.FirstSeen, a.LastSeen
	if first.IsZero() {
		first = a.Window.Start
	}
	if last.IsZero() {
		last = first
	}
	sev := severityLabels[a.Severity]
	if sev == "" {
		sev = types.SeverityLabelInformational
	}
	original := strconv.Itoa(a.RiskScore)
	f := types.AwsSecurityFinding{
		SchemaVersion: aws.String(SchemaVersion),
		Id:            aws.String(ID(a)),
		ProductArn:    aws.String(t.ProductARN()),
		GeneratorId:   aws.String(IDPrefix + a.Rule.ID),
		AwsAccountId:  aws.String(t.Account),
		Region:        aws.String(t.Region),
		Types:         Types(a),
		// CreatedAt is when the issue was first observed, so every import of the group
		// says the same; UpdatedAt is when this alert was built, to the millisecond:
		// Security Hub ignores an update whose UpdatedAt is not later than the finding's,
		// and an escalation can follow its first alert within the same second.
		CreatedAt:       aws.String(stamp(first)),
		FirstObservedAt: aws.String(stamp(first)),
		LastObservedAt:  aws.String(stamp(last)),
		UpdatedAt:       aws.String(a.GeneratedAt.UTC().Format("2006-01-02T15:04:05.000Z07:00")),
		Severity:        &types.Severity{Label: sev, Original: aws.String(original)},
		FindingProviderFields: &types.FindingProviderFields{
			Severity: &types.FindingProviderSeverity{Label: sev, Original: aws.String(original)},
			Types:    Types(a),
		},
		Title:         aws.String(cut(a.Title, maxTitle)),
		Description:   aws.String(cut(description(a), maxDescription)),
		Resources:     resources(a),
		Network:       network(a),
		ProductFields: productFields(a),
		RecordState:   types.RecordStateActive,
		SourceUrl:     nonEmpty(a.ConsoleURL),
	}
	if a.Kind != alert.KindEscalation {
		f.Workflow = &types.Workflow{Status: types.WorkflowStatusNew}
	}
	if len(a.NextSteps) > 0 {
		f.Remediation = &types.Remediation{Recommendation: &types.Recommendation{Text: aws.String(cut(a.NextSteps[0], 512))}}
	}
	return f
}

// description says what happened in one paragraph of plain text.
func description(a alert.Alert) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d forbidden Kubernetes create request(s) by user %q", a.Attempts, a.RiskObject.Value)
	if a.Source.Cluster != "" {
		fmt.Fprintf(&b, " on EKS cluster %q", a.Source.Cluster)
	}
	fmt.Fprintf(&b, " between %s and %s", stamp(a.Window.Start), stamp(a.Window.End))
	if n := len(a.ThreatObjects); n > 0 {
		ips := make([]string, 0, n)
		for _, t := range a.ThreatObjects {
			ips = append(ips, t.Value)
		}
		fmt.Fprintf(&b, ", from %s", strings.Join(ips, ", "))
		if a.ThreatObjectsOmitted > 0 {
			fmt.Fprintf(&b, " and %d more", a.ThreatObjectsOmitted)
		}
	}
	b.WriteString(".")
	if a.MITRE.TechniqueID != "" {
		fmt.Fprintf(&b, " MITRE ATT&CK %s %s (%s).", a.MITRE.TechniqueID, a.MITRE.Technique, a.MITRE.Tactic)
	}
	if a.Escalation != nil {
		fmt.Fprintf(&b, " Updated: attempts rose from %d to %d.", a.Escalation.From, a.Escalation.To)
	}
	return b.String()
}

// resources are the EKS cluster (or, when the log group named none, the log group), then
// the IAM principals behind the requests.
func resources(a alert.Alert) []types.Resource {
	s := a.Source
	if s.Cluster != "" && s.Account != "" && s.Region != "" {
		return append([]types.Resource{{
			Type:      aws.String("AwsEksCluster"),
			Id:        aws.String(ClusterARN(PartitionOf(s.Region), s.Region, s.Account, s.Cluster)),
			Partition: types.Partition(PartitionOf(s.Region)),
			Region:    aws.String(s.Region),
		}}, principalResources(a)...)
	}
	id := s.LogGroup
	if id == "" {
		id = "unknown"
	}
	return append([]types.Resource{{Type: aws.String("Other"), Id: aws.String(id), Region: nonEmpty(s.Region)}}, principalResources(a)...)
}

// principalResources are the IAM roles and users behind the group's requests (the
// canonical ARNs of user.extra that the EKS authenticator verified), most recent first,
// at most maxPrincipals.
func principalResources(a alert.Alert) []types.Resource {
	var out []types.Resource
	seen := map[string]bool{}
	for _, id := range a.Identities {
		arn := id.CanonicalARN
		if id.Kind != alert.IdentityIAM || arn == "" || seen[arn] || len(out) == maxPrincipals {
			continue
		}
		seen[arn] = true
		r := types.Resource{Type: aws.String(principalType(arn)), Id: aws.String(arn)}
		if p := strings.Split(arn, ":"); len(p) > 1 {
			r.Partition = types.Partition(p[1])
		}
		out = append(out, r)
	}
	return out
}

// principalType is the ASFF resource type of an IAM ARN: AwsIamRole, AwsIamUser, or Other.
func principalType(arn string) string {
	_, rest, _ := strings.Cut(arn, ":iam::")
	_, kind, _ := strings.Cut(rest, ":")
	switch {
	case strings.HasPrefix(kind, "role/"):
		return "AwsIamRole"
	case strings.HasPrefix(kind, "user/"):
		return "AwsIamUser"
	}
	return "Other"
}

// network is the peer address of the alert (ASFF holds one source), inbound: the address
// the API server saw the connection come from, never a client-supplied X-Forwarded-For
// entry, which any client can write; nil when no peer address parses.
func network(a alert.Alert) *types.Network {
	for _, t := range a.ThreatObjects {
		if t.Origin != alert.OriginPeer {
			continue
		}
		ip, err := netip.ParseAddr(t.Value)
		if err != nil {
			continue
		}
		n := &types.Network{Direction: types.NetworkDirectionIn}
		if ip.Unmap().Is4() {
			n.SourceIpV4 = aws.String(ip.Unmap().String())
		} else {
			n.SourceIpV6 = aws.String(ip.String())
		}
		return n
	}
	return nil
}

// productFields carry what ASFF has no place for: the alert's id and kind, its window, the
// attempts, and every source IP.
func productFields(a alert.Alert) map[string]string {
	pf := map[string]string{
		"alertId":        a.ID,
		"alertKind":      string(a.Kind),
		"ruleId":         a.Rule.ID,
		"windowStart":    stamp(a.Window.Start),
		"windowEnd":      stamp(a.Window.End),
		"attempts":       strconv.FormatInt(a.Attempts, 10),
		"riskScore":      strconv.Itoa(a.RiskScore),
		"user":           a.RiskObject.Value,
		"mitreTechnique": a.MITRE.TechniqueID,
	}
	if a.Source.LogGroup != "" {
		pf["logGroup"] = a.Source.LogGroup
	}
	if a.PossibleDuplicate {
		pf["possibleDuplicate"] = "true"
	}
	if a.Escalation != nil {
		pf["firstAlertId"] = a.Escalation.FirstAlertID
		pf["threshold"] = strconv.FormatInt(a.Escalation.Threshold, 10)
	}
	var ips, peers []string
	for _, t := range a.ThreatObjects {
		ips = append(ips, t.Value)
		if t.Origin == alert.OriginPeer {
			peers = append(peers, t.Value)
		}
	}
	if len(ips) > 0 {
		pf["sourceIps"] = strings.Join(ips, ",")
	}
	if len(peers) > 0 {
		pf["peerAddresses"] = strings.Join(peers, ",")
	}
	// The first IAM identity's session and access key: CloudTrail finds the session by
	// them (the session name was chosen by the caller; the key was verified by STS).
	for _, id := range a.Identities {
		if id.Kind == alert.IdentityIAM {
			pf["iamPrincipal"], pf["iamSessionName"], pf["iamAccessKeyId"] = id.CanonicalARN, id.SessionName, id.AccessKeyID
			break
		}
	}
	for k, v := range pf {
		if v == "" {
			delete(pf, k)
		}
	}
	for k, v := range pf {
		pf[k] = cut(v, maxProductValue)
	}
	return pf
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

// cut bounds s to limit characters, marking the cut.
func cut(s string, limit int) string {
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	return string([]rune(s)[:limit-1]) + "…"
}

// Importer imports the findings of alerts into one account's Security Hub.
type Importer struct {
	client *securityhub.Client
	target Target
}

// New returns an Importer into t.
func New(client *securityhub.Client, t Target) *Importer {
	return &Importer{client: client, target: t}
}

// Name names the output in claim items, logs and metrics.
func (*Importer) Name() string { return "securityhub" }

// Wants reports whether a message of kind k becomes a finding: alerts and their updates,
// not the hourly report.
func (*Importer) Wants(k alert.Kind) bool { return k == alert.KindFirst || k == alert.KindEscalation }

// Send imports the finding of the structured alert in m and returns the finding's Id.
// Errors are *notify.Error values that never say the finding may have been imported:
// importing it again is an update of the same finding, so retrying is always safe (the
// SDK's own retries stay on).
func (i *Importer) Send(ctx context.Context, m alert.Message) (string, error) {
	body, err := alert.Structured(m)
	if err != nil {
		return "", fmt.Errorf("import finding: %w", err)
	}
	var a alert.Alert
	if err := json.Unmarshal(body, &a); err != nil {
		return "", fmt.Errorf("import finding: decode structured alert: %w", err)
	}
	f := Build(a, i.target)
	out, err := i.client.BatchImportFindings(ctx, &securityhub.BatchImportFindingsInput{Findings: []types.AwsSecurityFinding{f}})
	if err != nil {
		return "", &notify.Error{Retryable: notify.Classify(err), Err: fmt.Errorf("import finding %s: %w", aws.ToString(f.Id), err)}
	}
	if aws.ToInt32(out.FailedCount) > 0 || len(out.FailedFindings) > 0 {
		code, msg := "", ""
		if len(out.FailedFindings) > 0 {
			code, msg = aws.ToString(out.FailedFindings[0].ErrorCode), aws.ToString(out.FailedFindings[0].ErrorMessage)
		}
		err := notify.Refused("import finding "+aws.ToString(f.Id), code, msg)
		return "", &notify.Error{Retryable: notify.Classify(err), Err: err}
	}
	return aws.ToString(f.Id), nil
}
