package pipeline

import (
	"regexp"
	"testing"
)

// TestSkipReasonMetric: every skip reason has one metric name, CamelCase letters only (so
// the metric is LinesSkipped<Name>), and no two reasons share one.
func TestSkipReasonMetric(t *testing.T) {
	camel := regexp.MustCompile(`^[A-Z][A-Za-z]+$`)
	seen := map[string]SkipReason{}
	for _, r := range skipReasons {
		m := r.Metric()
		if !camel.MatchString(m) || m == string(r) {
			t.Errorf("%s: metric name %q, want a CamelCase name of its own", r, m)
		}
		if other, dup := seen[m]; dup {
			t.Errorf("%s and %s share the metric name %s", r, other, m)
		}
		seen[m] = r
	}
}
