package sam

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/awslabs/goformation/v7"
	"github.com/awslabs/goformation/v7/intrinsics"
	"github.com/awslabs/goformation/v7/schema"
	"github.com/xeipuuv/gojsonschema"

	"github.com/eks-unauthorized-access/detector/internal/config"
)

const templatePath = "../../template.yaml"

// functionID is the logical id of the detector function, used by sam build and sam local.
const functionID = "UnauthorizedAccessFunction"

var samSchema = sync.OnceValues(func() (*gojsonschema.Schema, error) {
	return gojsonschema.NewSchema(gojsonschema.NewStringLoader(schema.SamSchema))
})

// schemaGaps lists properties newer than goformation's SAM schema. Each is removed before
// schema validation and checked instead against the CloudFormation definition it is
// passed through to.
var schemaGaps = []struct {
	resourceType, property, passThroughType string
}{
	{"AWS::Serverless::Function", "LoggingConfig", "AWS::Lambda::Function"},
}

// validateSchema checks a rendered template against the SAM JSON schema.
func validateSchema(rendered map[string]any) []error {
	s, err := samSchema()
	if err != nil {
		return []error{fmt.Errorf("compile SAM schema: %w", err)}
	}
	doc := deepCopy(rendered).(map[string]any)
	var probes []map[string]any
	for id, res := range doc["Resources"].(map[string]any) {
		res := res.(map[string]any)
		props, _ := res["Properties"].(map[string]any)
		for _, g := range schemaGaps {
			if res["Type"] != g.resourceType {
				continue
			}
			if v, ok := props[g.property]; ok {
				delete(props, g.property)
				probes = append(probes, map[string]any{"Transform": doc["Transform"], "Resources": map[string]any{
					"Probe" + nonAlnum.ReplaceAllString(id, ""): map[string]any{
						"Type": g.passThroughType,
						"Properties": map[string]any{
							g.property: v,
							// Required by the pass-through type; not under test.
							"Code": map[string]any{}, "Role": "arn:aws:iam::123456789012:role/probe",
						},
					},
				}})
			}
		}
	}
	var errs []error
	for _, d := range append([]map[string]any{doc}, probes...) {
		res, err := s.Validate(gojsonschema.NewGoLoader(d))
		if err != nil {
			return []error{fmt.Errorf("validate: %w", err)}
		}
		for _, e := range res.Errors() {
			errs = append(errs, fmt.Errorf("schema: %s", e))
		}
	}
	return errs
}

// scenario is one set of parameter values the template must deploy correctly with.
type scenario struct {
	name      string
	params    map[string]string
	logGroups []string
	email     bool
	slack     bool
	ssm       string // SuppressionsParameterName
	ssmKey    string // SuppressionsParameterKeyArn
	readers   []string
	reserved  bool
	// securityHub and eventBus are the integrations' parameters (EnableSecurityHub=true,
	// EventBusName).
	securityHub bool
	eventBus    string
}

var scenarios = []scenario{
	{
		name:      "defaults, one cluster",
		params:    map[string]string{"LogGroupNames": "/aws/eks/prod/cluster"},
		logGroups: []string{"/aws/eks/prod/cluster"},
	},
	{
		name: "three clusters with email, Slack, suppressions parameter and reserved concurrency",
		params: map[string]string{
			"LogGroupNames":               "/aws/eks/prod/cluster, /aws/eks/staging/cluster,/aws/eks/dev-1/cluster",
			"AlertEmail":                  "secops@example.com",
			"SlackWorkspaceId":            "T0123ABCD",
			"SlackChannelId":              "C0123ABCD",
			"SuppressionsParameterName":   "/detector/suppressions",
			"ReservedConcurrency":         "5",
			"AlertGroupBy":                "user,src_ip",
			"MatchMode":                   "broad",
			"SuppressionsParameterKeyArn": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
			"FailureQueueReaderArns":      "arn:aws:iam::123456789012:role/secops,arn:aws:iam::123456789012:role/ir-*",
		},
		logGroups: []string{"/aws/eks/prod/cluster", "/aws/eks/staging/cluster", "/aws/eks/dev-1/cluster"},
		email:     true, slack: true, ssm: "/detector/suppressions", reserved: true,
		ssmKey:  "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		readers: []string{"arn:aws:iam::123456789012:role/secops", "arn:aws:iam::123456789012:role/ir-*"},
	},
	{
		name:      "Slack workspace without channel creates no Chatbot resources",
		params:    map[string]string{"LogGroupNames": "/aws/eks/a/cluster,/aws/eks/b/cluster", "SlackWorkspaceId": "T0123ABCD"},
		logGroups: []string{"/aws/eks/a/cluster", "/aws/eks/b/cluster"},
	},
	{
		name:        "Security Hub and a named event bus",
		params:      map[string]string{"LogGroupNames": "/aws/eks/prod/cluster", "EnableSecurityHub": "true", "EventBusName": "security"},
		logGroups:   []string{"/aws/eks/prod/cluster"},
		securityHub: true,
		eventBus:    "security",
	},
}

func loadAndRender(t *testing.T, params map[string]string) map[string]any {
	t.Helper()
	tmpl, err := loadTemplate(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	rendered, err := render(tmpl, params)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return rendered
}

func TestTemplate(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			rendered := loadAndRender(t, sc.params)
			for _, e := range validateSchema(rendered) {
				t.Error(e)
			}
			for _, check := range []func(map[string]any, scenario) []error{
				checkFunction, checkLeastPrivilege, checkTable, checkTopicEncryption,
				checkFailureDestination, checkSubscriptions, checkAlarms, checkOptional, checkOutputs,
				checkRetained, checkTopicPolicy, checkQueuePolicy,
			} {
				for _, e := range check(rendered, sc) {
					t.Error(e)
				}
			}
		})
	}
}

