package sam

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// cfnLintInstall is the command that installs cfn-lint with the SAM translator.
const cfnLintInstall = "pip install cfn-lint aws-sam-translator"

// mustHaveCfnLint returns the path of cfn-lint. The check belongs to the full tier
// (`make test`): with -short it is skipped, otherwise a missing cfn-lint fails the test
// with the install command, never skips it.
func mustHaveCfnLint(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("cfn-lint runs in the full tier (make test), not with -short")
	}
	path, err := exec.LookPath("cfn-lint")
	if err != nil {
		t.Fatalf("cfn-lint is needed to validate the templates and was not found on PATH: %s", cfnLintInstall)
	}
	return path
}

// repoRoot is the repository root, two levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// cfnLint runs cfn-lint with the repository's .cfnlintrc on the given templates and returns
// what it printed; err is non-nil when it found anything (or could not run).
func cfnLint(t *testing.T, templates ...string) (string, error) {
	t.Helper()
	bin := mustHaveCfnLint(t)
	root := repoRoot(t)
	args := append([]string{"--config-file", filepath.Join(root, ".cfnlintrc"), "--format", "parseable", "--"}, templates...)
	cmd := exec.Command(bin, args...)
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// shippedTemplates lists the CloudFormation templates of the repository: YAML or JSON files
// that declare AWSTemplateFormatVersion or a Transform, outside tool and build folders.
func shippedTemplates(t *testing.T, root string) []string {
	t.Helper()
	skip := map[string]bool{".git": true, ".tools": true, ".aws-sam": true, "node_modules": true, "bin": true, "testdata": true}
	marker := regexp.MustCompile(`(?m)^\s*"?(AWSTemplateFormatVersion|Transform)"?\s*:`)
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if skip[d.Name()] {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(path) {
		case ".yaml", ".yml", ".json", ".template":
		default:
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if marker.Match(data) {
			rel, _ := filepath.Rel(root, path)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCfnLint validates every template the project ships with cfn-lint and the SAM
// translator (what `sam validate --lint` runs): any error, or any warning not listed in
// .cfnlintrc, fails.
func TestCfnLint(t *testing.T) {
	templates := shippedTemplates(t, repoRoot(t))
	found := false
	for _, p := range templates {
		found = found || p == "template.yaml"
	}
	if !found {
		t.Fatalf("template.yaml not among the templates found: %v", templates)
	}
	out, err := cfnLint(t, templates...)
	if err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("cfn-lint %v: %v\n%s", templates, err, out)
	}
}

// TestCfnLintRefusesPlaceholderInDependsOn breaks template.yaml the way it once was (a
// DependsOn naming LogsPermission&{LogGroupName}, which CloudFormation never substitutes)
// and expects cfn-lint to report E3005, so TestCfnLint cannot pass on such a template.
func TestCfnLintRefusesPlaceholderInDependsOn(t *testing.T) {
	data, err := os.ReadFile(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	const anchor = "        Type: AWS::Logs::SubscriptionFilter\n"
	if !bytes.Contains(data, []byte(anchor)) {
		t.Fatalf("template.yaml has no %q to break", anchor)
	}
	broken := bytes.Replace(data, []byte(anchor), []byte(anchor+"        DependsOn: LogsPermission&{LogGroupName}\n"), 1)
	path := filepath.Join(t.TempDir(), "template.yaml")
	if err := os.WriteFile(path, broken, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := cfnLint(t, path)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !strings.Contains(out, ":E3005:") {
		t.Fatalf("cfn-lint on the broken template: %v, want E3005 in:\n%s", err, out)
	}
}

// TestCfnLintConfig checks .cfnlintrc: only warnings may be ignored, each with a reason.
func TestCfnLintConfig(t *testing.T) {
	ignored, err := ignoredChecks(filepath.Join(repoRoot(t), ".cfnlintrc"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ignored {
		t.Error(e)
	}
}

// ignoredChecks returns a problem for each entry of ignore_checks that is not a warning
// with a one-line reason ("- W1234 # reason").
func ignoredChecks(path string) ([]error, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read cfn-lint configuration: %w", err)
	}
	defer f.Close()
	entry := regexp.MustCompile(`^\s*-\s*([A-Za-z0-9]+)\s*(?:#\s*(.*))?$`)
	var problems []error
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "ignore_checks:") {
			in = true
			rest := strings.TrimSpace(strings.TrimPrefix(line, "ignore_checks:"))
			if rest != "" && rest != "[]" && !strings.HasPrefix(rest, "#") {
				problems = append(problems, fmt.Errorf("ignore_checks must be a block list (one rule and its reason a line), not %q", rest))
			}
			continue
		}
		if in && line != "" && !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "-") && !strings.HasPrefix(line, "#") {
			in = false
		}
		if !in || strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		m := entry.FindStringSubmatch(line)
		switch {
		case m == nil:
			problems = append(problems, fmt.Errorf("ignore_checks: cannot read %q", line))
		case !strings.HasPrefix(m[1], "W"):
			problems = append(problems, fmt.Errorf("ignore_checks: %s is not a warning; errors cannot be ignored", m[1]))
		case strings.TrimSpace(m[2]) == "":
			problems = append(problems, fmt.Errorf("ignore_checks: %s has no reason (write `- %s # why`)", m[1], m[1]))
		}
	}
	return problems, sc.Err()
}

func TestIgnoredChecksCatchesMistakes(t *testing.T) {
	for name, c := range map[string]struct {
		config string
		bad    int
	}{
		"none":              {"regions: [us-east-1]\nignore_checks: []\n", 0},
		"warning with why":  {"ignore_checks:\n  - W3011 # the table is retained on purpose\nregions:\n  - us-east-1\n", 0},
		"warning, no why":   {"ignore_checks:\n  - W3011\n", 1},
		"an error":          {"ignore_checks:\n  - E3005 # no\n", 1},
		"flow list":         {"ignore_checks: [W3011]\n", 1},
		"two, one reasoned": {"ignore_checks:\n  - W3011 # retained\n  - W1020\n", 1},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), ".cfnlintrc")
			if err := os.WriteFile(path, []byte(c.config), 0o600); err != nil {
				t.Fatal(err)
			}
			problems, err := ignoredChecks(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(problems) != c.bad {
				t.Errorf("%d problems %v, want %d", len(problems), problems, c.bad)
			}
		})
	}
}

// TestCfnLintWithIntegrations lints template.yaml as deployed with both integrations on
// (EnableSecurityHub=true, a named EventBusName): a copy whose parameter defaults are those
// values, so that every rule sees the conditional statements, alarms and variables taken.
// TestCfnLint covers the defaults (both off).
func TestCfnLintWithIntegrations(t *testing.T) {
	data, err := os.ReadFile(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	on := string(data)
	for _, r := range []struct{ from, to string }{
		{"  EnableSecurityHub:\n    Type: String\n    Default: \"false\"\n", "  EnableSecurityHub:\n    Type: String\n    Default: \"true\"\n"},
		{"  EventBusName:\n    Type: String\n    Default: \"\"\n", "  EventBusName:\n    Type: String\n    Default: security\n"},
	} {
		if !strings.Contains(on, r.from) {
			t.Fatalf("template.yaml has no %q to turn on", r.from)
		}
		on = strings.Replace(on, r.from, r.to, 1)
	}
	path := filepath.Join(t.TempDir(), "template.yaml")
	if err := os.WriteFile(path, []byte(on), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := cfnLint(t, path); err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("cfn-lint with the integrations on: %v\n%s", err, out)
	}
}
