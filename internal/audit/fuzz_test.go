package audit_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/eks-unauthorized-access/detector/internal/audit"
	"github.com/eks-unauthorized-access/detector/internal/samples"
)

// sampleLines returns the real audit lines kept in the repository (the raw sample events,
// the detection cases and the external samples of package detect, whose provenance is
// recorded in internal/detect/testdata/external/PROVENANCE.md), one per element.
func sampleLines(t testing.TB) [][]byte { return samples.LinesForTest(t, filepath.Join("..", "..")) }

// withoutSecrets returns line with requestObject, responseObject and every user.extra key but
// audit.IdentityKeys removed,
// or false when line is not a JSON object (or its user is not one).
func withoutSecrets(line []byte) ([]byte, bool) {
	var top map[string]json.RawMessage
	if json.Unmarshal(line, &top) != nil {
		return nil, false
	}
	delete(top, "requestObject")
	delete(top, "responseObject")
	if raw, ok := top["user"]; ok && !bytes.Equal(raw, []byte("null")) {
		var user map[string]json.RawMessage
		if json.Unmarshal(raw, &user) != nil {
			return nil, false
		}
		// Only the identifiers of audit.IdentityKeys are read from user.extra: keep them,
		// drop every other key.
		var extra map[string]json.RawMessage
		if json.Unmarshal(user["extra"], &extra) == nil && extra != nil {
			kept := map[string]json.RawMessage{}
			for _, k := range audit.IdentityKeys {
				if v, ok := extra[k]; ok {
					kept[k] = v
				}
			}
			b, err := json.Marshal(kept)
			if err != nil {
				return nil, false
			}
			user["extra"] = b
		} else {
			delete(user, "extra")
		}
		b, err := json.Marshal(user)
		if err != nil {
			return nil, false
		}
		top["user"] = b
	}
	b, err := json.Marshal(top)
	return b, err == nil
}

// unrelated are the fields that neither the rule, the by-clause nor the audit check read,
// by the object that holds them ("" is the top level).
var unrelated = map[string][]string{
	"":               {"level", "auditID", "stageTimestamp", "annotations"},
	"objectRef":      {"name", "apiGroup", "apiVersion", "subresource"},
	"responseStatus": {"status"},
}

// withoutUnrelated returns line with the unrelated fields removed, or false when line is
// not a JSON object.
func withoutUnrelated(line []byte) ([]byte, bool) {
	var top map[string]json.RawMessage
	if json.Unmarshal(line, &top) != nil || top == nil {
		return nil, false
	}
	for parent, keys := range unrelated {
		if parent == "" {
			for _, k := range keys {
				delete(top, k)
			}
			continue
		}
		var sub map[string]json.RawMessage
		if raw, ok := top[parent]; !ok || json.Unmarshal(raw, &sub) != nil || sub == nil {
			continue
		}
		for _, k := range keys {
			delete(sub, k)
		}
		b, err := json.Marshal(sub)
		if err != nil {
			return nil, false
		}
		top[parent] = b
	}
	b, err := json.Marshal(top)
	return b, err == nil
}

// stringAt returns the string at a path of object keys in a generic decoding, and whether
// a non-null value is there (the value may then be of another type).
func stringAt(v any, path ...string) (string, bool) {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return "", false
		}
		if v, ok = m[k]; !ok || v == nil {
			return "", false
		}
	}
	s, _ := v.(string)
	return s, true
}

// FuzzParseOracle parses arbitrary lines, seeded with every real audit line of the
// repository, and checks: no panic; every error is classified; a parsed event agrees with
// a generic encoding/json decoding on every tracked string field and its presence bit;
// and the event does not depend on requestObject, responseObject or user.extra (the
// bodies and IAM details that may hold secrets are never read into it).
func FuzzParseOracle(f *testing.F) {
	for _, l := range sampleLines(f) {
		f.Add(l)
	}
	f.Add([]byte(`{"kind":"Event","verb":"create","user":{"extra":{"sessionName":["x"]}},"requestObject":"SECRET"}`))
	f.Add([]byte(`{"apiVersion":"audit.k8s.io/v1","verb":"create","verb":null,"VERB":"create"}`))
	f.Add([]byte(`{"apiVersion":"audit.k8s.io/v1","verb":"create","level":5,"annotations":{"a":1},"objectRef":{"name":[1]}}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := audit.Parse(line)
		// Differential: the unrelated fields never decide whether a line is read.
		if reduced, ok := withoutUnrelated(line); ok && !errors.Is(err, audit.ErrTruncated) {
			_, err2 := audit.Parse(reduced)
			if (err == nil) != (err2 == nil) || errors.Is(err, audit.ErrNotAudit) != errors.Is(err2, audit.ErrNotAudit) {
				t.Fatalf("unrelated fields decide: with them %v, without them %v", err, err2)
			}
		}
		if err != nil {
			if !errors.Is(err, audit.ErrNotJSON) && !errors.Is(err, audit.ErrNotAudit) && !errors.Is(err, audit.ErrTruncated) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		var generic any
		if err := json.Unmarshal(line, &generic); err != nil {
			t.Fatalf("Parse accepted a line encoding/json rejects: %v", err)
		}
		fields := []struct {
			path []string
			got  string
			bit  audit.Field
		}{
			{[]string{"verb"}, e.Verb, audit.FieldVerb},
			{[]string{"requestURI"}, e.RequestURI, audit.FieldRequestURI},
			{[]string{"userAgent"}, e.UserAgent, audit.FieldUserAgent},
			{[]string{"stage"}, string(e.Stage), audit.FieldStage},
			{[]string{"requestReceivedTimestamp"}, e.RequestReceivedTimestamp, audit.FieldRequestReceivedTimestamp},
			{[]string{"user", "username"}, e.User.Username, audit.FieldUsername},
			{[]string{"user", "uid"}, e.User.UID, audit.FieldUID},
			{[]string{"objectRef", "namespace"}, refField(e, func(r *audit.ObjectReference) string { return r.Namespace }), audit.FieldNamespace},
			{[]string{"objectRef", "resource"}, refField(e, func(r *audit.ObjectReference) string { return r.Resource }), audit.FieldResource},
			{[]string{"responseStatus", "reason"}, statusField(e, func(s *audit.Status) string { return s.Reason }), audit.FieldStatusReason},
			{[]string{"responseStatus", "message"}, statusField(e, func(s *audit.Status) string { return s.Message }), audit.FieldStatusMessage},
		}
		for _, fd := range fields {
			want, present := stringAt(generic, fd.path...)
			if fd.got != want || e.Has(fd.bit) != present {
				t.Fatalf("%v: event has %q (present %v), encoding/json reads %q (present %v)", fd.path, fd.got, e.Has(fd.bit), want, present)
			}
		}
		stripped, ok := withoutSecrets(line)
		if !ok {
			t.Fatal("a parsed line is not a JSON object with an object user")
		}
		e2, err := audit.Parse(stripped)
		if err != nil {
			t.Fatalf("the line without bodies and user.extra no longer parses: %v", err)
		}
		if !reflect.DeepEqual(e, e2) {
			t.Fatalf("the event depends on bodies or user.extra:\nwith    %+v\nwithout %+v", e, e2)
		}
	})
}

func refField(e audit.Event, get func(*audit.ObjectReference) string) string {
	if e.ObjectRef == nil {
		return ""
	}
	return get(e.ObjectRef)
}

func statusField(e audit.Event, get func(*audit.Status) string) string {
	if e.ResponseStatus == nil {
		return ""
	}
	return get(e.ResponseStatus)
}