// TestGoformationParses reads the rendered template with goformation's typed model, the way
// tools built on it would.
func TestGoformationParses(t *testing.T) {
	rendered := loadAndRender(t, scenarios[1].params)
	// goformation's model predates these properties (checked in TestTemplate instead).
	for _, g := range schemaGaps {
		for _, r := range resourcesOfType(rendered, g.resourceType) {
			delete(props(r), g.property)
		}
	}
	// goformation's schema wants MinValue/MaxValue as strings, its Go model as numbers:
	// the parameters were validated against the schema, the model reads resources only.
	delete(rendered, "Parameters")
	data, err := json.Marshal(rendered)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := goformation.ParseJSONWithOptions(data, &intrinsics.ProcessorOptions{NoProcess: true})
	if err != nil {
		t.Fatalf("goformation: %v", err)
	}
	fn, err := tmpl.GetServerlessFunctionWithName(functionID)
	if err != nil {
		t.Fatalf("function: %v", err)
	}
	if fn.Runtime == nil || *fn.Runtime != "provided.al2023" || !slices.Equal(fn.Architectures, []string{"arm64"}) {
		t.Errorf("runtime %v, architectures %v", fn.Runtime, fn.Architectures)
	}
	if got := len(tmpl.GetAllLogsSubscriptionFilterResources()); got != 3 {
		t.Errorf("%d subscription filters, want 3", got)
	}
}

// The checks below must fail on templates that break them: see TestChecksCatchMistakes.

func resourcesOfType(rendered map[string]any, typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range rendered["Resources"].(map[string]any) {
		r := r.(map[string]any)
		if r["Type"] == typ {
			out[id] = r
		}
	}
	return out
}

func props(r map[string]any) map[string]any {
	p, _ := r["Properties"].(map[string]any)
	return p
}

func resource(rendered map[string]any, id string) map[string]any {
	r, _ := rendered["Resources"].(map[string]any)[id].(map[string]any)
	return r
}

func checkFunction(rendered map[string]any, sc scenario) []error {
	fn := resource(rendered, functionID)
	if fn == nil || fn["Type"] != "AWS::Serverless::Function" {
		return []error{fmt.Errorf("no AWS::Serverless::Function %s", functionID)}
	}
	var errs []error
	p := props(fn)
	want := map[string]any{"Runtime": "provided.al2023", "Handler": "bootstrap", "CodeUri": "."}
	for k, v := range want {
		if p[k] != v {
			errs = append(errs, fmt.Errorf("function %s = %v, want %v", k, p[k], v))
		}
	}
	if a, _ := p["Architectures"].([]any); len(a) != 1 || a[0] != "arm64" {
		errs = append(errs, fmt.Errorf("function Architectures = %v, want [arm64]", p["Architectures"]))
	}
	if md, _ := fn["Metadata"].(map[string]any); md["BuildMethod"] != "makefile" {
		errs = append(errs, fmt.Errorf("function Metadata.BuildMethod = %v, want makefile", md["BuildMethod"]))
	}
	if lc, _ := p["LoggingConfig"].(map[string]any); lc["LogFormat"] != "JSON" {
		errs = append(errs, fmt.Errorf("function LoggingConfig.LogFormat = %v, want JSON", lc["LogFormat"]))
	}
	env, _ := p["Environment"].(map[string]any)
	vars, _ := env["Variables"].(map[string]any)
	wantVars := map[string]string{
		"TABLE_NAME": refPlaceholder("AlertsTable"), "TOPIC_ARN": refPlaceholder("AlertTopic"),
		"ALERT_GROUP_BY": "", "RETENTION": "", "MAX_DECOMPRESSED_BYTES": "", "MATCH_MODE": "",
		"SUPPRESSIONS": "", "SUPPRESSIONS_PARAMETER": sc.ssm,
		"LOG_GROUP_PATTERNS": "/aws/eks/*/cluster", "LOG_STREAM_PATTERNS": "kube-apiserver-audit-*",
	}
	for k, v := range wantVars {
		got, ok := vars[k].(string)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("environment variable %s missing or not a string", k))
		case (v != "" || k == "SUPPRESSIONS_PARAMETER") && got != v:
			errs = append(errs, fmt.Errorf("environment variable %s = %q, want %q", k, got, v))
		}
	}
	if p["MemorySize"] != 256.0 {
		errs = append(errs, fmt.Errorf("function MemorySize = %v, want the MemorySize parameter (256 by default)", p["MemorySize"]))
	}
	if vars["MAX_DECOMPRESSED_BYTES"] != "67108864" {
		errs = append(errs, fmt.Errorf("MAX_DECOMPRESSED_BYTES = %v, want 67108864", vars["MAX_DECOMPRESSED_BYTES"]))
	}
	if p["Role"] != getAttPlaceholder(functionID+"Role", "Arn") {
		errs = append(errs, fmt.Errorf("function Role = %v, want the template's own role", p["Role"]))
	}
	return errs
}

// statements returns the statements of a policy document.
func statements(doc any) []map[string]any {
	d, _ := doc.(map[string]any)
	var out []map[string]any
	switch s := d["Statement"].(type) {
	case []any:
		for _, e := range s {
			out = append(out, e.(map[string]any))
		}
	case map[string]any:
		out = append(out, s)
	}
	return out
}

func stringList(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
		return out
	}
	return nil
}

// ownLogStreams are the only wildcard resources allowed: the streams, named by Lambda, of
// each function's own log group.
var ownLogStreams = map[string]string{
	functionID + "Role":        "arn:aws:logs:eu-west-1:123456789012:log-group:" + refPlaceholder("FunctionLogGroup") + ":log-stream:*",
	"HourlyReportFunctionRole": "arn:aws:logs:eu-west-1:123456789012:log-group:" + refPlaceholder("ReportLogGroup") + ":log-stream:*",
}

