package suppress

import (
	"context"
	"errors"
	"strings"

	"cel.dev/cel-go/common"
	"cel.dev/cel-go/parser"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// Parse splits a newline-separated list of expressions (the SUPPRESSIONS variable, or a
// String or SecureString parameter): one expression a line, surrounding spaces trimmed,
// blank lines and lines starting with # ignored. Several conditions on one line can be
// joined with ||.
func Parse(text string) []string {
	var exprs []string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		exprs = append(exprs, line)
	}
	return exprs
}

// SSMGetter reads one Systems Manager parameter; *ssm.Client satisfies it.
type SSMGetter interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

var errNoParameter = errors.New("response has no parameter")

// ParseParameter returns the expressions in a parameter value of the given type. String
// and SecureString values are parsed like SUPPRESSIONS (Parse). Parameter Store returns a
// StringList as its items joined by commas, and expressions contain commas themselves,
// so each line is cut at the commas that end a complete expression: items are rejoined
// until they parse. Blank items and items starting with # are ignored; such a comment
// item must not contain a comma.
func ParseParameter(typ ssmtypes.ParameterType, value string) []string {
	if typ != ssmtypes.ParameterTypeStringList {
		return Parse(value)
	}
	var exprs []string
	for _, line := range strings.Split(value, "\n") {
		exprs = append(exprs, splitList(line)...)
	}
	return exprs
}

// splitList cuts a comma-joined list of expressions at the shortest prefixes that
// parse. Top-level commas are not valid CEL, so a comma inside a complete expression
// always sits in an unfinished prefix (an open bracket, call or string). A tail that
// never parses is returned as it is, so Compile reports it.
func splitList(line string) []string {
	p, err := parser.NewParser(parser.ExpressionSizeCodePointLimit(MaxExpressionSize))
	if err != nil {
		// Only invalid options fail; keep the line whole rather than guess.
		return []string{line}
	}
	var exprs []string
	cur := ""
	for _, piece := range strings.Split(line, ",") {
		if cur == "" {
			if t := strings.TrimSpace(piece); t == "" || strings.HasPrefix(t, "#") {
				continue // blank or comment item
			}
			cur = piece
		} else {
			cur += "," + piece
		}
		if _, errs := p.Parse(common.NewTextSource(cur)); len(errs.GetErrors()) == 0 {
			exprs = append(exprs, strings.TrimSpace(cur))
			cur = ""
		}
	}
	if strings.TrimSpace(cur) != "" {
		exprs = append(exprs, strings.TrimSpace(cur))
	}
	return exprs
}
