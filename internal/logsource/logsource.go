// Package logsource decides which CloudWatch Logs log groups and log streams may feed the
// detection. With an account-level subscription filter policy every log group of a member
// account can reach the function, and anyone allowed to write to some log group could
// forge audit lines there: only deliveries whose log group and log stream match the
// configured patterns are used; the others are counted by Reason and never alerted on.
//
// A pattern is a literal name in which `*` stands for any run of characters other than
// `/` (a cluster name never holds one). CloudWatch Logs does not allow `*` in log group or
// log stream names, so the wildcard is never ambiguous.
package logsource

import (
	"errors"
	"fmt"
	"strings"
)

// Default patterns: the log group EKS writes its control-plane logs to, and the streams
// of its audit log (other streams of the group carry the API server's, the
// authenticator's, the scheduler's and the controller managers' own logs).
var (
	DefaultLogGroupPatterns  = []string{"/aws/eks/*/cluster"}
	DefaultLogStreamPatterns = []string{"kube-apiserver-audit-*"}
)

// Reason says why a delivery was rejected.
type Reason string

// Rejection reasons.
const (
	RejectLogGroup  Reason = "log_group"  // the log group matches no log group pattern
	RejectLogStream Reason = "log_stream" // the log group matches, the log stream no stream pattern
)

// Filter accepts log groups and streams by pattern. The zero value accepts everything
// (replay and tests); the function uses Default or a configured filter.
type Filter struct {
	groups, streams []pattern
}

// Default returns the filter of DefaultLogGroupPatterns and DefaultLogStreamPatterns.
func Default() *Filter {
	f, err := New(DefaultLogGroupPatterns, DefaultLogStreamPatterns)
	if err != nil {
		panic(err) // the defaults are constants checked by the tests
	}
	return f
}

// ErrBadPattern is wrapped by the error New returns for an unusable pattern.
var ErrBadPattern = errors.New("bad log source pattern")

// New returns a filter accepting a delivery when its log group matches one of groups and
// its log stream one of streams. An empty list accepts every name; an empty pattern or one
// with "**" is refused.
func New(groups, streams []string) (*Filter, error) {
	var errs []error
	f := &Filter{}
	for _, list := range []struct {
		what string
		in   []string
		out  *[]pattern
	}{{"log group", groups, &f.groups}, {"log stream", streams, &f.streams}} {
		for _, s := range list.in {
			p, err := compile(s)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s pattern %q: %w", list.what, s, err))
				continue
			}
			*list.out = append(*list.out, p)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return f, nil
}

// Accept returns "" when the delivery of logStream in logGroup may feed the detection,
// otherwise the reason it may not.
func (f *Filter) Accept(logGroup, logStream string) Reason {
	if f == nil {
		return ""
	}
	if !matchAny(f.groups, logGroup) {
		return RejectLogGroup
	}
	if !matchAny(f.streams, logStream) {
		return RejectLogStream
	}
	return ""
}

// String lists the patterns, for logs.
func (f *Filter) String() string {
	if f == nil {
		return "groups=* streams=*"
	}
	join := func(ps []pattern) string {
		if len(ps) == 0 {
			return "*"
		}
		s := make([]string, len(ps))
		for i, p := range ps {
			s[i] = p.src
		}
		return strings.Join(s, ",")
	}
	return "groups=" + join(f.groups) + " streams=" + join(f.streams)
}

// maxWildcards bounds the wildcards of one pattern.
const maxWildcards = 4

// pattern is a compiled pattern: the literal parts between its wildcards.
type pattern struct {
	src   string
	parts []string // len(parts) == number of '*' + 1
}

func compile(s string) (pattern, error) {
	switch {
	case s == "":
		return pattern{}, fmt.Errorf("empty: %w", ErrBadPattern)
	case strings.Contains(s, "**"):
		return pattern{}, fmt.Errorf("\"**\" is not supported (`*` never crosses a /): %w", ErrBadPattern)
	case strings.Count(s, "*") > maxWildcards:
		// Matching backtracks per wildcard: bound the work per delivery.
		return pattern{}, fmt.Errorf("more than %d wildcards: %w", maxWildcards, ErrBadPattern)
	}
	return pattern{src: s, parts: strings.Split(s, "*")}, nil
}

func matchAny(ps []pattern, name string) bool {
	if len(ps) == 0 {
		return true
	}
	for _, p := range ps {
		if p.match(name) {
			return true
		}
	}
	return false
}

// match reports whether name matches p: the literal parts in order, each `*` between them
// standing for a run of characters without '/'. Wildcards are matched leftmost-shortest;
// since a wildcard cannot cross '/', a later occurrence of the next literal can only be
// reached without crossing one, so backtracking over the segment is enough.
func (p pattern) match(name string) bool {
	return matchParts(p.parts, name)
}

func matchParts(parts []string, name string) bool {
	if !strings.HasPrefix(name, parts[0]) {
		return false
	}
	name = name[len(parts[0]):]
	if len(parts) == 1 {
		return name == ""
	}
	// parts[0] was followed by '*': try every split of name within the current segment.
	for i := 0; i <= len(name); i++ {
		if matchParts(parts[1:], name[i:]) {
			return true
		}
		if i < len(name) && name[i] == '/' {
			return false
		}
	}
	return false
}
