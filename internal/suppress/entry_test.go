package suppress

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eks-unauthorized-access/detector/internal/detect"
)

// file1 is a suppression file with every field: an enforced entry with an expiry date, one
// without, and a dry-run entry.
const file1 = `{"suppressions": [
  {"name": "ci-deployer", "expression": "user.startsWith(\"system:serviceaccount:ci:\")",
   "owner": "platform-team", "reason": "CI creates what it may not, by design", "expires": "2026-01-31"},
  {"name": "scanner", "expression": "src_ip == \"10.0.12.4\"", "owner": "secops", "reason": "weekly scan"},
  {"name": "try-alice", "expression": "user == \"alice\"", "owner": "secops", "reason": "to be confirmed",
   "expires": "2026-02-01T12:00:00+01:00", "dryRun": true}
]}`

func TestParseEntries(t *testing.T) {
	got, err := ParseEntries(file1, "env")
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{Name: "ci-deployer", Expression: `user.startsWith("system:serviceaccount:ci:")`, Owner: "platform-team",
			Reason: "CI creates what it may not, by design", Expires: time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)},
		{Name: "scanner", Expression: `src_ip == "10.0.12.4"`, Owner: "secops", Reason: "weekly scan"},
		{Name: "try-alice", Expression: `user == "alice"`, Owner: "secops", Reason: "to be confirmed",
			Expires: time.Date(2026, 2, 1, 11, 0, 0, 0, time.UTC), DryRun: true},
	}
	if !slices.EqualFunc(got, want, func(a, b Entry) bool { return a == b }) {
		t.Errorf("ParseEntries =\n%+v\nwant\n%+v", got, want)
	}

	// The one-expression-a-line form keeps working, with generated names.
	got, err = ParseEntries("# CI\nuser == \"ci\"\n\nsrc_ip == \"10.0.0.1\"\n", "env")
	if err != nil {
		t.Fatal(err)
	}
	if names := []string{got[0].Name, got[1].Name}; len(got) != 2 || !slices.Equal(names, []string{"env-1", "env-2"}) || got[1].Expression != `src_ip == "10.0.0.1"` {
		t.Errorf("bare expressions = %+v", got)
	}
}

