package docs_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCommandsLinkNoTestSupport checks what docs/development.md says: the production
// commands link neither the testing package nor a test-support package.
func TestCommandsLinkNoTestSupport(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "./cmd/...", "./functions/...")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	const module = "github.com/eks-unauthorized-access/detector/"
	support := []string{"internal/samples", "internal/golden", "internal/aggregate/aggregatetest", "infra/local/localtest", "bench/workload"}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "testing" {
			t.Errorf("a production command links the testing package")
		}
		for _, s := range support {
			if pkg == module+s {
				t.Errorf("a production command links the test-support package %s", s)
			}
		}
	}
}
