package sam

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// orgTemplate loads a template of infra/org as written (intrinsics in long form).
func orgTemplate(t *testing.T, name string) map[string]any {
	t.Helper()
	tmpl, err := loadTemplate(filepath.Join(repoRoot(t), "infra", "org", name))
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

// orgResources returns the template's resources by logical id.
func orgResources(tmpl map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	res, _ := tmpl["Resources"].(map[string]any)
	for id, r := range res {
		if m, ok := r.(map[string]any); ok {
			out[id] = m
		}
	}
	return out
}

// wildcardGrants returns the Allow statements of the IAM policies of resources that grant
// "*" actions or resources.
func wildcardGrants(resources map[string]map[string]any) []error {
	var errs []error
	check := func(where string, doc any) {
		for _, st := range statements(doc) {
			if st["Effect"] != "Allow" {
				continue
			}
			for _, a := range stringList(st["Action"]) {
				if strings.Contains(a, "*") {
					errs = append(errs, fmt.Errorf("%s: action %q", where, a))
				}
			}
			if r, ok := st["Resource"].(string); ok && r == "*" {
				errs = append(errs, fmt.Errorf("%s: resource *", where))
			}
		}
	}
	for id, r := range resources {
		p := props(r)
		switch r["Type"] {
		case "AWS::IAM::Role":
			pols, _ := p["Policies"].([]any)
			for _, pol := range pols {
				check(id, pol.(map[string]any)["PolicyDocument"])
			}
		case "AWS::IAM::RolePolicy":
			check(id, p["PolicyDocument"])
		}
	}
	return errs
}

func checkCentral(tmpl map[string]any) []error {
	var errs []error
	res := orgResources(tmpl)
	esm := props(res["StreamMapping"])
	if esm == nil {
		return []error{fmt.Errorf("no StreamMapping")}
	}
	if fmt.Sprint(esm["FunctionResponseTypes"]) != "[ReportBatchItemFailures]" {
		errs = append(errs, fmt.Errorf("FunctionResponseTypes = %v, want [ReportBatchItemFailures]", esm["FunctionResponseTypes"]))
	}
	if esm["BisectBatchOnFunctionError"] != true {
		errs = append(errs, fmt.Errorf("BisectBatchOnFunctionError = %v, want true", esm["BisectBatchOnFunctionError"]))
	}
	for _, k := range []string{"MaximumRetryAttempts", "MaximumRecordAgeInSeconds"} {
		if esm[k] == nil {
			errs = append(errs, fmt.Errorf("%s unset: a bad record would block its shard until it expires", k))
		}
	}
	dest, _ := esm["DestinationConfig"].(map[string]any)
	onFailure, _ := dest["OnFailure"].(map[string]any)
	if fmt.Sprint(onFailure["Destination"]) != "map[Fn::GetAtt:StreamFailureQueue.Arn]" {
		errs = append(errs, fmt.Errorf("OnFailure destination = %v, want the stream failure queue", onFailure["Destination"]))
	}
	stream := props(res["AuditStream"])
	enc, _ := stream["StreamEncryption"].(map[string]any)
	mode, _ := stream["StreamModeDetails"].(map[string]any)
	if enc["EncryptionType"] != "KMS" || mode["StreamMode"] != "ON_DEMAND" {
		errs = append(errs, fmt.Errorf("stream encryption %v, mode %v: want KMS, ON_DEMAND", enc, mode))
	}
	// The destination policy: the organization condition, or named accounts; never anyone.
	policy, _ := props(res["Destination"])["DestinationPolicy"].(map[string]any)
	branches, _ := policy["Fn::If"].([]any)
	if len(branches) != 3 {
		return append(errs, fmt.Errorf("DestinationPolicy is not an Fn::If on the organization: %v", policy))
	}
	for i, b := range branches[1:] {
		sub, _ := b.(map[string]any)["Fn::Sub"].([]any)
		if len(sub) == 0 {
			errs = append(errs, fmt.Errorf("destination policy branch %d is not an Fn::Sub", i))
			continue
		}
		text, _ := sub[0].(string)
		var doc map[string]any
		if err := json.Unmarshal([]byte(text), &doc); err != nil {
			errs = append(errs, fmt.Errorf("destination policy branch %d is not JSON: %v", i, err))
			continue
		}
		for _, st := range statements(doc) {
			cond := fmt.Sprint(st["Condition"])
			if st["Principal"] == "*" && !strings.Contains(cond, "aws:PrincipalOrgID") {
				errs = append(errs, fmt.Errorf("destination policy branch %d lets any principal subscribe", i))
			}
			if acts := strings.Join(stringList(st["Action"]), ","); acts != "logs:PutSubscriptionFilter,logs:PutAccountPolicy" {
				errs = append(errs, fmt.Errorf("destination policy branch %d allows %s", i, acts))
			}
		}
	}
	return append(errs, wildcardGrants(res)...)
}

func checkMember(tmpl map[string]any) []error {
	var errs []error
	res := orgResources(tmpl)
	pol := res["AuditAccountPolicy"]
	p := props(pol)
	if p["PolicyType"] != "SUBSCRIPTION_FILTER_POLICY" || p["Scope"] != "ALL" || pol["Condition"] != "UseAccountPolicy" {
		errs = append(errs, fmt.Errorf("account policy %v: want a SUBSCRIPTION_FILTER_POLICY of scope ALL in mode AccountPolicy", pol))
	}
	doc, _ := p["PolicyDocument"].(map[string]any)
	body, _ := doc["Fn::ToJsonString"].(map[string]any)
	if fmt.Sprint(body["DestinationArn"]) != "map[Ref:DestinationArn]" || fmt.Sprint(body["FilterPattern"]) != "map[Ref:FilterPattern]" {
		errs = append(errs, fmt.Errorf("account policy document %v: want the destination and the filter pattern", doc))
	}
	loop, _ := tmpl["Resources"].(map[string]any)["Fn::ForEach::Subscriptions"].([]any)
	if len(loop) != 3 {
		return append(errs, fmt.Errorf("no per-log-group subscriptions"))
	}
	sub, _ := loop[2].(map[string]any)["Subscription&{LogGroupName}"].(map[string]any)
	if sub["Condition"] != "UseLogGroups" || fmt.Sprint(props(sub)["DestinationArn"]) != "map[Ref:DestinationArn]" {
		errs = append(errs, fmt.Errorf("per-log-group subscription %v: want mode LogGroups, to the destination", sub))
	}
	return append(errs, wildcardGrants(res)...)
}

// TestOrgTemplates checks the organization templates for what the issue requires and what
// cfn-lint cannot know: partial batch responses, bisection, bounded retries, a failure
// destination, an encrypted on-demand stream, a destination only the organization or named
// accounts may subscribe to, and no wildcard grant. (cfn-lint validates them in TestCfnLint.)
func TestOrgTemplates(t *testing.T) {
	for _, e := range checkCentral(orgTemplate(t, "central.yaml")) {
		t.Errorf("central.yaml: %v", e)
	}
	for _, e := range checkMember(orgTemplate(t, "member.yaml")) {
		t.Errorf("member.yaml: %v", e)
	}
}

// TestOrgChecksCatchMistakes breaks the templates the ways the checks exist for.
func TestOrgChecksCatchMistakes(t *testing.T) {
	for name, c := range map[string]struct {
		file    string
		breakIt func(tmpl map[string]any)
		check   func(map[string]any) []error
	}{
		"no partial batch response": {"central.yaml", func(tm map[string]any) {
			delete(props(orgResources(tm)["StreamMapping"]), "FunctionResponseTypes")
		}, checkCentral},
		"unbounded retries": {"central.yaml", func(tm map[string]any) {
			delete(props(orgResources(tm)["StreamMapping"]), "MaximumRetryAttempts")
		}, checkCentral},
		"destination open to anyone": {"central.yaml", func(tm map[string]any) {
			p := props(orgResources(tm)["Destination"])
			sub := p["DestinationPolicy"].(map[string]any)["Fn::If"].([]any)[1].(map[string]any)["Fn::Sub"].([]any)
			sub[0] = strings.Replace(sub[0].(string), `"aws:PrincipalOrgID"`, `"aws:SourceIp"`, 1)
		}, checkCentral},
		"wildcard read": {"central.yaml", func(tm map[string]any) {
			st := statements(props(orgResources(tm)["FunctionStreamAccess"])["PolicyDocument"])
			st[0]["Action"] = "kinesis:*"
		}, checkCentral},
		"account policy without the filter pattern": {"member.yaml", func(tm map[string]any) {
			doc := props(orgResources(tm)["AuditAccountPolicy"])["PolicyDocument"].(map[string]any)
			delete(doc["Fn::ToJsonString"].(map[string]any), "FilterPattern")
		}, checkMember},
	} {
		t.Run(name, func(t *testing.T) {
			tm := orgTemplate(t, c.file)
			if errs := c.check(tm); len(errs) != 0 {
				t.Fatalf("unbroken template fails: %v", errs)
			}
			c.breakIt(tm)
			if errs := c.check(tm); len(errs) == 0 {
				t.Error("the broken template passes")
			}
		})
	}
}