// TestParseEntriesReportsEveryProblem: every problem of the file, named by position (and
// name when it is valid), in one error.
func TestParseEntriesReportsEveryProblem(t *testing.T) {
	_, err := ParseEntries(`{"suppressions": [
  {"name": "ok", "expression": "true", "owner": "o", "reason": "r"},
  {"name": "ok", "expression": "true", "owner": "o", "reason": "r"},
  {"name": "has space", "expression": "true", "owner": "o", "reason": "r"},
  {"name": "no-owner", "expression": "true", "reason": "r"},
  {"name": "no-expr", "owner": "o", "reason": " "},
  {"name": "bad-date", "expression": "true", "owner": "o", "reason": "r", "expires": "31/01/2026"},
  {"name": "`+strings.Repeat("x", 65)+`", "expression": "true", "owner": "o", "reason": "r"}
]}`, "env")
	if err == nil {
		t.Fatal("ParseEntries succeeded")
	}
	for _, want := range []string{
		`suppression 2: name "ok" is already used by suppression 1`,
		`suppression 3: name "has space" is not`,
		"suppression 4 (no-owner): owner is required",
		"suppression 5 (no-expr): expression is required",
		"suppression 5 (no-expr): reason is required",
		`suppression 6 (bad-date): expires "31/01/2026" is neither a date`,
		"suppression 7: name \"xxxx",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	for _, bad := range []string{
		`{"suppressions": [{"name": "a", "expression": "true", "owner": "o", "reason": "r", "expiry": "2026-01-01"}]}`,
		`{"suppressions": []} {}`,
		`{"suppressions": [`,
	} {
		if _, err := ParseEntries(bad, "env"); err == nil {
			t.Errorf("ParseEntries(%s) succeeded", bad)
		}
	}
}

// TestExpiry: an entry suppresses until its expiry, by the filter's clock, and then
// stops by itself and is reported by Expired.
func TestExpiry(t *testing.T) {
	entries, err := ParseEntries(file1, "env")
	if err != nil {
		t.Fatal(err)
	}
	expires := entries[0].Expires
	now := expires.Add(-time.Second)
	f, err := CompileEntries(entries, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	ci := denial()
	ci.Fields.User = "system:serviceaccount:ci:deployer"
	if v := f.Check(ci, source); !v.Suppressed || !slices.Equal(v.By, []string{"ci-deployer"}) {
		t.Errorf("before expiry: %+v, want suppressed by ci-deployer", v)
	}
	if got := f.Expired(); len(got) != 0 {
		t.Errorf("Expired before expiry = %q", got)
	}
	now = expires
	if v := f.Check(ci, source); v.Suppressed {
		t.Errorf("at expiry: %+v, want not suppressed", v)
	}
	if got := f.Expired(); !slices.Equal(got, []string{"ci-deployer"}) {
		t.Errorf("Expired at expiry = %q, want ci-deployer", got)
	}
	now = entries[2].Expires
	if got := f.Expired(); !slices.Equal(got, []string{"ci-deployer", "try-alice"}) {
		t.Errorf("Expired = %q", got)
	}
}

// TestDryRun: a dry-run entry suppresses nothing and names itself in the verdict; where an
// enforced entry suppresses the match, the dry-run one is not reported.
func TestDryRun(t *testing.T) {
	entries, err := ParseEntries(file1, "env")
	if err != nil {
		t.Fatal(err)
	}
	f, err := CompileEntries(entries, func() time.Time { return entries[0].Expires.Add(-time.Hour) })
	if err != nil {
		t.Fatal(err)
	}
	alice := denial() // alice, from 203.0.113.7 via 10.0.12.4
	if v := f.Check(alice, source); v.Suppressed || !slices.Equal(v.DryRun, []string{"try-alice"}) || len(v.By) != 0 {
		t.Errorf("alice: %+v, want kept, would be suppressed by try-alice", v)
	}
	// Only the scanner's own address: the enforced entry decides; nothing to report.
	alice.Fields.SrcIPs = []string{"10.0.12.4"}
	if v := f.Check(alice, source); !v.Suppressed || !slices.Equal(v.By, []string{"scanner"}) || len(v.DryRun) != 0 {
		t.Errorf("alice from the scanner: %+v, want suppressed by scanner only", v)
	}
	bob := denial()
	bob.Fields.User = "bob"
	if v := f.Check(bob, source); v.Suppressed || len(v.DryRun) != 0 || len(v.By) != 0 {
		t.Errorf("bob: %+v, want nothing", v)
	}
	// Rows decided by an enforced entry (10.0.12.4) and a dry-run one (203.0.113.7): kept,
	// reported as the dry-run entry's.
	mixed := denial()
	mixed.Fields.User = "alice"
	if v := f.Check(mixed, source); v.Suppressed || !slices.Equal(v.DryRun, []string{"try-alice"}) {
		t.Errorf("mixed rows: %+v", v)
	}
}

// TestAlone: each entry on its own, whatever its dry-run mark or expiry.
func TestAlone(t *testing.T) {
	entries, err := ParseEntries(file1, "env")
	if err != nil {
		t.Fatal(err)
	}
	f, err := CompileEntries(entries, func() time.Time { return entries[2].Expires.Add(time.Hour) })
	if err != nil {
		t.Fatal(err)
	}
	m := denial()
	if got := f.Alone(m, source); !slices.Equal(got, []string{"try-alice"}) {
		t.Errorf("Alone = %q (scanner only matches one of the two source IPs)", got)
	}
	m.Fields.SrcIPs = []string{"10.0.12.4"}
	m.Fields.User = "system:serviceaccount:ci:x"
	if got := f.Alone(m, source); !slices.Equal(got, []string{"ci-deployer", "scanner"}) {
		t.Errorf("Alone = %q", got)
	}
	if got := f.Alone(detect.Match{}, source); len(got) != 0 {
		t.Errorf("Alone(empty match) = %q", got)
	}
}