func checkLeastPrivilege(rendered map[string]any, sc scenario) []error {
	var errs []error
	if p := props(resource(rendered, functionID)); p["Policies"] != nil {
		errs = append(errs, errors.New("function uses SAM Policies (policy templates or managed policies)"))
	}
	for id, role := range resourcesOfType(rendered, "AWS::IAM::Role") {
		p := props(role)
		if p["ManagedPolicyArns"] != nil {
			errs = append(errs, fmt.Errorf("role %s attaches managed policies", id))
		}
		pols, _ := p["Policies"].([]any)
		for _, pol := range pols {
			for _, st := range statements(pol.(map[string]any)["PolicyDocument"]) {
				if st["NotAction"] != nil || st["NotResource"] != nil {
					errs = append(errs, fmt.Errorf("role %s: NotAction/NotResource", id))
				}
				for _, a := range stringList(st["Action"]) {
					if strings.Contains(a, "*") {
						errs = append(errs, fmt.Errorf("role %s: wildcard action %s", id, a))
					}
				}
				for _, r := range stringList(st["Resource"]) {
					if strings.Contains(r, "*") && r != ownLogStreams[id] {
						errs = append(errs, fmt.Errorf("role %s: wildcard resource %s", id, r))
					}
				}
			}
		}
	}

	// The function's role grants exactly these actions on exactly these resources.
	want := map[string]string{
		"logs:CreateLogStream": ownLogStreams[functionID+"Role"],
		"logs:PutLogEvents":    ownLogStreams[functionID+"Role"],
		"dynamodb:UpdateItem":  getAttPlaceholder("AlertsTable", "Arn"),
		"dynamodb:Query":       getAttPlaceholder("AlertsTable", "Arn"),
		"sns:Publish":          refPlaceholder("AlertTopic"),
		"sqs:SendMessage":      getAttPlaceholder("FailureQueue", "Arn"),
		"kms:GenerateDataKey":  getAttPlaceholder("AlertsKey", "Arn"),
		"kms:Decrypt":          getAttPlaceholder("AlertsKey", "Arn"),
	}
	if sc.ssm != "" {
		want["ssm:GetParameter"] = "arn:aws:ssm:eu-west-1:123456789012:parameter" + sc.ssm
	}
	// The integrations: this account's default Security Hub product and the one bus.
	if sc.securityHub {
		want["securityhub:BatchImportFindings"] = "arn:aws:securityhub:eu-west-1:123456789012:product/123456789012/default"
	}
	if sc.eventBus != "" {
		want["events:PutEvents"] = "arn:aws:events:eu-west-1:123456789012:event-bus/" + sc.eventBus
	}
	got := map[string][]string{}
	role := resource(rendered, functionID+"Role")
	pols, _ := props(role)["Policies"].([]any)
	for _, pol := range pols {
		for _, st := range statements(pol.(map[string]any)["PolicyDocument"]) {
			if st["Effect"] != "Allow" {
				continue
			}
			for _, a := range stringList(st["Action"]) {
				got[a] = append(got[a], stringList(st["Resource"])...)
			}
		}
	}
	wantAll := map[string][]string{}
	for a, r := range want {
		wantAll[a] = []string{r}
	}
	if sc.ssmKey != "" {
		wantAll["kms:Decrypt"] = append(wantAll["kms:Decrypt"], sc.ssmKey)
		var via any
		for _, pol := range pols {
			for _, st := range statements(pol.(map[string]any)["PolicyDocument"]) {
				if st["Sid"] == "SuppressionsParameterKey" {
					cond, _ := st["Condition"].(map[string]any)
					eq, _ := cond["StringEquals"].(map[string]any)
					via = eq["kms:ViaService"]
				}
			}
		}
		if via != "ssm.eu-west-1.amazonaws.com" {
			errs = append(errs, fmt.Errorf("function role: kms:Decrypt on the suppressions key not limited to SSM (kms:ViaService %v)", via))
		}
	}
	for a, r := range wantAll {
		if !slices.Equal(got[a], r) {
			errs = append(errs, fmt.Errorf("function role: %s on %v, want on %s", a, got[a], r))
		}
	}
	for a := range got {
		if _, ok := wantAll[a]; !ok {
			errs = append(errs, fmt.Errorf("function role: unexpected action %s", a))
		}
	}
	return errs
}

func checkTable(rendered map[string]any, _ scenario) []error {
	p := props(resource(rendered, "AlertsTable"))
	var errs []error
	if p["BillingMode"] != "PAY_PER_REQUEST" {
		errs = append(errs, fmt.Errorf("table BillingMode = %v", p["BillingMode"]))
	}
	ttl, _ := p["TimeToLiveSpecification"].(map[string]any)
	if ttl["AttributeName"] != "expiresAt" || ttl["Enabled"] != true {
		errs = append(errs, fmt.Errorf("table TTL = %v, want expiresAt enabled", ttl))
	}
	pitr, _ := p["PointInTimeRecoverySpecification"].(map[string]any)
	if pitr["PointInTimeRecoveryEnabled"] != true {
		errs = append(errs, errors.New("table point-in-time recovery is off"))
	}
	sse, _ := p["SSESpecification"].(map[string]any)
	if sse["SSEEnabled"] != true {
		errs = append(errs, errors.New("table SSE is off"))
	}
	b, _ := json.Marshal(p["KeySchema"])
	if string(b) != `[{"AttributeName":"pk","KeyType":"HASH"},{"AttributeName":"sk","KeyType":"RANGE"}]` {
		errs = append(errs, fmt.Errorf("table KeySchema = %s", b))
	}
	return errs
}

