package sam

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

const samconfigPath = "../../samconfig.toml.example"

// SAM CLI reads parameter_overrides (a string, or a list of strings each read on its own)
// with a regular expression: " Key=Value" pairs where Value is a double-quoted or a
// single-quoted string (backslash escapes allowed) or a run of characters other than space,
// double quote and backslash. Text that no pair matches is silently dropped; an entry with
// no pair at all is refused ("is not in valid format"). This is a port of that grammar
// (samcli/cli/types.py, CfnParameterOverridesType) that also reports the dropped text.
var (
	overrideValue = `("(?:\\.|[^"\\]+)*"|'(?:\\.|[^'\\]+)*'|(?:\\.|[^ "\\]+)+)`
	overridePair  = regexp.MustCompile(`(?: )([A-Za-z0-9"']+)=` + overrideValue)
	// The long form, tried first by SAM CLI.
	overrideLong = regexp.MustCompile(`(?:ParameterKey=([A-Za-z0-9"']+),ParameterValue=` + overrideValue + `)`)
)

// override is one Key=Value pair as SAM CLI passes it to CloudFormation.
type override struct{ key, value string }

// parseOverrides reads one parameter_overrides entry as SAM CLI does, and fails where SAM CLI
// fails or would silently drop part of the entry.
func parseOverrides(entry string) ([]override, error) {
	normalized := " " + strings.TrimSpace(entry)
	re := overridePair
	if overrideLong.MatchString(normalized) {
		re = overrideLong
	}
	matches := re.FindAllStringSubmatchIndex(normalized, -1)
	if len(matches) == 0 {
		return nil, fmt.Errorf("%q: SAM CLI refuses it (no Key=Value pair; an empty value must be written Key=\"\")", entry)
	}
	var out []override
	last := 0
	for _, m := range matches {
		if gap := strings.TrimSpace(normalized[last:m[0]]); gap != "" {
			return nil, fmt.Errorf("%q: SAM CLI drops %q (quote values holding spaces or double quotes)", entry, gap)
		}
		last = m[1]
		out = append(out, override{unquote(normalized[m[2]:m[3]]), unquote(normalized[m[4]:m[5]])})
	}
	if gap := strings.TrimSpace(normalized[last:]); gap != "" {
		return nil, fmt.Errorf("%q: SAM CLI drops %q (quote values holding spaces or double quotes)", entry, gap)
	}
	return out, nil
}

// unquote is SAM CLI's _unquote_wrapped_quotes.
func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
		v = v[1 : len(v)-1]
	}
	return strings.NewReplacer(`\ `, " ", `\"`, `"`, `\'`, "'").Replace(v)
}

// samconfigOverrides returns the parameter_overrides entries of every section of a
// samconfig file, by section ("default.deploy").
func samconfigOverrides(data string) (map[string][]string, error) {
	var doc map[string]any
	if _, err := toml.Decode(data, &doc); err != nil {
		return nil, fmt.Errorf("parse TOML: %w", err)
	}
	out := map[string][]string{}
	for env, e := range doc {
		cmds, ok := e.(map[string]any)
		if !ok {
			continue // version = 0.1
		}
		for cmd, c := range cmds {
			params, _ := c.(map[string]any)["parameters"].(map[string]any)
			switch po := params["parameter_overrides"].(type) {
			case nil:
			case string:
				out[env+"."+cmd] = []string{po}
			case []any:
				for _, item := range po {
					s, ok := item.(string)
					if !ok {
						return nil, fmt.Errorf("%s.%s: parameter_overrides holds %T, not a string", env, cmd, item)
					}
					out[env+"."+cmd] = append(out[env+"."+cmd], s)
				}
			default:
				return nil, fmt.Errorf("%s.%s: parameter_overrides is %T", env, cmd, po)
			}
		}
	}
	return out, nil
}

// checkSamconfig returns every problem of the overrides in a samconfig file against the
// template's parameters.
func checkSamconfig(data string, tmpl map[string]any) []error {
	sections, err := samconfigOverrides(data)
	if err != nil {
		return []error{err}
	}
	if len(sections) == 0 {
		return []error{fmt.Errorf("no parameter_overrides in any section")}
	}
	params, _ := tmpl["Parameters"].(map[string]any)
	var errs []error
	for section, entries := range sections {
		seen := map[string]bool{}
		for _, entry := range entries {
			pairs, err := parseOverrides(entry)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", section, err))
				continue
			}
			for _, p := range pairs {
				def, ok := params[p.key].(map[string]any)
				switch {
				case !ok:
					errs = append(errs, fmt.Errorf("%s: %s is not a parameter of the template", section, p.key))
				case seen[p.key]:
					errs = append(errs, fmt.Errorf("%s: %s is given twice", section, p.key))
				default:
					if err := checkParameterValue(def, p.value); err != nil {
						errs = append(errs, fmt.Errorf("%s: %s: %w", section, p.key, err))
					}
				}
				seen[p.key] = true
			}
		}
		for name, p := range params {
			if _, hasDefault := p.(map[string]any)["Default"]; !hasDefault && !seen[name] {
				errs = append(errs, fmt.Errorf("%s: required parameter %s has no value", section, name))
			}
		}
	}
	return errs
}

