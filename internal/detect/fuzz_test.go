package detect_test

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/eks-unauthorized-access/detector/internal/audit"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/samples"
)

// realLines returns the real audit lines kept in the repository: the raw sample events,
// the external samples (see testdata/external/PROVENANCE.md) and the detection cases.
func realLines(t testing.TB) [][]byte { return samples.LinesForTest(t, filepath.Join("..", "..")) }

// jsonEscaped returns line as the content of a JSON string, as a CloudWatch Logs payload
// carries it (the bytes MayMatch sees in the Lambda function).
func jsonEscaped(t *testing.T, line []byte) []byte {
	b, err := json.Marshal(string(line))
	if err != nil {
		t.Fatal(err)
	}
	return b[1 : len(b)-1]
}

// FuzzEvaluate runs the rule on arbitrary JSON lines, seeded with every real audit line
// of the repository, in every mode. Invariants: no panic; ModeAuthz matches a subset of
// ModeSeed, which matches a subset of ModeBroad; a match has the verb create, every
// by-field either verbatim from the event or the fillnull value, never an empty
// multi-value list, and the event time from requestReceivedTimestamp when it is RFC 3339,
// else the log timestamp; MayMatch accepts every matching line, raw and escaped; the
// match does not alias the event.
func FuzzEvaluate(f *testing.F) {
	for _, l := range realLines(f) {
		f.Add(l, int64(1764000000000))
	}
	f.Add([]byte(`{"kind":"Event","verb":"CREATE","user":{},"responseStatus":{"reason":"forbidden"}}`), int64(0))
	f.Add([]byte(`{"apiVersion":"audit.k8s.io/v1","verb":"cre\u0061te","responseStatus":{"code":4.03e2,"reason":""}}`), int64(-1))
	f.Fuzz(func(t *testing.T, line []byte, logMillis int64) {
		e, err := audit.Parse(line)
		if err != nil {
			return
		}
		logTime := time.UnixMilli(logMillis)
		got := map[detect.Mode]bool{}
		for _, mode := range []detect.Mode{detect.ModeSeed, detect.ModeAuthz, detect.ModeBroad} {
			m, ok := detect.Evaluate(e, logTime, mode)
			got[mode] = ok
			if !ok {
				continue
			}
			if !detect.MayMatch(line, mode) {
				t.Fatalf("mode %s: MayMatch rejects a matching line", mode)
			}
			if !detect.MayMatch(jsonEscaped(t, line), mode) {
				t.Fatalf("mode %s: MayMatch rejects a matching escaped line", mode)
			}
			if !detect.MayMatchEscaped(jsonEscaped(t, line), mode) {
				t.Fatalf("mode %s: MayMatchEscaped rejects a matching escaped line", mode)
			}
			checkMatch(t, e, logTime, m)
		}
		if got[detect.ModeAuthz] && !got[detect.ModeSeed] {
			t.Fatal("authz matches an event seed does not")
		}
		if got[detect.ModeSeed] && !got[detect.ModeBroad] {
			t.Fatal("seed matches an event broad does not")
		}
	})
}

func checkMatch(t *testing.T, e audit.Event, logTime time.Time, m detect.Match) {
	t.Helper()
	f := m.Fields
	if !strings.EqualFold(f.Verb, "create") {
		t.Fatalf("match with verb %q", f.Verb)
	}
	var ref audit.ObjectReference
	if e.ObjectRef != nil {
		ref = *e.ObjectRef
	}
	var st audit.Status
	if e.ResponseStatus != nil {
		st = *e.ResponseStatus
	}
	single := []struct {
		name  string
		got   string
		event string
		field audit.Field
	}{
		{"objectRef.namespace", f.Namespace, ref.Namespace, audit.FieldNamespace},
		{"objectRef.resource", f.Resource, ref.Resource, audit.FieldResource},
		{"requestReceivedTimestamp", f.RequestReceivedTimestamp, e.RequestReceivedTimestamp, audit.FieldRequestReceivedTimestamp},
		{"requestURI", f.RequestURI, e.RequestURI, audit.FieldRequestURI},
		{"responseStatus.code", f.Code, st.Code, audit.FieldStatusCode},
		{"responseStatus.message", f.Message, st.Message, audit.FieldStatusMessage},
		{"stage", f.Stage, string(e.Stage), audit.FieldStage},
		{"user.uid", f.UID, e.User.UID, audit.FieldUID},
		{"user", f.User, e.User.Username, audit.FieldUsername},
		{"userAgent", f.UserAgent, e.UserAgent, audit.FieldUserAgent},
		{"verb", f.Verb, e.Verb, audit.FieldVerb},
	}
	for _, s := range single {
		want := s.event
		if !e.Has(s.field) {
			want = detect.FillValue
		}
		if s.got != want {
			t.Fatalf("%s = %q, want %q", s.name, s.got, want)
		}
	}
	lists := []struct {
		name  string
		got   []string
		event []string
		field audit.Field
	}{
		{"src_ip", f.SrcIPs, e.SourceIPs, audit.FieldSourceIPs},
		{"user.groups{}", f.Groups, e.User.Groups, audit.FieldGroups},
	}
	for _, l := range lists {
		want := l.event
		if !e.Has(l.field) {
			want = []string{detect.FillValue}
		}
		if len(l.got) == 0 || !reflect.DeepEqual(l.got, want) {
			t.Fatalf("%s = %q, want %q", l.name, l.got, want)
		}
		// The match owns its lists: changing one leaves the event alone.
		if e.Has(l.field) {
			before := append([]string(nil), l.event...)
			l.got[0] += "x"
			if !reflect.DeepEqual(l.event, before) {
				t.Fatalf("%s of the match aliases the event", l.name)
			}
			l.got[0] = l.got[0][:len(l.got[0])-1]
		}
	}
	if rrt, err := time.Parse(time.RFC3339Nano, e.RequestReceivedTimestamp); err == nil {
		if !m.Time.Equal(rrt) {
			t.Fatalf("time %v, want requestReceivedTimestamp %v", m.Time, rrt)
		}
	} else if e.RequestReceivedTimestamp == "" && !m.Time.Equal(logTime) {
		t.Fatalf("time %v, want the log time %v", m.Time, logTime)
	}
	if m.Decision != e.Annotations[detect.DecisionAnnotation] {
		t.Fatalf("decision %q, want %q", m.Decision, e.Annotations[detect.DecisionAnnotation])
	}
}
