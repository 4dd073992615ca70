package suppress

import (
	"slices"
	"testing"

	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string
	}{
		{"empty", "", nil},
		{"only comments and blanks", "# CI\n\n   \n  # scanners\n", nil},
		{"one", `user.startsWith("system:serviceaccount:ci:")`, []string{`user.startsWith("system:serviceaccount:ci:")`}},
		{
			"comments, blank lines, indentation, CRLF",
			"# CI deployers\r\n  user.startsWith(\"system:serviceaccount:ci:\")  \r\n\r\n# scanner\r\nsrc_ip in [\"10.0.12.4\"]\r\n",
			[]string{`user.startsWith("system:serviceaccount:ci:")`, `src_ip in ["10.0.12.4"]`},
		},
		{
			"a # inside an expression is kept",
			`requestURI.endsWith("#frag") || user == "a#b"`,
			[]string{`requestURI.endsWith("#frag") || user == "a#b"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Parse(tt.text); !slices.Equal(got, tt.want) {
				t.Errorf("Parse = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseParameter(t *testing.T) {
	multiline := "# CI\nuser.startsWith(\"system:serviceaccount:ci:\")\nsrc_ip in [\"10.0.12.4\", \"10.0.12.5\"]\n"
	tests := []struct {
		name  string
		typ   ssmtypes.ParameterType
		value string
		want  []string
	}{
		{"String", ssmtypes.ParameterTypeString, multiline,
			[]string{`user.startsWith("system:serviceaccount:ci:")`, `src_ip in ["10.0.12.4", "10.0.12.5"]`}},
		{"SecureString", ssmtypes.ParameterTypeSecureString, multiline,
			[]string{`user.startsWith("system:serviceaccount:ci:")`, `src_ip in ["10.0.12.4", "10.0.12.5"]`}},
		{"String keeps commas", ssmtypes.ParameterTypeString, `verb == "create", user == "x"`,
			[]string{`verb == "create", user == "x"`}},
		{
			// Parameter Store joins the items with commas; commas inside lists, calls
			// and strings stay inside their expression.
			"StringList",
			ssmtypes.ParameterTypeStringList,
			`# CI,user.startsWith("system:serviceaccount:ci:"),src_ip in ["10.0.12.4", "10.0.12.5"], ,user == "a,b",cidr("10.0.0.0/8").containsIP(src_ip)`,
			[]string{
				`user.startsWith("system:serviceaccount:ci:")`,
				`src_ip in ["10.0.12.4", "10.0.12.5"]`,
				`user == "a,b"`,
				`cidr("10.0.0.0/8").containsIP(src_ip)`,
			},
		},
		{"StringList with newlines", ssmtypes.ParameterTypeStringList, "verb == \"create\"\n# note\nuser == \"x\",stage == \"y\"",
			[]string{`verb == "create"`, `user == "x"`, `stage == "y"`}},
		{"StringList tail that never parses", ssmtypes.ParameterTypeStringList, `user == "x",src_ip in ["a", "b"`,
			[]string{`user == "x"`, `src_ip in ["a", "b"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ParseParameter(tt.typ, tt.value)
			if !slices.Equal(got, tt.want) {
				t.Errorf("ParseParameter = %q, want %q", got, tt.want)
			}
			// What a parameter yields is what Compile takes (except the broken tail).
			if tt.name != "StringList tail that never parses" && tt.name != "String keeps commas" {
				if _, err := Compile(got); err != nil {
					t.Errorf("Compile: %v", err)
				}
			}
		})
	}
}
