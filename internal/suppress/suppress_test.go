package suppress

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/detect"
)

// The pipeline's view of a filter.
var _ interface {
	Suppress(detect.Match, aggregate.Source) bool
} = (*Filter)(nil)

// denial is an RBAC denial of a create as a real API server logs it (see the audit
// package), after detection: fields verbatim, the X-Forwarded-For entry first.
func denial() detect.Match {
	return detect.Match{
		Fields: detect.Fields{
			Namespace:                "kube-system",
			Resource:                 "secrets",
			RequestReceivedTimestamp: "2025-03-14T09:26:53.589793Z",
			RequestURI:               "/api/v1/namespaces/kube-system/secrets",
			Code:                     "403",
			Message:                  `secrets is forbidden: User "alice" cannot create resource "secrets" in API group "" in the namespace "kube-system"`,
			SrcIPs:                   []string{"203.0.113.7", "10.0.12.4"},
			Stage:                    "ResponseComplete",
			Groups:                   []string{"system:authenticated", "developers"},
			UID:                      "aws-iam-authenticator:111122223333:AIDAEXAMPLE",
			User:                     "alice",
			UserAgent:                "kubectl/v1.37.2 (linux/amd64) kubernetes/abcdef",
			Verb:                     "create",
		},
		Time:     time.Date(2025, 3, 14, 9, 26, 53, 589793000, time.UTC),
		Decision: "forbid",
	}
}

var source = aggregate.Source{
	Owner:     "111122223333",
	LogGroup:  "/aws/eks/prod/cluster",
	LogStream: "kube-apiserver-audit-0123456789abcdef",
	Cluster:   "prod",
	Region:    "eu-west-1",
}

func TestSuppressFields(t *testing.T) {
	// Every variable, once true and once false on the same match.
	tests := []struct {
		expr string
		want bool
	}{
		{`user == "alice"`, true},
		{`user == "bob"`, false},
		{`user.uid.startsWith("aws-iam-authenticator:111122223333:")`, true},
		{`user.uid == ""`, false},
		{`"developers" in user.groups`, true},
		{`"system:masters" in user.groups`, false},
		{`src_ip in ["203.0.113.7", "10.0.12.4"]`, true},
		{`src_ip == "203.0.113.7"`, false}, // the second source IP is not suppressed
		{`"10.0.12.4" in src_ips`, true},
		{`src_ips.size() == 1`, false},
		{`objectRef.namespace == "kube-system"`, true},
		{`objectRef.namespace == "ci"`, false},
		{`objectRef.resource == "secrets"`, true},
		{`objectRef.resource == "pods"`, false},
		{`requestURI.startsWith("/api/v1/namespaces/kube-system/")`, true},
		{`requestURI.contains("configmaps")`, false},
		{`userAgent.startsWith("kubectl/")`, true},
		{`userAgent.matches("^Go-http-client/")`, false},
		{`verb == "create"`, true},
		{`verb == "get"`, false},
		{`stage == "ResponseComplete"`, true},
		{`stage == "ResponseStarted"`, false},
		{`responseStatus.code == 403`, true},
		{`responseStatus.code != 403`, false},
		{`responseStatus.message.contains("cannot create resource")`, true},
		{`responseStatus.message.contains("exceeded quota")`, false},
		{`requestReceivedTimestamp.startsWith("2025-03-14T09:")`, true},
		{`timestamp(requestReceivedTimestamp) < timestamp("2025-01-01T00:00:00Z")`, false},
		{`decision == "forbid"`, true},
		{`decision == "allow"`, false},
		{`cluster == "prod"`, true},
		{`cluster == "staging"`, false},
		{`account == "111122223333"`, true},
		{`account == "444455556666"`, false},
		{`region == "eu-west-1"`, true},
		{`region == "us-east-1"`, false},
		{`logGroup == "/aws/eks/prod/cluster"`, true},
		{`logGroup.endsWith("/staging/cluster")`, false},
		{`logStream.startsWith("kube-apiserver-audit-")`, true},
		{`logStream == "authenticator"`, false},
		// Libraries: strings extension and the Kubernetes network functions.
		{`user.upperAscii() == "ALICE"`, true},
		{`cidr("0.0.0.0/0").containsIP(src_ip)`, true},
		{`cidr("10.0.0.0/8").containsIP(src_ip)`, false},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			f, err := Compile([]string{tt.expr})
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if got := f.Suppress(denial(), source); got != tt.want {
				t.Errorf("Suppress = %v, want %v", got, tt.want)
			}
			if n := f.Errors(); n != 0 {
				t.Errorf("Errors = %d (%v), want 0", n, f.LastError())
			}
		})
	}
}

