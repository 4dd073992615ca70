package audit

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzScanObject checks the tokenizer against encoding/json: it accepts only objects that
// encoding/json accepts, and every key it reports holds, with the last occurrence winning,
// the value encoding/json decodes for it.
func FuzzScanObject(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"a":"x","b":[1,2.5e-3,{"c":null}],"d\u0062":true}`,
		`{"verb":"cr\u0065ate","x":"\ud800","y":"` + "\xff" + `"}`,
		` {"a":-0.0E+1} `, `{"a":01}`, `{"a":"\x"}`, `{"a":[}`, `{}`, `[]`, `{"a":1}x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		o, ok := scanObject(b, 4)
		var m map[string]json.RawMessage
		err := json.Unmarshal(b, &m)
		if !ok {
			return
		}
		if err != nil || m == nil {
			t.Fatalf("tokenizer accepted %q, encoding/json: %v", b, err)
		}
		for k, want := range m {
			got, ok := o.get(k)
			if !ok || string(got) != string(want) {
				t.Fatalf("key %q: tokenizer %q, encoding/json %q", k, got, want)
			}
		}
		for _, mb := range o {
			if _, ok := m[string(mb.key)]; !ok {
				t.Fatalf("tokenizer key %q unknown to encoding/json", mb.key)
			}
		}
	})
}

// TestAnnotationsAsEncodingJSON checks that annotations decode as encoding/json decodes
// them into a map[string]string (null is "", the last key wins).
func TestAnnotationsAsEncodingJSON(t *testing.T) {
	raw := `{"a":"x","b":null,"a":"y","c\u0064":"\u0041"}`
	var want map[string]string
	if err := json.Unmarshal([]byte(raw), &want); err != nil {
		t.Fatal(err)
	}
	var e Event
	if err := e.UnmarshalJSON([]byte(`{"apiVersion":"audit.k8s.io/v1","annotations":` + raw + `}`)); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(e.Annotations, want) {
		t.Fatalf("annotations %v, want %v", e.Annotations, want)
	}
}
