package logsource_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/eks-unauthorized-access/detector/internal/logsource"
)

func TestDefault(t *testing.T) {
	f := logsource.Default()
	for _, c := range []struct {
		group, stream string
		want          logsource.Reason
	}{
		{"/aws/eks/prod/cluster", "kube-apiserver-audit-4f0c2a7d1e6b9a3c5d8e0f1a2b3c4d5e", ""},
		{"/aws/eks/prod-cluster/cluster", "kube-apiserver-audit-", ""},
		{"/aws/eks//cluster", "kube-apiserver-audit-1", ""}, // `*` may match nothing
		// Other streams of the EKS control-plane log group.
		{"/aws/eks/prod/cluster", "kube-apiserver-4f0c2a7d1e6b9a3c", logsource.RejectLogStream},
		{"/aws/eks/prod/cluster", "authenticator-4f0c2a7d1e6b9a3c", logsource.RejectLogStream},
		{"/aws/eks/prod/cluster", "kube-scheduler-4f0c2a7d1e6b9a3c", logsource.RejectLogStream},
		{"/aws/eks/prod/cluster", "", logsource.RejectLogStream},
		{"/aws/eks/prod/cluster", "x-kube-apiserver-audit-1", logsource.RejectLogStream},
		// Forged or unrelated log groups.
		{"/aws/lambda/attacker", "kube-apiserver-audit-1", logsource.RejectLogGroup},
		{"/aws/eks/a/b/cluster", "kube-apiserver-audit-1", logsource.RejectLogGroup}, // `*` never crosses '/'
		{"/aws/eks/prod/cluster/x", "kube-apiserver-audit-1", logsource.RejectLogGroup},
		{"/aws/eks/prod/clusterx", "kube-apiserver-audit-1", logsource.RejectLogGroup},
		{"aws/eks/prod/cluster", "kube-apiserver-audit-1", logsource.RejectLogGroup},
		{"/AWS/EKS/prod/cluster", "kube-apiserver-audit-1", logsource.RejectLogGroup}, // names are case-sensitive
		{"", "", logsource.RejectLogGroup},
	} {
		if got := f.Accept(c.group, c.stream); got != c.want {
			t.Errorf("Accept(%q, %q) = %q, want %q", c.group, c.stream, got, c.want)
		}
	}
}

func TestPatterns(t *testing.T) {
	for _, c := range []struct {
		pattern, name string
		want          bool
	}{
		{"/aws/eks/prod/cluster", "/aws/eks/prod/cluster", true},
		{"/aws/eks/prod/cluster", "/aws/eks/prod/cluster2", false},
		{"*", "anything-at-all", true},
		{"*", "a/b", false},
		{"/eks/*-audit", "/eks/x-audit", true},
		{"/eks/*-audit", "/eks/x-audit-audit", true}, // backtracks past the first "-audit"
		{"/eks/*-audit", "/eks/x/y-audit", false},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "acb", false},
		{"/org/*/eks/*/cluster", "/org/team-a/eks/prod/cluster", true},
		{"/org/*/eks/*/cluster", "/org/team-a/eks/prod/x/cluster", false},
	} {
		f, err := logsource.New([]string{c.pattern}, nil)
		if err != nil {
			t.Fatalf("New(%q): %v", c.pattern, err)
		}
		if got := f.Accept(c.name, "any") == ""; got != c.want {
			t.Errorf("%q matches %q: %v, want %v", c.pattern, c.name, got, c.want)
		}
	}
}

func TestSeveralPatterns(t *testing.T) {
	f, err := logsource.New([]string{"/aws/eks/*/cluster", "/custom/audit/*"}, []string{"kube-apiserver-audit-*", "audit"})
	if err != nil {
		t.Fatal(err)
	}
	for group, want := range map[string]logsource.Reason{
		"/aws/eks/a/cluster": "", "/custom/audit/b": "", "/custom/other/b": logsource.RejectLogGroup,
	} {
		if got := f.Accept(group, "audit"); got != want {
			t.Errorf("Accept(%q, audit) = %q, want %q", group, got, want)
		}
	}
	if got := f.Accept("/custom/audit/b", "kube-apiserver-audit-9"); got != "" {
		t.Errorf("second stream pattern: %q", got)
	}
	if got := f.String(); got != "groups=/aws/eks/*/cluster,/custom/audit/* streams=kube-apiserver-audit-*,audit" {
		t.Errorf("String() = %q", got)
	}
}

func TestEmptyListsAcceptAll(t *testing.T) {
	for name, f := range map[string]*logsource.Filter{"nil": nil, "zero": {}} {
		if got := f.Accept("/aws/lambda/x", "y"); got != "" {
			t.Errorf("%s filter rejected: %q", name, got)
		}
	}
}

func TestBadPatterns(t *testing.T) {
	_, err := logsource.New([]string{"", "/a/**/b", "/*/*/*/*/*/x"}, []string{""})
	if !errors.Is(err, logsource.ErrBadPattern) {
		t.Fatalf("err = %v, want ErrBadPattern", err)
	}
	// Every problem is reported at once.
	for _, want := range []string{`log group pattern ""`, `"/a/**/b"`, `"/*/*/*/*/*/x"`, `log stream pattern ""`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}