func checkTopicEncryption(rendered map[string]any, _ scenario) []error {
	var errs []error
	topics := resourcesOfType(rendered, "AWS::SNS::Topic")
	if len(topics) != 1 {
		return []error{fmt.Errorf("%d topics, want 1", len(topics))}
	}
	for id, tp := range topics {
		// A customer managed key from this template: CloudWatch alarms cannot publish to a
		// topic encrypted with the AWS managed key alias/aws/sns.
		if k := props(tp)["KmsMasterKeyId"]; k != refPlaceholder("AlertsKey") {
			errs = append(errs, fmt.Errorf("topic %s KmsMasterKeyId = %v, want the template's key", id, k))
		}
	}
	key := props(resource(rendered, "AlertsKey"))
	if key["EnableKeyRotation"] != true {
		errs = append(errs, errors.New("key rotation is off"))
	}
	cloudwatch := false
	for _, st := range statements(key["KeyPolicy"]) {
		principal, _ := st["Principal"].(map[string]any)
		switch {
		case principal["AWS"] == "arn:aws:iam::123456789012:root":
			// The default key policy: administration through the account's IAM policies.
		case principal["Service"] != nil:
			for _, a := range stringList(st["Action"]) {
				if a != "kms:Decrypt" && a != "kms:GenerateDataKey" {
					errs = append(errs, fmt.Errorf("key policy: service %v gets %s", principal["Service"], a))
				}
			}
			if cond, _ := st["Condition"].(map[string]any); cond["StringEquals"] == nil {
				errs = append(errs, fmt.Errorf("key policy: service %v not bound to this account", principal["Service"]))
			}
			if principal["Service"] == "cloudwatch.amazonaws.com" {
				cloudwatch = true
			}
			if cond, _ := st["Condition"].(map[string]any); cond["ArnLike"] == nil && cond["ArnEquals"] == nil {
				errs = append(errs, fmt.Errorf("key policy: service %v may use the key for any resource of the account (no aws:SourceArn)", principal["Service"]))
			}
		default:
			errs = append(errs, fmt.Errorf("key policy: unexpected principal %v", st["Principal"]))
		}
	}
	if !cloudwatch {
		errs = append(errs, errors.New("key policy does not let CloudWatch alarms use the key"))
	}
	return errs
}

func checkFailureDestination(rendered map[string]any, sc scenario) []error {
	var errs []error
	configs := resourcesOfType(rendered, "AWS::Lambda::EventInvokeConfig")
	found := false
	for id, c := range configs {
		p := props(c)
		if p["FunctionName"] != refPlaceholder(functionID) {
			continue
		}
		found = true
		dc, _ := p["DestinationConfig"].(map[string]any)
		of, _ := dc["OnFailure"].(map[string]any)
		if of["Destination"] != getAttPlaceholder("FailureQueue", "Arn") {
			errs = append(errs, fmt.Errorf("%s: OnFailure destination = %v, want the failure queue", id, of["Destination"]))
		}
		if p["MaximumRetryAttempts"] != 2.0 {
			errs = append(errs, fmt.Errorf("%s: MaximumRetryAttempts = %v, want 2", id, p["MaximumRetryAttempts"]))
		}
	}
	if !found {
		errs = append(errs, errors.New("no EventInvokeConfig with an on-failure destination for the function"))
	}
	if k := props(resource(rendered, "FailureQueue"))["KmsMasterKeyId"]; k == nil {
		errs = append(errs, errors.New("failure queue is not encrypted with KMS"))
	}
	return errs
}

func checkSubscriptions(rendered map[string]any, sc scenario) []error {
	var errs []error
	filters := resourcesOfType(rendered, "AWS::Logs::SubscriptionFilter")
	perms := resourcesOfType(rendered, "AWS::Lambda::Permission")
	var groups, sources []string
	for id, f := range filters {
		p := props(f)
		groups = append(groups, fmt.Sprint(p["LogGroupName"]))
		if p["DestinationArn"] != getAttPlaceholder(functionID, "Arn") {
			errs = append(errs, fmt.Errorf("%s: destination %v", id, p["DestinationArn"]))
		}
		if p["FilterPattern"] != `{ ($.verb = "create") && ($.responseStatus.reason = "Forbidden") }` {
			errs = append(errs, fmt.Errorf("%s: filter pattern %v", id, p["FilterPattern"]))
		}
		// CloudWatch Logs test-invokes the function when the filter is created: the filter
		// must come after the permission for its own log group. The name refers to the
		// permission (an implicit dependency; DependsOn cannot name it inside Fn::ForEach).
		perm := permissionOf(fmt.Sprint(p["FilterName"]))
		pp := props(resource(rendered, perm))
		if pp == nil || resource(rendered, perm)["Type"] != "AWS::Lambda::Permission" {
			errs = append(errs, fmt.Errorf("%s: name %v does not refer to an invoke permission", id, p["FilterName"]))
		} else if want := "arn:aws:logs:eu-west-1:123456789012:log-group:" + fmt.Sprint(p["LogGroupName"]) + ":*"; pp["SourceArn"] != want {
			errs = append(errs, fmt.Errorf("%s: refers to permission %s for %v, want the one for %s", id, perm, pp["SourceArn"], want))
		}
	}
	for id, pm := range perms {
		p := props(pm)
		if p["Principal"] != "logs.amazonaws.com" || p["SourceAccount"] != "123456789012" {
			errs = append(errs, fmt.Errorf("%s: principal %v, source account %v", id, p["Principal"], p["SourceAccount"]))
		}
		sources = append(sources, fmt.Sprint(p["SourceArn"]))
	}
	var wantSources []string
	for _, g := range sc.logGroups {
		wantSources = append(wantSources, "arn:aws:logs:eu-west-1:123456789012:log-group:"+g+":*")
	}
	sort.Strings(groups)
	sort.Strings(sources)
	want := slices.Sorted(slices.Values(sc.logGroups))
	sort.Strings(wantSources)
	if !slices.Equal(groups, want) {
		errs = append(errs, fmt.Errorf("subscribed log groups %v, want %v", groups, want))
	}
	if !slices.Equal(sources, wantSources) {
		errs = append(errs, fmt.Errorf("invoke permissions for %v, want %v", sources, wantSources))
	}
	return errs
}