func TestSuppressIssueExamples(t *testing.T) {
	ci := denial()
	ci.Fields.User = "system:serviceaccount:ci:deployer"
	ci.Fields.SrcIPs = []string{"10.0.12.9"}
	scanner := denial()
	scanner.Fields.SrcIPs = []string{"10.0.12.4"}

	f, err := Compile([]string{
		`user.startsWith("system:serviceaccount:ci:")`,
		`src_ip in ["10.0.12.4"]`,
	})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	tests := []struct {
		name string
		m    detect.Match
		want bool
	}{
		{"CI service account", ci, true},
		{"known scanner IP", scanner, true},
		// The forwarded entry 203.0.113.7 is not allow-listed: a client cannot hide
		// behind the scanner's address by sending X-Forwarded-For.
		{"allow-listed IP among others", denial(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := f.Suppress(tt.m, source); got != tt.want {
				t.Errorf("Suppress = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSuppressPerSourceIP(t *testing.T) {
	// Each source IP is one Splunk row: the match goes only when every row goes, by
	// whichever expression.
	f, err := Compile([]string{`src_ip == "203.0.113.7"`, `src_ip.startsWith("10.")`})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	if !f.Suppress(denial(), source) {
		t.Error("both source IPs suppressed by different expressions: want suppressed")
	}
	m := denial()
	m.Fields.SrcIPs = append(m.Fields.SrcIPs, "198.51.100.1")
	if f.Suppress(m, source) {
		t.Error("198.51.100.1 is not suppressed: want kept")
	}
}

func TestSuppressMissingFields(t *testing.T) {
	// No source IPs: one row with fillnull's value. Nil lists read as empty lists.
	m := denial()
	m.Fields.SrcIPs = nil
	m.Fields.Groups = nil
	tests := []struct {
		expr string
		want bool
	}{
		{`src_ip == "0"`, true},
		{`src_ips.size() == 0 && user.groups.size() == 0`, true},
		{`src_ip == "10.0.12.4"`, false},
	}
	for _, tt := range tests {
		f, err := Compile([]string{tt.expr})
		if err != nil {
			t.Fatalf("Compile(%q): %v", tt.expr, err)
		}
		if got := f.Suppress(m, source); got != tt.want || f.Errors() != 0 {
			t.Errorf("%s: Suppress = %v (errors %d), want %v", tt.expr, got, f.Errors(), tt.want)
		}
	}
}

func TestSuppressRuntimeErrors(t *testing.T) {
	nested := `src_ips.all(a, ` + strings.Repeat(`[0,1,2,3,4,5,6,7,8,9].all(b, `, 5) + `true` + strings.Repeat(`)`, 6)
	bad := denial()
	bad.Fields.Code = "forbidden"
	tests := []struct {
		name    string
		exprs   []string
		m       detect.Match
		errors  int64
		errText string
	}{
		{"not an IP", []string{`ip(src_ip).isLoopback()`}, func() detect.Match {
			m := denial()
			m.Fields.SrcIPs = []string{"0"}
			return m
		}(), 1, `suppression suppression-1 "ip(src_ip).isLoopback()"`},
		{"index out of range", []string{`user.groups[5] == "x"`}, denial(), 1, "index"},
		{"code not a number", []string{`responseStatus.code == 403`}, bad, 1, "responseStatus.code"},
		{"cost limit", []string{nested}, denial(), 1, "cost limit"},
		// A failing expression does not stop the next one from suppressing. Neither reads
		// src_ip, so each runs once for the match's two source IPs.
		{"later expression still applies", []string{`user.groups[5] == "x"`, `user == "alice"`}, denial(), 1, "suppression suppression-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Compile(tt.exprs)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			want := len(tt.exprs) > 1
			if got := f.Suppress(tt.m, source); got != want {
				t.Errorf("Suppress = %v, want %v", got, want)
			}
			if n := f.Errors(); n != tt.errors {
				t.Errorf("Errors = %d, want %d", n, tt.errors)
			}
			if err := f.LastError(); err == nil || !strings.Contains(err.Error(), tt.errText) {
				t.Errorf("LastError = %v, want it to contain %q", err, tt.errText)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name  string
		exprs []string
		want  []string // substrings of the error
	}{
		{"syntax", []string{`user ==`}, []string{`suppression 1 (suppression-1) "user =="`, "Syntax error"}},
		{"not bool", []string{`user`}, []string{`suppression 1 (suppression-1) "user"`, "has type string, want bool"}},
		{"unknown variable", []string{`objectRef.name == "x"`}, []string{"undeclared reference to 'objectRef.name'"}},
		{"code is an int", []string{`responseStatus.code == "403"`}, []string{"found no matching overload for '_==_' applied to '(int, string)'"}},
		{"user is a string", []string{`user.username == "x"`}, []string{"does not support field selection"}},
		{"empty", []string{"  "}, []string{`suppression 1 (suppression-1) "  ": empty expression`}},
		{"too long", []string{`user == "` + strings.Repeat("a", MaxExpressionSize) + `"`}, []string{"expression code point size exceeds limit"}},
		{"all problems named", []string{`verb == "create"`, `user.startsWith(1)`, `src_ip in 1`},
			[]string{`suppression 2 (suppression-2) "user.startsWith(1)"`, `suppression 3 (suppression-3) "src_ip in 1"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Compile(tt.exprs)
			if err == nil {
				t.Fatalf("Compile = %v, want an error", f)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "(suppression-1) \"verb") {
				t.Errorf("error names the valid expression: %v", err)
			}
		})
	}
}

func TestEmptyFilter(t *testing.T) {
	var nilFilter *Filter
	empty, err := Compile(nil)
	if err != nil {
		t.Fatalf("Compile(nil): %v", err)
	}
	for name, f := range map[string]*Filter{"nil": nilFilter, "empty": empty} {
		if f.Suppress(denial(), source) || f.Len() != 0 || f.Errors() != 0 || f.LastError() != nil {
			t.Errorf("%s filter: suppresses or reports something", name)
		}
	}
	f, err := Compile([]string{`user == "alice"`, `verb == "get"`})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	if f.Len() != 2 || f.Expressions()[1] != `verb == "get"` {
		t.Errorf("Len = %d, Expressions = %q", f.Len(), f.Expressions())
	}
}

func TestSuppressAdmissionRefusal(t *testing.T) {
	// ResourceQuota admission answers 403 Forbidden with decision allow.
	quota := denial()
	quota.Decision = "allow"
	quota.Fields.Resource = "pods"
	quota.Fields.Message = `pods "web-0" is forbidden: exceeded quota: compute-resources, requested: pods=1, used: pods=10, limited: pods=10`
	f, err := Compile([]string{`decision == "allow" && responseStatus.message.contains("exceeded quota")`})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	if !f.Suppress(quota, source) {
		t.Error("quota refusal: want suppressed")
	}
	if f.Suppress(denial(), source) {
		t.Error("RBAC denial: want kept")
	}
}

// forwarded returns a match whose source IPs are n forwarded entries made by ip(i),
// then the peer 10.0.12.4, as an attacker sending a long X-Forwarded-For header makes.
func forwarded(n int, ip func(i int) string) detect.Match {
	m := denial()
	m.Fields.SrcIPs = m.Fields.SrcIPs[:0]
	for i := range n {
		m.Fields.SrcIPs = append(m.Fields.SrcIPs, ip(i))
	}
	m.Fields.SrcIPs = append(m.Fields.SrcIPs, "10.0.12.4")
	return m
}

func TestSuppressWorkIsBounded(t *testing.T) {
	distinctIPs := func(i int) string { return fmt.Sprintf("198.51.%d.%d", i/256%256, i%256) }
	sameIP := func(int) string { return "203.0.113.7" }

	// The README's example does not read src_ip: one evaluation for the whole match.
	f, err := Compile([]string{`"10.0.12.4" in src_ips`})
	if err != nil {
		t.Fatal(err)
	}
	if !f.Suppress(forwarded(20_000, distinctIPs), source) {
		t.Error(`"10.0.12.4" in src_ips: want suppressed`)
	}
	if n := f.evaluations.Load(); n != 1 {
		t.Errorf("an expression without src_ip was evaluated %d times for one match, want 1", n)
	}

	// A failing expression is counted each time it runs, which shows how often the first
	// expression of each pair ran; the second decides.
	fails := func(needsIP bool) string {
		if needsIP {
			return `ip(src_ip + "x").family() == 4` // never an IP: fails
		}
		return `responseStatus.code == 403` // the code below is not an integer: fails
	}
	for _, c := range []struct {
		name       string
		exprs      []string
		ips        func(int) string
		maxErrors  int64
		suppressed bool
	}{
		{"no src_ip, 20,000 distinct IPs", []string{fails(false), `"10.0.12.4" in src_ips`}, distinctIPs, 1, true},
		// 20,000 copies of one address are one row.
		{"src_ip, 20,000 copies of one IP", []string{fails(true), `src_ip in ["203.0.113.7", "10.0.12.4"]`}, sameIP, 2, true},
		// 20,000 distinct addresses: the cap stops the work; the match is kept, the cut counted.
		{"src_ip, 20,000 distinct IPs", []string{fails(true), `src_ip.startsWith("198.51.") || src_ip == "10.0.12.4"`}, distinctIPs, MaxEvaluations/2 + 1, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := Compile(c.exprs)
			if err != nil {
				t.Fatal(err)
			}
			m := forwarded(20_000, c.ips)
			m.Fields.Code = "forbidden"
			if got := f.Suppress(m, source); got != c.suppressed {
				t.Errorf("Suppress = %v, want %v", got, c.suppressed)
			}
			if n := f.Errors(); n == 0 || n > c.maxErrors {
				t.Errorf("%d failed evaluations for one match, want 1 to %d", n, c.maxErrors)
			}
			if n := f.evaluations.Load(); n > MaxEvaluations {
				t.Errorf("%d evaluations for one match, want at most %d", n, MaxEvaluations)
			}
		})
	}

	// Within the cap, every distinct address is still its own row (success path).
	f, err = Compile([]string{`src_ip.startsWith("198.51.")`, `src_ip == "10.0.12.4"`})
	if err != nil {
		t.Fatal(err)
	}
	if !f.Suppress(forwarded(500, distinctIPs), source) {
		t.Error("500 forwarded 198.51.x.x and the peer 10.0.12.4, all allowed: want suppressed")
	}
	m := forwarded(500, distinctIPs)
	m.Fields.SrcIPs[250] = "192.0.2.1"
	if f.Suppress(m, source) {
		t.Error("one forwarded address is not allowed: want kept")
	}
	if errors.Is(f.LastError(), ErrTooManyEvaluations) {
		t.Error("the cap was reached within 1,000 evaluations")
	}
	m = forwarded(MaxEvaluations, distinctIPs)
	if f.Suppress(m, source) {
		t.Error("past the evaluation cap: want kept")
	}
	if !errors.Is(f.LastError(), ErrTooManyEvaluations) {
		t.Errorf("past the cap, LastError = %v, want ErrTooManyEvaluations", f.LastError())
	}
}
