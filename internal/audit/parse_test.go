package audit_test

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/eks-unauthorized-access/detector/internal/audit"
)

func TestParseClassifies(t *testing.T) {
	for _, tc := range []struct {
		name string
		line string
		want error // nil: an audit event
	}{
		{"v1", `{"kind":"Event","apiVersion":"audit.k8s.io/v1","verb":"create","stage":"ResponseComplete"}`, nil},
		{"v1beta1", `{"kind":"Event","apiVersion":"audit.k8s.io/v1beta1","verb":"get"}`, nil},
		{"no apiVersion, kind and verb", `{"kind":"Event","verb":"create","user":{"username":"a"}}`, nil},
		{"no apiVersion, kind and stage", `{"kind":"Event","stage":"ResponseComplete"}`, nil},
		{"no kind, verb and user", `{"verb":"create","user":{"username":"a"}}`, nil},
		{"no kind, verb and stage", `{"verb":"create","stage":"ResponseComplete"}`, nil},
		{"surrounding whitespace", " \t{\"apiVersion\":\"audit.k8s.io/v1\"}\r\n", nil},
		{"core v1 Event", `{"kind":"Event","apiVersion":"v1","reason":"Scheduled","verb":"create"}`, audit.ErrNotAudit},
		{"other kind", `{"kind":"Pod","verb":"create","stage":"ResponseComplete"}`, audit.ErrNotAudit},
		{"kind alone", `{"kind":"Event"}`, audit.ErrNotAudit},
		{"verb alone", `{"verb":"create"}`, audit.ErrNotAudit},
		{"kind is a number (falco fal_01_003)", `{"kind": 0}`, audit.ErrNotAudit},
		{"verb is a number", `{"apiVersion":"audit.k8s.io/v1","verb":1}`, audit.ErrNotAudit},
		{"user is a string", `{"apiVersion":"audit.k8s.io/v1","user":"alice"}`, audit.ErrNotAudit},
		{"sourceIPs hold numbers", `{"apiVersion":"audit.k8s.io/v1","sourceIPs":[1,2]}`, audit.ErrNotAudit},
		{"code is an object", `{"apiVersion":"audit.k8s.io/v1","responseStatus":{"code":{}}}`, audit.ErrNotAudit},
		{"annotations hold numbers (read as absent)", `{"apiVersion":"audit.k8s.io/v1","annotations":{"a":1}}`, nil},
		{"groups is a string", `{"apiVersion":"audit.k8s.io/v1","user":{"groups":"admins"}}`, audit.ErrNotAudit},
		{"array", `[{"apiVersion":"audit.k8s.io/v1"}]`, audit.ErrNotAudit},
		{"string", `"audit.k8s.io/v1"`, audit.ErrNotAudit},
		{"null", `null`, audit.ErrNotAudit},
		{"empty object", `{}`, audit.ErrNotAudit},
		{"plain text", `I1124 08:15:03.123456 1 trace.go:236] Trace[1]: "Create" url:/api/v1/pods`, audit.ErrNotJSON},
		{"empty", ``, audit.ErrNotJSON},
		{"cut JSON", `{"apiVersion":"audit.k8s.io/v1","verb":"cre`, audit.ErrNotJSON},
		{"truncated by CloudWatch", `{"apiVersion":"audit.k8s.io/v1","verb":"create","requestObject":{"data":"AAAA[Truncated...]`, audit.ErrTruncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := audit.Parse([]byte(tc.line))
			if tc.want == nil && err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Parse error %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseFields(t *testing.T) {
	line := `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"a1","stage":"ResponseComplete",` +
		`"requestURI":"/api/v1/namespaces/ns/secrets","verb":"cr\u0065ate",` +
		`"user":{"username":"alice","uid":"aws-iam-authenticator:111122223333:AROAEXAMPLE","groups":["system:authenticated"],"extra":{"accessKeyId":["ASIAEXAMPLE"]}},` +
		`"sourceIPs":["203.0.113.1","10.0.0.1"],"userAgent":"kubectl/v1.34.2",` +
		`"objectRef":{"resource":"secrets","namespace":"ns","name":"db","apiGroup":"","apiVersion":"v1","subresource":""},` +
		`"responseStatus":{"metadata":{},"status":"Failure","message":"m","reason":"\u0046orbidden","code":403.0},` +
		`"requestObject":{"data":{"password":"aHVudGVyMg=="}},"responseObject":{"kind":"Status"},` +
		`"requestReceivedTimestamp":"2026-11-24T08:15:03.123456Z","stageTimestamp":"2026-11-24T08:15:03.125871Z",` +
		`"annotations":{"authorization.k8s.io/decision":"forbid"},"VERB":"get"}`
	got, err := audit.Parse([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	want := audit.Event{
		Kind: "Event", APIVersion: "audit.k8s.io/v1", Level: "RequestResponse", AuditID: "a1",
		Stage: audit.StageResponseComplete, RequestURI: "/api/v1/namespaces/ns/secrets", Verb: "create",
		User: audit.UserInfo{Username: "alice", UID: "aws-iam-authenticator:111122223333:AROAEXAMPLE", Groups: []string{"system:authenticated"},
			Extra: audit.Identity{AccessKeyID: "ASIAEXAMPLE"}},
		SourceIPs: []string{"203.0.113.1", "10.0.0.1"}, UserAgent: "kubectl/v1.34.2",
		ObjectRef:                &audit.ObjectReference{Resource: "secrets", Namespace: "ns", Name: "db", APIVersion: "v1"},
		ResponseStatus:           &audit.Status{Status: "Failure", Message: "m", Reason: "Forbidden", Code: "403.0"},
		RequestReceivedTimestamp: "2026-11-24T08:15:03.123456Z", StageTimestamp: "2026-11-24T08:15:03.125871Z",
		Annotations: map[string]string{"authorization.k8s.io/decision": "forbid"},
	}
	all := audit.FieldVerb | audit.FieldRequestURI | audit.FieldUserAgent | audit.FieldRequestReceivedTimestamp |
		audit.FieldStageTimestamp | audit.FieldStage | audit.FieldSourceIPs | audit.FieldUsername | audit.FieldUID |
		audit.FieldGroups | audit.FieldNamespace | audit.FieldResource | audit.FieldStatusReason |
		audit.FieldStatusCode | audit.FieldStatusMessage
	if got.Present != all {
		t.Errorf("Present = %b, want %b", got.Present, all)
	}
	got.Present = 0
	// hasUser is unexported: compare through a copy parsed the same way.
	want.Present = 0
	if g, w := stripUnexported(got), stripUnexported(want); !reflect.DeepEqual(g, w) {
		t.Errorf("Parse =\n%+v\nwant\n%+v", g, w)
	}
}

// stripUnexported copies the exported fields only.
func stripUnexported(e audit.Event) audit.Event {
	return audit.Event{Kind: e.Kind, APIVersion: e.APIVersion, Level: e.Level, AuditID: e.AuditID, Stage: e.Stage,
		RequestURI: e.RequestURI, Verb: e.Verb, User: e.User, SourceIPs: e.SourceIPs, UserAgent: e.UserAgent,
		ObjectRef: e.ObjectRef, ResponseStatus: e.ResponseStatus, RequestReceivedTimestamp: e.RequestReceivedTimestamp,
		StageTimestamp: e.StageTimestamp, Annotations: e.Annotations, Present: e.Present}
}

// TestParseIdentity reads the listed user.extra keys and nothing else: an unlisted key
// (a token, a session tag) is not kept anywhere in the event.
func TestParseIdentity(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra string
		want  audit.Identity
	}{
		{"EKS IAM", `{"accessKeyId":["ASIAQEXAMPLEKEY00001"],"arn":["arn:aws:sts::111122223333:assumed-role/Developer/alice"],` +
			`"canonicalArn":["arn:aws:iam::111122223333:role/Developer"],"principalId":["AROAQEXAMPLEROLE0001:alice"],"sessionName":["alice"]}`,
			audit.Identity{AccessKeyID: "ASIAQEXAMPLEKEY00001", ARN: "arn:aws:sts::111122223333:assumed-role/Developer/alice",
				CanonicalARN: "arn:aws:iam::111122223333:role/Developer", PrincipalID: "AROAQEXAMPLEROLE0001:alice", SessionName: "alice"}},
		{"service account", `{"authentication.kubernetes.io/pod-name":["web-7d4b9c-x2x9p"],"authentication.kubernetes.io/pod-uid":["7b0d6a52-1c3e-4f7a-9d1b-2e8f0c4a6b13"],` +
			`"authentication.kubernetes.io/node-name":["ip-10-0-3-17.eu-west-1.compute.internal"],"authentication.kubernetes.io/credential-id":["JTI=5c2f0e9a-8b1d-4e6f-a3c7-9d0b1e2f3a4c"]}`,
			audit.Identity{PodName: "web-7d4b9c-x2x9p", PodUID: "7b0d6a52-1c3e-4f7a-9d1b-2e8f0c4a6b13",
				NodeName: "ip-10-0-3-17.eu-west-1.compute.internal", CredentialID: "JTI=5c2f0e9a-8b1d-4e6f-a3c7-9d0b1e2f3a4c"}},
		{"unlisted keys skipped", `{"sessionToken":["SECRET-CANARY"],"arn":["a"],"iam.amazonaws.com/tag":["SECRET-CANARY"]}`, audit.Identity{ARN: "a"}},
		{"first non-empty value", `{"arn":["","a","b"]}`, audit.Identity{ARN: "a"}},
		{"wrong shapes read as absent", `{"arn":"a","sessionName":[1],"accessKeyId":{"x":["y"]},"principalId":null}`, audit.Identity{}},
		{"extra not an object", `["arn"]`, audit.Identity{}},
		{"null", `null`, audit.Identity{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			line := `{"apiVersion":"audit.k8s.io/v1","verb":"create","user":{"username":"u","extra":` + tc.extra + `}}`
			e, err := audit.Parse([]byte(line))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if e.User.Extra != tc.want {
				t.Errorf("Extra = %+v, want %+v", e.User.Extra, tc.want)
			}
			if strings.Contains(fmt.Sprintf("%+v", stripUnexported(e)), "SECRET-CANARY") {
				t.Errorf("an unlisted user.extra key was kept: %+v", e)
			}
		})
	}
}

func TestParsePresence(t *testing.T) {
	for _, tc := range []struct {
		name    string
		line    string
		present audit.Field
		absent  audit.Field
	}{
		{"null and empty list are missing",
			`{"apiVersion":"audit.k8s.io/v1","verb":null,"sourceIPs":[],"user":{"groups":[],"uid":null}}`,
			0, audit.FieldVerb | audit.FieldSourceIPs | audit.FieldGroups | audit.FieldUID | audit.FieldUsername},
		{"empty string is present",
			`{"apiVersion":"audit.k8s.io/v1","userAgent":"","objectRef":{"namespace":""}}`,
			audit.FieldUserAgent | audit.FieldNamespace, audit.FieldResource},
		{"missing objects",
			`{"apiVersion":"audit.k8s.io/v1","responseStatus":null}`,
			0, audit.FieldStatusCode | audit.FieldStatusReason | audit.FieldStatusMessage | audit.FieldNamespace},
		{"keys are case-sensitive",
			`{"apiVersion":"audit.k8s.io/v1","Verb":"create","USERAGENT":"x"}`,
			0, audit.FieldVerb | audit.FieldUserAgent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := audit.Parse([]byte(tc.line))
			if err != nil {
				t.Fatal(err)
			}
			if e.Present&tc.present != tc.present {
				t.Errorf("Present %b lacks %b", e.Present, tc.present)
			}
			if e.Present&tc.absent != 0 {
				t.Errorf("Present %b has some of %b", e.Present, tc.absent)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"kind":0}`))
	f.Add([]byte(`{"apiVersion":"audit.k8s.io/v1","verb":"create","responseStatus":{"code":403,"reason":"Forbidden"}}`))
	f.Add([]byte(`{"apiVersion":"audit.k8s.io/v1","user":{"groups":[null,"a"]},"objectRef":[]}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := audit.Parse(line)
		if err != nil && (e.Verb != "" || e.Present != 0) {
			t.Fatalf("error %v with a non-zero event", err)
		}
		if err != nil && !errors.Is(err, audit.ErrNotJSON) && !errors.Is(err, audit.ErrNotAudit) && !errors.Is(err, audit.ErrTruncated) {
			t.Fatalf("unclassified error %v", err)
		}
	})
}

// TestParseListsWithWhitespace covers lists as pretty-printers and other JSON writers
// lay them out (a space or newline after each comma): they are the same lists.
func TestParseListsWithWhitespace(t *testing.T) {
	for _, layout := range []string{
		`["1.2.3.4", "5.6.7.8"]`,
		"[\n  \"1.2.3.4\",\n  \"5.6.7.8\"\n]",
		`[ "1.2.3.4" , "5.6.7.8" ]`,
		"[\t\"1.2.3.4\",\r\n\"5.6.7.8\"]",
	} {
		line := `{"apiVersion":"audit.k8s.io/v1","verb":"create","sourceIPs":` + layout +
			`,"user":{"username":"alice","groups":` + strings.ReplaceAll(strings.ReplaceAll(layout, "1.2.3.4", "a"), "5.6.7.8", "b") + `}}`
		e, err := audit.Parse([]byte(line))
		if err != nil {
			t.Errorf("%q: %v", layout, err)
			continue
		}
		if !slices.Equal(e.SourceIPs, []string{"1.2.3.4", "5.6.7.8"}) || !slices.Equal(e.User.Groups, []string{"a", "b"}) {
			t.Errorf("%q: sourceIPs %q, groups %q", layout, e.SourceIPs, e.User.Groups)
		}
	}
	e, err := audit.Parse([]byte(`{"apiVersion":"audit.k8s.io/v1","sourceIPs":["a", null]}`))
	if err != nil || !slices.Equal(e.SourceIPs, []string{"a", ""}) {
		t.Errorf(`["a", null] = %q, %v; want ["a" ""]`, e.SourceIPs, err)
	}
	if _, err := audit.Parse([]byte(`{"apiVersion":"audit.k8s.io/v1","sourceIPs":["a", 1]}`)); !errors.Is(err, audit.ErrNotAudit) {
		t.Errorf(`["a", 1]: %v, want ErrNotAudit`, err)
	}
}