// checkRetained: deleting or replacing the stack keeps the dedup state, the key and the
// parked deliveries.
func checkRetained(rendered map[string]any, _ scenario) []error {
	var errs []error
	for _, id := range []string{"AlertsTable", "AlertsKey", "FailureQueue"} {
		r := resource(rendered, id)
		if r["DeletionPolicy"] != "Retain" || r["UpdateReplacePolicy"] != "Retain" {
			errs = append(errs, fmt.Errorf("%s: DeletionPolicy %v, UpdateReplacePolicy %v, want Retain", id, r["DeletionPolicy"], r["UpdateReplacePolicy"]))
		}
	}
	return errs
}

// checkTopicPolicy: only the function's role and CloudWatch may publish; Chatbot's role
// is bound to this account.
func checkTopicPolicy(rendered map[string]any, sc scenario) []error {
	var errs []error
	restricted := false
	for _, st := range statements(props(resource(rendered, "AlertTopicPolicy"))["PolicyDocument"]) {
		cond, _ := st["Condition"].(map[string]any)
		not, _ := cond["ArnNotEquals"].(map[string]any)
		svc, _ := cond["StringNotEquals"].(map[string]any)
		if st["Effect"] == "Deny" && st["Principal"] == "*" && slices.Contains(stringList(st["Action"]), "sns:Publish") &&
			slices.Equal(stringList(not["aws:PrincipalArn"]), []string{getAttPlaceholder(functionID+"Role", "Arn"), getAttPlaceholder("HourlyReportFunctionRole", "Arn")}) &&
			svc["aws:PrincipalServiceName"] == "cloudwatch.amazonaws.com" {
			restricted = true
		}
	}
	if !restricted {
		errs = append(errs, errors.New("topic policy does not deny Publish to principals other than the function's role and CloudWatch"))
	}
	if sc.slack {
		for _, st := range statements(props(resource(rendered, "ChatbotRole"))["AssumeRolePolicyDocument"]) {
			cond, _ := st["Condition"].(map[string]any)
			eq, _ := cond["StringEquals"].(map[string]any)
			if eq["aws:SourceAccount"] != "123456789012" {
				errs = append(errs, errors.New("Chatbot role: trust not bound to this account (aws:SourceAccount)"))
			}
		}
	}
	return errs
}

// checkQueuePolicy: only the listed readers may receive the parked deliveries.
func checkQueuePolicy(rendered map[string]any, sc scenario) []error {
	for _, st := range statements(props(resource(rendered, "FailureQueuePolicy"))["PolicyDocument"]) {
		if st["Effect"] != "Deny" || !slices.Contains(stringList(st["Action"]), "sqs:ReceiveMessage") {
			continue
		}
		cond, _ := st["Condition"].(map[string]any)
		if _, insecure := cond["Bool"]; insecure {
			continue
		}
		not, _ := cond["ArnNotLike"].(map[string]any)
		if got := stringList(not["aws:PrincipalArn"]); !slices.Equal(got, sc.readers) {
			return []error{fmt.Errorf("failure queue: receive denied except to %v, want %v", got, sc.readers)}
		}
		return nil
	}
	return []error{errors.New("failure queue: no statement limits who receives the parked deliveries")}
}

// permissionOf returns the logical id in a "{{<id>.Id}}" placeholder, "" if there is none.
func permissionOf(name string) string {
	id, ok := strings.CutSuffix(strings.TrimPrefix(name, "{{"), ".Id}}")
	if !ok || !strings.HasPrefix(name, "{{") {
		return ""
	}
	return id
}

func checkAlarms(rendered map[string]any, sc scenario) []error {
	want := map[string]bool{"Errors": false, "Throttles": false, "ApproximateNumberOfMessagesVisible": false, "SuppressionErrors": false, "LinesSkipped": false, "PublishOutcomeUnknown": false,
		"SuppressionUpdateRejected": false, "SuppressionsExpired": false}
	silence := map[any]bool{}
	var errs []error
	for id, a := range resourcesOfType(rendered, "AWS::CloudWatch::Alarm") {
		p := props(a)
		if !slices.Equal(stringList(p["AlarmActions"]), []string{refPlaceholder("AlertTopic")}) {
			errs = append(errs, fmt.Errorf("alarm %s does not notify the topic", id))
		}
		if name, _ := p["AlarmName"].(string); !strings.HasPrefix(name, "detector-") {
			// The key policy lets alarms named <stack>-* use the key, and no others.
			errs = append(errs, fmt.Errorf("alarm %s: name %v does not start with the stack name", id, p["AlarmName"]))
		}
		if m, ok := p["MetricName"].(string); ok {
			if _, tracked := want[m]; tracked {
				want[m] = true
			}
		}
		if p["MetricName"] == "IncomingLogEvents" && p["TreatMissingData"] == "breaching" && p["ComparisonOperator"] == "LessThanThreshold" {
			dims, _ := p["Dimensions"].([]any)
			for _, d := range dims {
				silence[d.(map[string]any)["Value"]] = true
			}
		}
	}
	for _, g := range sc.logGroups {
		if !silence[g] {
			errs = append(errs, fmt.Errorf("no alarm on a silent %s (IncomingLogEvents, missing data breaching)", g))
		}
	}
	// Dropped events count the parked ones too: the alarm must subtract them.
	lost := false
	ms, _ := props(resource(rendered, "DroppedEventsAlarm"))["Metrics"].([]any)
	for _, m := range ms {
		ms, _ := m.(map[string]any)["MetricStat"].(map[string]any)
		metric, _ := ms["Metric"].(map[string]any)
		if metric["MetricName"] == "NumberOfMessagesSent" {
			lost = true
		}
	}
	if !lost {
		errs = append(errs, errors.New("dropped-events alarm does not subtract the deliveries parked in the failure queue"))
	}
	for m, ok := range want {
		if !ok {
			errs = append(errs, fmt.Errorf("no alarm on %s", m))
		}
	}
	return errs
}

