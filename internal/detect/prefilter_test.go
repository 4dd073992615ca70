package detect_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/eks-unauthorized-access/detector/internal/audit"
	"github.com/eks-unauthorized-access/detector/internal/detect"
)

var prefilterModes = []detect.Mode{detect.ModeSeed, detect.ModeAuthz, detect.ModeBroad}

// escapeLevel returns line as the content of a JSON string (how a CloudWatch Logs payload
// carries it): the bytes the prefilter sees before the pipeline unescapes the message.
func escapeLevel(line string) string {
	b, err := json.Marshal(line)
	if err != nil {
		panic(err)
	}
	return string(b[1 : len(b)-1])
}

// matches reports what Evaluate decides for an audit line, or false when it does not parse.
func matches(line string, mode detect.Mode) bool {
	ev, err := audit.Parse([]byte(line))
	if err != nil {
		return false
	}
	_, ok := detect.Evaluate(ev, time.Time{}, mode)
	return ok
}

// checkSound fails when a line that Evaluate matches is rejected by MayMatch, at either
// escaping level.
func checkSound(t *testing.T, line string) {
	t.Helper()
	for _, mode := range prefilterModes {
		if !matches(line, mode) {
			continue
		}
		if !detect.MayMatch([]byte(line), mode) {
			t.Fatalf("mode %s: MayMatch rejects a matching line: %s", mode, line)
		}
		esc := escapeLevel(line)
		if !detect.MayMatch([]byte(esc), mode) {
			t.Fatalf("mode %s: MayMatch rejects a matching escaped line: %s", mode, esc)
		}
		// The payload's string may write the line's quotes as \" or as \u0022.
		for _, e := range []string{esc, strings.ReplaceAll(esc, `\"`, `\u0022`)} {
			if !detect.MayMatchEscaped([]byte(e), mode) {
				t.Fatalf("mode %s: MayMatchEscaped rejects a matching escaped line: %s", mode, e)
			}
		}
	}
}

const forbiddenCreate = `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"5b3e0c35-4ac3-4a59-9d6b-1fdc1f6f7e9a",` +
	`"stage":"ResponseComplete","requestURI":"/api/v1/namespaces/kube-system/secrets?fieldManager=kubectl-create\u0026fieldValidation=Strict",` +
	`"verb":"VERB","user":{"username":"alice","groups":["system:authenticated"]},"sourceIPs":["192.0.2.10"],"userAgent":"kubectl/v1.31.0",` +
	`"objectRef":{"resource":"secrets","namespace":"kube-system","apiVersion":"v1"},` +
	`"responseStatus":{"metadata":{},"status":"Failure","message":"MESSAGE","reason":"REASON","code":CODE},` +
	`"requestReceivedTimestamp":"2026-11-24T08:15:00.000000Z","stageTimestamp":"2026-11-24T08:15:00.002000Z",` +
	`"annotations":{"authorization.k8s.io/decision":"forbid","authorization.k8s.io/reason":""}}`

func line(verb, reason, code, message string) string {
	return strings.NewReplacer("VERB", verb, "REASON", reason, "CODE", code, "MESSAGE", message).Replace(forbiddenCreate)
}

func TestMayMatchVariants(t *testing.T) {
	tests := []struct {
		name  string
		line  string
		modes []detect.Mode // the modes in which Evaluate matches
	}{
		{"plain", line("create", "Forbidden", "403", "denied"), prefilterModes},
		{"upper", line("CREATE", "FORBIDDEN", "403", "denied"), prefilterModes},
		{"mixed", line("cReAtE", "fOrBiDdEn", "403", "denied"), prefilterModes},
		{"escaped F", line("create", `\u0046orbidden`, "403", "denied"), prefilterModes},
		{"escaped every letter", line(`\u0063\u0072\u0065\u0061\u0074\u0065`, `\u0066\u004F\u0072\u0062\u0069\u0064\u0064\u0065\u006e`, "403", "denied"), prefilterModes},
		{"upper hex", line(`cre\u0041te`, `forbi\u0044den`, "403", "denied"), prefilterModes},
		{"reasonless 403", line("create", "", "403", "denied"), []detect.Mode{detect.ModeBroad}},
		{"reasonless 4.03e2", line("create", "", "4.03e2", "denied"), []detect.Mode{detect.ModeBroad}},
		{"reasonless string code", line("create", "", `"403"`, "denied"), []detect.Mode{detect.ModeBroad}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, mode := range prefilterModes {
				want := false
				for _, m := range tt.modes {
					want = want || m == mode
				}
				if got := matches(tt.line, mode); got != want {
					t.Fatalf("mode %s: Evaluate says %v, the case expects %v", mode, got, want)
				}
			}
			checkSound(t, tt.line)
		})
	}
}

