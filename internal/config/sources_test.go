package config_test

import (
	"strings"
	"testing"

	"github.com/eks-unauthorized-access/detector/internal/config"
	"github.com/eks-unauthorized-access/detector/internal/logsource"
)

func TestSourcePatterns(t *testing.T) {
	base := map[string]string{"TABLE_NAME": "detector", "TOPIC_ARN": topic}
	load := func(t *testing.T, extra map[string]string) (config.Config, error) {
		t.Helper()
		vars := map[string]string{}
		for k, v := range base {
			vars[k] = v
		}
		for k, v := range extra {
			vars[k] = v
		}
		return config.Load(env(vars))
	}
	t.Run("defaults", func(t *testing.T) {
		c, err := load(t, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Sources.String(); got != "groups=/aws/eks/*/cluster streams=kube-apiserver-audit-*" {
			t.Errorf("Sources = %s", got)
		}
		if r := c.Sources.Accept("/aws/lambda/forged", "kube-apiserver-audit-1"); r != logsource.RejectLogGroup {
			t.Errorf("forged log group: %q, want %q", r, logsource.RejectLogGroup)
		}
	})
	t.Run("lists", func(t *testing.T) {
		c, err := load(t, map[string]string{
			"LOG_GROUP_PATTERNS":  " /aws/eks/*/cluster , /platform/*/k8s-audit ",
			"LOG_STREAM_PATTERNS": "kube-apiserver-audit-*,audit",
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, c2 := range []struct{ group, stream string }{
			{"/aws/eks/prod/cluster", "kube-apiserver-audit-1"},
			{"/platform/team-a/k8s-audit", "audit"},
		} {
			if r := c.Sources.Accept(c2.group, c2.stream); r != "" {
				t.Errorf("Accept(%s, %s) = %q, want accepted", c2.group, c2.stream, r)
			}
		}
		if r := c.Sources.Accept("/platform/team-a/k8s-audit", "authenticator-1"); r != logsource.RejectLogStream {
			t.Errorf("other stream: %q", r)
		}
	})
	t.Run("bad patterns are reported with the other problems", func(t *testing.T) {
		_, err := load(t, map[string]string{"LOG_GROUP_PATTERNS": "/aws/eks/*/cluster,,", "LOG_STREAM_PATTERNS": "a**", "LOG_LEVEL": "loud"})
		if err == nil {
			t.Fatal("Load succeeded")
		}
		for _, want := range []string{"LOG_GROUP_PATTERNS/LOG_STREAM_PATTERNS", `log group pattern ""`, `log stream pattern "a**"`, "LOG_LEVEL"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error does not mention %s:\n%v", want, err)
			}
		}
	})
}