func checkOptional(rendered map[string]any, sc scenario) []error {
	var errs []error
	has := func(id string) bool { return resource(rendered, id) != nil }
	if has("AlertEmailSubscription") != sc.email {
		errs = append(errs, fmt.Errorf("email subscription present = %v, want %v", has("AlertEmailSubscription"), sc.email))
	}
	if has("SlackChannel") != sc.slack || has("ChatbotRole") != sc.slack {
		errs = append(errs, fmt.Errorf("Slack resources present = %v/%v, want %v", has("SlackChannel"), has("ChatbotRole"), sc.slack))
	}
	if sc.slack {
		p := props(resource(rendered, "SlackChannel"))
		if !slices.Equal(stringList(p["SnsTopicArns"]), []string{refPlaceholder("AlertTopic")}) {
			errs = append(errs, fmt.Errorf("Slack channel topics = %v", p["SnsTopicArns"]))
		}
		if g := stringList(p["GuardrailPolicies"]); len(g) == 0 || strings.HasSuffix(g[0], "AdministratorAccess") {
			errs = append(errs, fmt.Errorf("Slack channel guardrails = %v (the default is AdministratorAccess)", g))
		}
	}
	rc, ok := props(resource(rendered, functionID))["ReservedConcurrentExecutions"]
	if ok != sc.reserved {
		errs = append(errs, fmt.Errorf("reserved concurrency = %v, want set: %v", rc, sc.reserved))
	}
	return errs
}

func checkOutputs(rendered map[string]any, _ scenario) []error {
	outputs, _ := rendered["Outputs"].(map[string]any)
	want := map[string]string{
		"TopicArn": refPlaceholder("AlertTopic"), "TableName": refPlaceholder("AlertsTable"),
		"FailureQueueUrl": refPlaceholder("FailureQueue"), "FunctionName": refPlaceholder(functionID),
	}
	var errs []error
	for k, v := range want {
		o, _ := outputs[k].(map[string]any)
		if o["Value"] != v {
			errs = append(errs, fmt.Errorf("output %s = %v, want %s", k, o["Value"], v))
		}
	}
	return errs
}

