package suppress

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Entry is one suppression: a CEL expression with the facts an operator needs to keep a
// list of exceptions under control (who asked for it, why, until when).
type Entry struct {
	// Name identifies the entry in metrics, log lines and alerts; it matches NamePattern.
	// Entries written as bare expressions get generated names (<origin>-<position>).
	Name string
	// Expression is the CEL expression; true means "suppress".
	Expression string
	// Owner and Reason say who asked for the entry and why (required in the file format).
	Owner  string
	Reason string
	// Expires is when the entry stops suppressing by itself; zero means never.
	Expires time.Time
	// DryRun entries suppress nothing: alerts say which of them would have suppressed them.
	DryRun bool

	// hidden keeps the expression's text out of error messages (a SecureString parameter).
	hidden bool
}

// NamePattern is what an entry name must match: safe as a CloudWatch metric dimension
// value, in a log line and in an alert, whatever renders it.
var NamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// MaxEntries bounds the entries of one suppression set (each adds work per match and, when
// it matches, one metric record per invocation).
const MaxEntries = 500

// file is the JSON document form of a suppression set.
type file struct {
	Suppressions []fileEntry `json:"suppressions"`
}

type fileEntry struct {
	Name       string `json:"name"`
	Expression string `json:"expression"`
	Owner      string `json:"owner"`
	Reason     string `json:"reason"`
	// Expires is a date (2026-01-31: the entry stops at the start of that day, UTC) or an
	// RFC 3339 time.
	Expires string `json:"expires,omitempty"`
	DryRun  bool   `json:"dryRun,omitempty"`
}

// IsDocument reports whether text is a suppression file in the JSON document form (its
// first non-space character is "{") rather than bare expressions, one a line.
func IsDocument(text string) bool {
	return strings.HasPrefix(strings.TrimSpace(text), "{")
}

// ParseEntries reads a suppression set: either the JSON document
//
//	{"suppressions": [{"name": "ci-deployer", "expression": "...", "owner": "...",
//	  "reason": "...", "expires": "2026-01-31", "dryRun": true}, ...]}
//
// or, for compatibility, bare expressions one a line as Parse reads them, which get the
// names <origin>-1, <origin>-2, … and no owner, reason or expiry. Every problem is
// reported at once; expressions are not compiled here (see CompileEntries).
func ParseEntries(text, origin string) ([]Entry, error) {
	if !IsDocument(text) {
		entries := Named(origin, Parse(text))
		return entries, checkNames(entries)
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(text)))
	dec.DisallowUnknownFields() // a misspelt "expires" must not pass silently
	var doc file
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("read suppression file: %w", err)
	}
	if dec.More() {
		return nil, errors.New("read suppression file: text after the JSON document")
	}
	var errs []error
	entries := make([]Entry, 0, len(doc.Suppressions))
	for i, fe := range doc.Suppressions {
		e := Entry{Name: fe.Name, Expression: fe.Expression, Owner: strings.TrimSpace(fe.Owner),
			Reason: strings.TrimSpace(fe.Reason), DryRun: fe.DryRun}
		at := fmt.Sprintf("suppression %d", i+1)
		if NamePattern.MatchString(fe.Name) {
			at = fmt.Sprintf("suppression %d (%s)", i+1, fe.Name)
		}
		for _, req := range []struct{ field, value string }{{"expression", fe.Expression}, {"owner", e.Owner}, {"reason", e.Reason}} {
			if strings.TrimSpace(req.value) == "" {
				errs = append(errs, fmt.Errorf("%s: %s is required", at, req.field))
			}
		}
		if fe.Expires != "" {
			t, err := ParseExpiry(fe.Expires)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", at, err))
			}
			e.Expires = t
		}
		entries = append(entries, e)
	}
	if err := checkNames(entries); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return entries, nil
}

// Named turns bare expressions into entries named <origin>-1, <origin>-2, ….
func Named(origin string, exprs []string) []Entry {
	if len(exprs) == 0 {
		return nil
	}
	entries := make([]Entry, len(exprs))
	for i, e := range exprs {
		entries[i] = Entry{Name: origin + "-" + strconv.Itoa(i+1), Expression: e}
	}
	return entries
}

// ParseExpiry reads an expiry: a date (YYYY-MM-DD, the start of that day in UTC) or an
// RFC 3339 time.
func ParseExpiry(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("expires %q is neither a date (2026-01-31) nor an RFC 3339 time", s)
	}
	return t.UTC(), nil
}

// checkNames reports the names that are invalid or used twice in entries, all at once.
func checkNames(entries []Entry) error {
	var errs []error
	if len(entries) > MaxEntries {
		errs = append(errs, fmt.Errorf("%d suppressions, more than the limit of %d", len(entries), MaxEntries))
	}
	seen := make(map[string]int, len(entries))
	for i, e := range entries {
		switch first, dup := seen[e.Name]; {
		case !NamePattern.MatchString(e.Name):
			errs = append(errs, fmt.Errorf("suppression %d: name %q is not 1 to 64 letters, digits, '.', '_' or '-' starting with a letter or digit", i+1, e.Name))
		case dup:
			errs = append(errs, fmt.Errorf("suppression %d: name %q is already used by suppression %d", i+1, e.Name, first))
		default:
			seen[e.Name] = i + 1
		}
	}
	return errors.Join(errs...)
}