// TestMayMatchTwoLevelEscapes writes the letters of the values as escapes of the
// payload's own string level, and escapes of the line's level written with escapes.
func TestMayMatchTwoLevelEscapes(t *testing.T) {
	base := escapeLevel(line("create", "Forbidden", "403", "denied"))
	for _, esc := range []string{
		strings.Replace(base, "Forbidden", `\u0046orbidden`, 1),            // outer level
		strings.Replace(base, "Forbidden", `\\u0046orbidden`, 1),           // inner level, outer-escaped backslash
		strings.Replace(base, "Forbidden", `\u005cu0046orbidden`, 1),       // inner escape's backslash as an outer escape
		strings.Replace(base, "Forbidden", `\\\u00750\u003046orbidden`, 1), // its "u" and a hex digit as outer escapes
		strings.Replace(base, "create", `\u0063reate`, 1),
	} {
		var inner string
		if err := json.Unmarshal([]byte(`"`+esc+`"`), &inner); err != nil {
			t.Fatalf("test input %s: %v", esc, err)
		}
		if !matches(inner, detect.ModeSeed) {
			t.Fatalf("test input does not match: %s", inner)
		}
		for _, mode := range prefilterModes {
			if !detect.MayMatch([]byte(esc), mode) || !detect.MayMatchEscaped([]byte(esc), mode) {
				t.Errorf("mode %s: rejected %s", mode, esc)
			}
		}
	}
}

// TestMayMatchFilters checks the filter's purpose: common lines are rejected.
func TestMayMatchFilters(t *testing.T) {
	for _, tt := range []struct {
		name string
		line string
		mode detect.Mode
	}{
		{"allowed create", line("create", "", "201", "ok"), detect.ModeSeed},
		{"forbidden get", line("get", "Forbidden", "403", "denied"), detect.ModeSeed},
		{"forbidden get, authz", line("get", "Forbidden", "403", "denied"), detect.ModeAuthz},
		{"allowed get, broad", line("get", "", "200", "ok"), detect.ModeBroad},
		{"non-letter escapes", line("get", "", "200", `\u003chtml\u003e \u00e9 \ud83d\ude00 \n`), detect.ModeBroad},
	} {
		// The request URI of the template mentions "create": keep only the verb's.
		noCreate := strings.ReplaceAll(tt.line, "kubectl-create", "kubectl-apply")
		for _, l := range []string{noCreate, escapeLevel(noCreate)} {
			if detect.MayMatch([]byte(l), tt.mode) {
				t.Errorf("%s: MayMatch(%s) = true, want false", tt.name, l)
			}
		}
		if l := escapeLevel(noCreate); detect.MayMatchEscaped([]byte(l), tt.mode) {
			t.Errorf("%s: MayMatchEscaped(%s) = true, want false", tt.name, l)
		}
	}
}

// TestMayMatchRandomised builds many matching lines whose verb and reason are written in
// random case with random characters escaped (lower- or upper-case hex, at the line's
// level), and checks that MayMatch keeps each one at both levels.
func TestMayMatchRandomised(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	mangle := func(word string) string {
		var b strings.Builder
		for _, r := range word {
			if rng.IntN(2) == 0 {
				r = unicode.ToUpper(r)
			}
			if rng.IntN(4) == 0 {
				format := `\u%04x`
				if rng.IntN(2) == 0 {
					format = `\u%04X`
				}
				fmt.Fprintf(&b, format, r)
				continue
			}
			b.WriteRune(r)
		}
		return b.String()
	}
	codes := []string{"403", "403.0", "4.03e2", `"403"`, "200"}
	for i := 0; i < 5000; i++ {
		reason := mangle("forbidden")
		if rng.IntN(5) == 0 {
			reason = ""
		}
		l := line(mangle("create"), reason, codes[rng.IntN(len(codes))], mangle("secrets is forbidden"))
		checkSound(t, l)
	}
}

// TestMayMatchCases runs the prefilter over the detection's case files.
func TestMayMatchCases(t *testing.T) {
	files, err := filepath.Glob("testdata/cases/*.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var c struct {
			Event json.RawMessage `json:"event"`
		}
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		checkSound(t, string(c.Event))
	}
}

// TestFoldingIsASCII checks the assumption the prefilter rests on: strings.EqualFold
// matches a letter of "create" or "forbidden" only with its ASCII cases.
func TestFoldingIsASCII(t *testing.T) {
	for _, c := range "createforbidden" {
		for r := unicode.SimpleFold(c); r != c; r = unicode.SimpleFold(r) {
			if r > unicode.MaxASCII {
				t.Errorf("%q folds to non-ASCII %q", c, r)
			}
		}
	}
}

func FuzzMayMatch(f *testing.F) {
	f.Add(line("create", "Forbidden", "403", "denied"))
	f.Add(line(`cre\u0061te`, `\u0046ORBIDDEN`, "403", "x"))
	f.Add(line("create", "", "4.03e2", "x"))
	f.Fuzz(func(t *testing.T, l string) {
		checkSound(t, l)
	})
}