// TestChecksCatchMistakes breaks a correct rendering in the ways the checks exist for and
// expects each break to be reported, so a check that cannot fail does not go unnoticed.
func TestChecksCatchMistakes(t *testing.T) {
	sc := scenarios[1]
	statement := func(r map[string]any, sid string) map[string]any {
		pols := props(resource(r, functionID+"Role"))["Policies"].([]any)
		for _, st := range statements(pols[0].(map[string]any)["PolicyDocument"]) {
			if st["Sid"] == sid {
				return st
			}
		}
		t.Fatalf("no statement %s", sid)
		return nil
	}
	mistakes := []struct {
		name   string
		check  func(map[string]any, scenario) []error
		break_ func(r map[string]any)
	}{
		{"x86 function", checkFunction, func(r map[string]any) {
			props(resource(r, functionID))["Architectures"] = []any{"x86_64"}
		}},
		{"go1.x runtime", checkFunction, func(r map[string]any) { props(resource(r, functionID))["Runtime"] = "go1.x" }},
		{"missing env var", checkFunction, func(r map[string]any) {
			delete(props(resource(r, functionID))["Environment"].(map[string]any)["Variables"].(map[string]any), "MATCH_MODE")
		}},
		{"text logs", checkFunction, func(r map[string]any) {
			props(resource(r, functionID))["LoggingConfig"].(map[string]any)["LogFormat"] = "Text"
		}},
		{"wildcard action", checkLeastPrivilege, func(r map[string]any) { statement(r, "Table")["Action"] = "dynamodb:*" }},
		{"wildcard resource", checkLeastPrivilege, func(r map[string]any) { statement(r, "Topic")["Resource"] = "*" }},
		{"extra action", checkLeastPrivilege, func(r map[string]any) {
			statement(r, "Table")["Action"] = []any{"dynamodb:UpdateItem", "dynamodb:Query", "dynamodb:DeleteItem"}
		}},
		{"SAM policy template", checkLeastPrivilege, func(r map[string]any) {
			props(resource(r, functionID))["Policies"] = []any{map[string]any{"DynamoDBCrudPolicy": map[string]any{"TableName": "t"}}}
		}},
		{"no TTL", checkTable, func(r map[string]any) { delete(props(resource(r, "AlertsTable")), "TimeToLiveSpecification") }},
		{"no PITR", checkTable, func(r map[string]any) {
			delete(props(resource(r, "AlertsTable")), "PointInTimeRecoverySpecification")
		}},
		{"AWS managed topic key", checkTopicEncryption, func(r map[string]any) {
			props(resource(r, "AlertTopic"))["KmsMasterKeyId"] = "alias/aws/sns"
		}},
		{"no on-failure destination", checkFailureDestination, func(r map[string]any) {
			delete(props(resource(r, functionID+"InvokeConfig")), "DestinationConfig")
		}},
		{"one cluster not subscribed", checkSubscriptions, func(r map[string]any) {
			for id := range resourcesOfType(r, "AWS::Logs::SubscriptionFilter") {
				delete(r["Resources"].(map[string]any), id)
				return
			}
		}},
		{"subscription created before its permission", checkSubscriptions, func(r map[string]any) {
			for _, f := range resourcesOfType(r, "AWS::Logs::SubscriptionFilter") {
				props(f)["FilterName"] = "detector-unauthorized-access"
			}
		}},
		{"subscription after another group's permission", checkSubscriptions, func(r map[string]any) {
			var names []any
			filters := resourcesOfType(r, "AWS::Logs::SubscriptionFilter")
			for _, id := range slices.Sorted(maps.Keys(filters)) {
				names = append(names, props(filters[id])["FilterName"])
			}
			i := 0
			for _, id := range slices.Sorted(maps.Keys(filters)) {
				props(filters[id])["FilterName"] = names[(i+1)%len(names)]
				i++
			}
		}},
		{"table deleted with the stack", checkRetained, func(r map[string]any) { delete(resource(r, "AlertsTable"), "DeletionPolicy") }},
		{"anyone may publish", checkTopicPolicy, func(r map[string]any) {
			doc := props(resource(r, "AlertTopicPolicy"))["PolicyDocument"].(map[string]any)
			doc["Statement"] = doc["Statement"].([]any)[:2]
		}},
		{"Chatbot trust without account", checkTopicPolicy, func(r map[string]any) {
			for _, st := range statements(props(resource(r, "ChatbotRole"))["AssumeRolePolicyDocument"]) {
				delete(st, "Condition")
			}
		}},
		{"anyone may read parked deliveries", checkQueuePolicy, func(r map[string]any) {
			doc := props(resource(r, "FailureQueuePolicy"))["PolicyDocument"].(map[string]any)
			doc["Statement"] = doc["Statement"].([]any)[:1]
		}},
		{"SNS may use the key for any topic", checkTopicEncryption, func(r map[string]any) {
			for _, st := range statements(props(resource(r, "AlertsKey"))["KeyPolicy"]) {
				if cond, ok := st["Condition"].(map[string]any); ok {
					delete(cond, "ArnLike")
				}
			}
		}},
		{"no kms:Decrypt for the suppressions key", checkLeastPrivilege, func(r map[string]any) {
			pols := props(resource(r, functionID+"Role"))["Policies"].([]any)
			doc := pols[0].(map[string]any)["PolicyDocument"].(map[string]any)
			var keep []any
			for _, st := range doc["Statement"].([]any) {
				if st.(map[string]any)["Sid"] != "SuppressionsParameterKey" {
					keep = append(keep, st)
				}
			}
			doc["Statement"] = keep
		}},
		{"no silence alarm", checkAlarms, func(r map[string]any) {
			for id, a := range resourcesOfType(r, "AWS::CloudWatch::Alarm") {
				if props(a)["MetricName"] == "IncomingLogEvents" {
					delete(r["Resources"].(map[string]any), id)
					return
				}
			}
		}},
		{"dropped events counting parked ones", checkAlarms, func(r map[string]any) {
			p := props(resource(r, "DroppedEventsAlarm"))
			p["Metrics"] = p["Metrics"].([]any)[:1]
		}},
		{"alarm without action", checkAlarms, func(r map[string]any) {
			delete(props(resource(r, "FailureQueueAlarm")), "AlarmActions")
		}},
		{"Slack admin guardrail", checkOptional, func(r map[string]any) {
			props(resource(r, "SlackChannel"))["GuardrailPolicies"] = []any{"arn:aws:iam::aws:policy/AdministratorAccess"}
		}},
		{"missing output", checkOutputs, func(r map[string]any) { delete(r["Outputs"].(map[string]any), "FailureQueueUrl") }},
	}
	good := loadAndRender(t, sc.params)
	for _, m := range mistakes {
		t.Run(m.name, func(t *testing.T) {
			if errs := m.check(good, sc); len(errs) != 0 {
				t.Fatalf("correct template rejected: %v", errs)
			}
			bad := deepCopy(good).(map[string]any)
			m.break_(bad)
			if errs := m.check(bad, sc); len(errs) == 0 {
				t.Error("mistake not reported")
			}
		})
	}

	t.Run("schema rejects an unknown property", func(t *testing.T) {
		bad := deepCopy(good).(map[string]any)
		props(resource(bad, "AlertsTable"))["BillingModes"] = "PAY_PER_REQUEST"
		if len(validateSchema(bad)) == 0 {
			t.Error("schema accepted an unknown table property")
		}
	})
	t.Run("schema checks properties it has no definition for", func(t *testing.T) {
		bad := deepCopy(good).(map[string]any)
		props(resource(bad, functionID))["LoggingConfig"].(map[string]any)["Format"] = "JSON"
		if len(validateSchema(bad)) == 0 {
			t.Error("schema accepted an unknown LoggingConfig property")
		}
	})
}