// TestSamconfigExample: samconfig.toml.example deploys as it stands.
func TestSamconfigExample(t *testing.T) {
	data := readFile(t, samconfigPath)
	tmpl, err := loadTemplate(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range checkSamconfig(data, tmpl) {
		t.Error(e)
	}
	// The values reach the template as SAM CLI passes them, and render with it.
	sections, _ := samconfigOverrides(data)
	values := map[string]string{}
	for _, entry := range sections["default.deploy"] {
		pairs, _ := parseOverrides(entry)
		for _, p := range pairs {
			values[p.key] = p.value
		}
	}
	if want := `{ ($.verb = "create") && ($.responseStatus.reason = "Forbidden") }`; values["FilterPattern"] != want {
		t.Errorf("FilterPattern reaches SAM CLI as %q, want %q", values["FilterPattern"], want)
	}
	if _, err := render(tmpl, values); err != nil {
		t.Errorf("render with the example's values: %v", err)
	}
}

func TestParseOverridesLikeSAMCLI(t *testing.T) {
	for _, c := range []struct {
		entry string
		want  []override
	}{
		{"MatchMode=seed", []override{{"MatchMode", "seed"}}},
		{"MatchMode=seed AlertGroupBy=user", []override{{"MatchMode", "seed"}, {"AlertGroupBy", "user"}}},
		{`FilterPattern="{ $.responseStatus.code = 403 }"`, []override{{"FilterPattern", "{ $.responseStatus.code = 403 }"}}},
		{`FilterPattern='{ ($.verb = "create") }'`, []override{{"FilterPattern", `{ ($.verb = "create") }`}}},
		{`FilterPattern="{ ($.verb = \"create\") }"`, []override{{"FilterPattern", `{ ($.verb = "create") }`}}},
		{`SlackChannelId=""`, []override{{"SlackChannelId", ""}}},
		{"LogGroupNames=/aws/eks/a/cluster,/aws/eks/b/cluster", []override{{"LogGroupNames", "/aws/eks/a/cluster,/aws/eks/b/cluster"}}},
		{"ParameterKey=MatchMode,ParameterValue=authz", []override{{"MatchMode", "authz"}}},
	} {
		got, err := parseOverrides(c.entry)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("parseOverrides(%q) = %v, %v; want %v", c.entry, got, err, c.want)
		}
	}
}

// TestSamconfigRefusesBrokenOverrides feeds the overrides that made `sam deploy` with the
// earlier example fail, and other mistakes the check exists for.
func TestSamconfigRefusesBrokenOverrides(t *testing.T) {
	tmpl, err := loadTemplate(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	const head = "version = 0.1\n[default.deploy.parameters]\nparameter_overrides = [\n  \"LogGroupNames=/aws/eks/prod/cluster\",\n"
	good := head + "]\n"
	if errs := checkSamconfig(good, tmpl); len(errs) != 0 {
		t.Fatalf("a correct configuration is refused: %v", errs)
	}
	for name, line := range map[string]string{
		"unquoted filter pattern (reaches SAM CLI as {)": `  'FilterPattern={ ($.verb = "create") && ($.responseStatus.reason = "Forbidden") }',`,
		"empty Slack workspace id":                       `  "SlackWorkspaceId=",`,
		"empty Slack channel id":                         `  "SlackChannelId=",`,
		"unknown parameter":                              `  "MatchModes=seed",`,
		"value not allowed":                              `  "MatchMode=fuzzy",`,
		"number out of range":                            `  "MaxDecompressedBytes=1024",`,
		"pattern not matched":                            `  "SuppressionsParameterName=relative/name",`,
		"Slack channel name instead of id":               `  "SlackChannelId=#security-alerts",`,
	} {
		t.Run(name, func(t *testing.T) {
			if errs := checkSamconfig(head+line+"\n]\n", tmpl); len(errs) == 0 {
				t.Error("accepted")
			}
		})
	}
	t.Run("required parameter missing", func(t *testing.T) {
		if errs := checkSamconfig("version = 0.1\n[default.deploy.parameters]\nparameter_overrides = \"MatchMode=seed\"\n", tmpl); len(errs) == 0 {
			t.Error("accepted")
		}
	})
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
