package audit_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eks-unauthorized-access/detector/internal/audit"
	"github.com/eks-unauthorized-access/detector/internal/detect"
)

// forbiddenCreate is an RBAC denial of a create with every by-field present.
const forbiddenCreate = `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a1","stage":"ResponseComplete",` +
	`"requestURI":"/api/v1/namespaces/ns/secrets","verb":"create",` +
	`"user":{"username":"alice","uid":"aws-iam-authenticator:111122223333:AROAEXAMPLE","groups":["system:authenticated"]},` +
	`"sourceIPs":["203.0.113.1","10.0.0.1"],"userAgent":"kubectl/v1.34.2",` +
	`"objectRef":{"resource":"secrets","namespace":"ns","name":"db","apiVersion":"v1"},` +
	`"responseStatus":{"metadata":{},"status":"Failure","message":"m","reason":"Forbidden","code":403},` +
	`"requestReceivedTimestamp":"2026-11-24T08:15:03.123456Z","stageTimestamp":"2026-11-24T08:15:03.125871Z",` +
	`"annotations":{"authorization.k8s.io/decision":"forbid","authorization.k8s.io/reason":""}}`

// setPath returns line with the value at path (object keys) replaced by the JSON value v,
// or removed when v is "".
func setPath(t *testing.T, line string, v string, path ...string) string {
	t.Helper()
	var top map[string]any
	if err := json.Unmarshal([]byte(line), &top); err != nil {
		t.Fatal(err)
	}
	m := top
	for _, k := range path[:len(path)-1] {
		m = m[k].(map[string]any)
	}
	last := path[len(path)-1]
	if v == "" {
		delete(m, last)
	} else {
		var val any
		if err := json.Unmarshal([]byte(v), &val); err != nil {
			t.Fatal(err)
		}
		m[last] = val
	}
	b, err := json.Marshal(top)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestTypeErrorsInUnrelatedFields checks that a value of the wrong type in a field that
// neither the rule nor the by-clause reads does not cost a matching event: the line
// matches with the same by-fields as the line without that field (the differential
// reference, decoded by encoding/json).
func TestTypeErrorsInUnrelatedFields(t *testing.T) {
	for _, c := range []struct {
		value string
		path  []string
	}{
		{`5`, []string{"level"}},
		{`{"x":1}`, []string{"auditID"}},
		{`1732436103`, []string{"stageTimestamp"}},
		{`["db"]`, []string{"objectRef", "name"}},
		{`true`, []string{"objectRef", "apiGroup"}},
		{`1`, []string{"objectRef", "apiVersion"}},
		{`{}`, []string{"objectRef", "subresource"}},
		{`418`, []string{"responseStatus", "status"}},
		{`{"authorization.k8s.io/decision":"forbid","authorization.k8s.io/reason":7}`, []string{"annotations"}},
		{`"not an object"`, []string{"annotations"}},
		{`[1,2]`, []string{"annotations"}},
	} {
		t.Run(c.path[len(c.path)-1]+"="+c.value, func(t *testing.T) {
			bad := setPath(t, forbiddenCreate, c.value, c.path...)
			ref := setPath(t, forbiddenCreate, "", c.path...)
			got := evaluate(t, bad)
			want := evaluate(t, ref)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("by-fields\n%+v\nwant (the line without %v)\n%+v", got, c.path, want)
			}
		})
	}
}

// evaluate parses line and applies the seed rule; it fails the test when the line is
// rejected or does not match.
func evaluate(t *testing.T, line string) detect.Fields {
	t.Helper()
	e, err := audit.Parse([]byte(line))
	if err != nil {
		t.Fatalf("Parse(%s): %v", line, err)
	}
	m, ok := detect.Evaluate(e, time.Time{}, detect.ModeSeed)
	if !ok {
		t.Fatalf("%s does not match the rule", line)
	}
	return m.Fields
}

// TestGroupsElements checks user.groups{} against Splunk's extraction: strings as
// decoded, a number or boolean as its JSON text, null as "" (encoding/json's value in a
// []string), objects and arrays left out (Splunk extracts them under a longer path).
func TestGroupsElements(t *testing.T) {
	for in, want := range map[string][]string{
		`["system:authenticated","dev"]`:               {"system:authenticated", "dev"},
		`["system:authenticated",5,-1.5e3,true,false]`: {"system:authenticated", "5", "-1.5e3", "true", "false"},
		`["a",null,"b"]`:                               {"a", "", "b"},
		`["a",{"name":"x"},["y"],"b"]`:                 {"a", "b"},
		`[{"name":"x"}]`:                               {detect.FillValue},
		`["\u0061\ud83d\ude00", 1]`:                    {"a😀", "1"},
		`[]`:                                           {detect.FillValue},
	} {
		// Replaced as text: a generic decoding would rewrite the numbers.
		line := strings.Replace(forbiddenCreate, `"groups":["system:authenticated"]`, `"groups":`+in, 1)
		got := evaluate(t, line).Groups
		if !slices.Equal(got, want) {
			t.Errorf("groups %s: user.groups{} = %q, want %q", in, got, want)
		}
	}
}

// TestTypeErrorsInNeededFields checks the other side: a field the rule, the by-clause
// or the audit check reads, holding a value that cannot be read as that field, rejects
// the line as not an audit event.
func TestTypeErrorsInNeededFields(t *testing.T) {
	for _, c := range []struct {
		value string
		path  []string
	}{
		{`1`, []string{"verb"}},
		{`true`, []string{"kind"}},
		{`{}`, []string{"requestURI"}},
		{`[1]`, []string{"sourceIPs"}},
		{`"admins"`, []string{"user", "groups"}},
		{`1`, []string{"user", "username"}},
		{`"alice"`, []string{"user"}},
		{`1`, []string{"objectRef", "namespace"}},
		{`true`, []string{"responseStatus", "reason"}},
		{`{}`, []string{"responseStatus", "code"}},
		{`5`, []string{"userAgent"}},
	} {
		_, err := audit.Parse([]byte(setPath(t, forbiddenCreate, c.value, c.path...)))
		if !errors.Is(err, audit.ErrNotAudit) {
			t.Errorf("%v = %s: Parse error %v, want ErrNotAudit", c.path, c.value, err)
		}
	}
}