// TestMemoryHoldsTheCap: every pair of MaxDecompressedBytes and MemorySize the template
// accepts leaves about twice the cap plus 64 MB, and the pairs that do are accepted.
func TestMemoryHoldsTheCap(t *testing.T) {
	tmpl, err := loadTemplate(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	params := tmpl["Parameters"].(map[string]any)
	accepted := 0
	for _, c := range params["MaxDecompressedBytes"].(map[string]any)["AllowedValues"].([]any) {
		for _, m := range params["MemorySize"].(map[string]any)["AllowedValues"].([]any) {
			capBytes, _ := number(c)
			mb, _ := number(m)
			enough := mb*(1<<20) >= 2*capBytes+64*(1<<20) // Lambda's MB are MiB
			_, err := render(tmpl, map[string]string{"LogGroupNames": "/aws/eks/a/cluster", "MaxDecompressedBytes": scalarString(c), "MemorySize": scalarString(m)})
			if enough != (err == nil) {
				t.Errorf("cap %v in %v MB: render error %v, want accepted %v", c, m, err, enough)
			}
			if err == nil {
				accepted++
			}
		}
	}
	if accepted == 0 {
		t.Error("no pair accepted")
	}
}

// TestRenderRejects covers parameter values CloudFormation itself would refuse.
func TestRenderRejects(t *testing.T) {
	tmpl, err := loadTemplate(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	for name, params := range map[string]map[string]string{
		"no log groups":                    {},
		"bad match mode":                   {"LogGroupNames": "/aws/eks/a/cluster", "MatchMode": "fuzzy"},
		"relative SSM parameter":           {"LogGroupNames": "/aws/eks/a/cluster", "SuppressionsParameterName": "detector/x"},
		"log groups colliding as ids":      {"LogGroupNames": "/aws/eks/a-b/cluster,/aws/eks/ab/cluster"},
		"128 MiB cap in 256 MB":            {"LogGroupNames": "/aws/eks/a/cluster", "MaxDecompressedBytes": "134217728"},
		"64 MiB cap in 128 MB":             {"LogGroupNames": "/aws/eks/a/cluster", "MemorySize": "128"},
		"memory not offered":               {"LogGroupNames": "/aws/eks/a/cluster", "MemorySize": "300"},
		"cap not offered":                  {"LogGroupNames": "/aws/eks/a/cluster", "MaxDecompressedBytes": "1048576"},
		"retention not a number":           {"LogGroupNames": "/aws/eks/a/cluster", "Retention": "168h"},
		"retention shorter than a redrive": {"LogGroupNames": "/aws/eks/a/cluster", "Retention": "14"},
		"retention of zero":                {"LogGroupNames": "/aws/eks/a/cluster", "Retention": "0"},
	} {
		if _, err := render(tmpl, params); err == nil {
			t.Errorf("%s: rendered without error", name)
		}
	}
}

// TestRetentionCoversRedrive: the function's environment, as the template deploys it, is
// accepted by the function's own configuration loader (for the default and the smallest
// retention), and REDELIVERY_HORIZON is exactly the failure queue's retention plus the
// maximum event age, so the loader's check compares against the real bound.
func TestRetentionCoversRedrive(t *testing.T) {
	for _, retention := range []string{"", "15", "3650"} {
		params := map[string]string{"LogGroupNames": "/aws/eks/prod/cluster"}
		if retention != "" {
			params["Retention"] = retention
		}
		rendered := loadAndRender(t, params)
		vars, _ := props(resource(rendered, functionID))["Environment"].(map[string]any)["Variables"].(map[string]any)
		getenv := func(name string) string {
			switch v := vars[name].(type) {
			case string:
				return v
			case float64:
				return strconv.FormatFloat(v, 'f', -1, 64)
			}
			if name == "AWS_REGION" {
				return "eu-west-1"
			}
			return ""
		}
		cfg, err := config.Load(func(name string) string {
			if name == "TOPIC_ARN" {
				return "arn:aws:sns:eu-west-1:111122223333:alerts" // a Ref placeholder here
			}
			return getenv(name)
		})
		if err != nil {
			t.Fatalf("Retention=%q: the function refuses the template's environment: %v", retention, err)
		}
		queue := props(resource(rendered, "FailureQueue"))["MessageRetentionPeriod"]
		var maxAge any
		for _, c := range resourcesOfType(rendered, "AWS::Lambda::EventInvokeConfig") {
			if props(c)["FunctionName"] == refPlaceholder(functionID) {
				maxAge = props(c)["MaximumEventAgeInSeconds"]
			}
		}
		q, _ := queue.(float64)
		a, _ := maxAge.(float64)
		if q == 0 || a == 0 {
			t.Fatalf("failure queue retention %v, maximum event age %v: want both set", queue, maxAge)
		}
		if want := time.Duration(q+a) * time.Second; cfg.RedeliveryHorizon != want {
			t.Errorf("REDELIVERY_HORIZON = %s, want queue retention + maximum event age = %s", cfg.RedeliveryHorizon, want)
		}
		if cfg.Retention < cfg.RedeliveryHorizon {
			t.Errorf("Retention=%q: retention %s below the horizon %s", retention, cfg.Retention, cfg.RedeliveryHorizon)
		}
	}
}

// TestHourlyReportSchedule: EventBridge Scheduler runs the report function 10 minutes past
// each hour (UTC) with its scheduled time, so a late or repeated run reports the same
// window; failed runs are retried and then parked.
func TestHourlyReportSchedule(t *testing.T) {
	r := loadAndRender(t, map[string]string{"LogGroupNames": "/aws/eks/prod/cluster"})
	sched := props(resource(r, "HourlyReportSchedule"))
	target, _ := sched["Target"].(map[string]any)
	if sched["ScheduleExpression"] != "cron(10 * * * ? *)" || sched["ScheduleExpressionTimezone"] != "UTC" {
		t.Errorf("schedule %v %v, want cron(10 * * * ? *) in UTC", sched["ScheduleExpression"], sched["ScheduleExpressionTimezone"])
	}
	if target["Arn"] != getAttPlaceholder("HourlyReportFunction", "Arn") || !strings.Contains(fmt.Sprint(target["Input"]), "<aws.scheduler.scheduled-time>") {
		t.Errorf("schedule target %v: want the report function with the scheduled time", target)
	}
	fn := props(resource(r, "HourlyReportFunction"))
	if fn["Role"] != getAttPlaceholder("HourlyReportFunctionRole", "Arn") {
		t.Errorf("report function role %v, want its own", fn["Role"])
	}
	vars, _ := fn["Environment"].(map[string]any)["Variables"].(map[string]any)
	main, _ := props(resource(r, functionID))["Environment"].(map[string]any)["Variables"].(map[string]any)
	if vars["RETENTION"] != main["RETENTION"] || vars["TABLE_NAME"] != main["TABLE_NAME"] || vars["TOPIC_ARN"] != main["TOPIC_ARN"] {
		t.Errorf("report function environment %v: want the detector's table, topic and retention", vars)
	}
	found := false
	for _, c := range resourcesOfType(r, "AWS::Lambda::EventInvokeConfig") {
		p := props(c)
		if p["FunctionName"] == refPlaceholder("HourlyReportFunction") {
			dc, _ := p["DestinationConfig"].(map[string]any)
			of, _ := dc["OnFailure"].(map[string]any)
			found = of["Destination"] == getAttPlaceholder("FailureQueue", "Arn")
		}
	}
	if !found {
		t.Error("failed report runs are not parked in the failure queue")
	}
}
