// Package suppress implements the detection's filter macro,
// `kubernetes_unauthorized_access_filter`: user-supplied suppressions, written as CEL
// expressions (the expression language of Kubernetes admission and IAM policies), that
// drop known false positives without code changes.
//
// Each expression is a boolean over the output fields of a match, named as in the
// Splunk search (user, src_ip, user.groups, objectRef.namespace, responseStatus.code, …)
// plus the origin of the events (cluster, account, logGroup, …). A match is suppressed
// when, for every one of its source IPs, at least one expression is true; see Filter.
//
// Expressions are compiled and type-checked once (Compile), so an invalid one is
// reported at start-up, naming the expression and the problem. An expression that fails
// while evaluating (for example ip(src_ip) on a value that is not an IP) counts as false
// for that match and is counted by Filter.Errors: a broken suppression never hides an
// alert.
package suppress

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/ext"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/detect"
)

// Limits that keep a hostile or careless expression from stalling the function.
const (
	// CostLimit caps the runtime cost of one evaluation of one expression (a unit is
	// roughly one operation; a list membership test over 1,000 literals costs about
	// 1,000). Evaluation stops with an error, counted as not suppressed, beyond it.
	CostLimit = 100_000
	// MaxExpressionSize caps the length of one expression, in characters.
	MaxExpressionSize = 16_384
	// MaxEvaluations caps the expression evaluations spent on one match. A match that
	// would need more (thousands of distinct forwarded addresses, each checked by an
	// expression that reads src_ip) is not suppressed, and the cut is counted by Errors.
	MaxEvaluations = 1_000
)

// ErrTooManyEvaluations is counted by Errors when a match needs more than MaxEvaluations.
var ErrTooManyEvaluations = errors.New("evaluations per match exceed the limit; match not suppressed")

// Names of the variables an expression can read. Dotted names are single variables
// (CEL resolves the longest declared qualified name first), so `user` is a string
// while `user.groups` is a list, as in the Splunk search's output.
const (
	VarUser                     = "user"
	VarUserUID                  = "user.uid"
	VarUserGroups               = "user.groups"
	VarSrcIP                    = "src_ip"
	VarSrcIPs                   = "src_ips"
	VarNamespace                = "objectRef.namespace"
	VarResource                 = "objectRef.resource"
	VarRequestURI               = "requestURI"
	VarUserAgent                = "userAgent"
	VarVerb                     = "verb"
	VarStage                    = "stage"
	VarCode                     = "responseStatus.code"
	VarMessage                  = "responseStatus.message"
	VarRequestReceivedTimestamp = "requestReceivedTimestamp"
	VarDecision                 = "decision"
	VarCluster                  = "cluster"
	VarAccount                  = "account"
	VarRegion                   = "region"
	VarLogGroup                 = "logGroup"
	VarLogStream                = "logStream"
)

// Filter is a compiled list of suppressions. It is safe for concurrent use. A nil
// *Filter suppresses nothing.
type Filter struct {
	entries  []Entry
	programs []cel.Program
	// perIP[i] says that expression i reads src_ip: only those are evaluated once per
	// distinct source IP; the others give the same answer for every IP.
	perIP []bool
	// order is the evaluation order: enforced entries before dry-run ones (so that a
	// dry-run entry is only reported where the enforced ones would keep the match), and
	// within each, the expressions that do not read src_ip first.
	order []int
	now   func() time.Time
	// evaluations counts program evaluations (read by tests).
	evaluations atomic.Int64

	errors  atomic.Int64
	mu      sync.Mutex
	lastErr error
}

// env declares the variables and libraries available to suppressions.
func env() (*cel.Env, error) {
	str := cel.StringType
	list := cel.ListType(cel.StringType)
	return cel.NewEnv(
		cel.Variable(VarUser, str),
		cel.Variable(VarUserUID, str),
		cel.Variable(VarUserGroups, list),
		cel.Variable(VarSrcIP, str),
		cel.Variable(VarSrcIPs, list),
		cel.Variable(VarNamespace, str),
		cel.Variable(VarResource, str),
		cel.Variable(VarRequestURI, str),
		cel.Variable(VarUserAgent, str),
		cel.Variable(VarVerb, str),
		cel.Variable(VarStage, str),
		cel.Variable(VarCode, cel.IntType),
		cel.Variable(VarMessage, str),
		cel.Variable(VarRequestReceivedTimestamp, str),
		cel.Variable(VarDecision, str),
		cel.Variable(VarCluster, str),
		cel.Variable(VarAccount, str),
		cel.Variable(VarRegion, str),
		cel.Variable(VarLogGroup, str),
		cel.Variable(VarLogStream, str),
		// lowerAscii, split, replace, …; ip() and cidr() as in Kubernetes CEL.
		ext.Strings(),
		ext.Network(),
		cel.ParserExpressionSizeLimit(MaxExpressionSize),
	)
}

// Compile compiles bare expressions, named suppression-1, suppression-2, … (see
// CompileEntries); the filter's clock is time.Now.
func Compile(exprs []string) (*Filter, error) {
	return CompileEntries(Named("suppression", exprs), nil)
}

// CompileEntries parses and type-checks every entry's expression once. Each must be of
// type bool, and names must be valid and unique. The error names every failing entry by
// its position (from 1), name and text, with CEL's description of the problem (an entry
// read from a SecureString is named without its text); all problems are reported
// together. now is the clock that decides expiry (time.Now if nil). An empty list gives a
// Filter that suppresses nothing.
func CompileEntries(entries []Entry, now func() time.Time) (*Filter, error) {
	e, err := env()
	if err != nil {
		return nil, fmt.Errorf("build CEL environment: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	f := &Filter{now: now}
	errs := []error{checkNames(entries)}
	for i, en := range entries {
		prg, readsIP, err := compileOne(e, en.Expression)
		switch {
		case err != nil && en.hidden:
			errs = append(errs, fmt.Errorf("suppression %d (%s): %w", i+1, en.Name, errHidden))
		case err != nil:
			errs = append(errs, fmt.Errorf("suppression %d (%s) %q: %w", i+1, en.Name, en.Expression, err))
		default:
			f.entries = append(f.entries, en)
			f.programs = append(f.programs, prg)
			f.perIP = append(f.perIP, readsIP)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, dry := range []bool{false, true} {
		for _, ip := range []bool{false, true} {
			for i, en := range f.entries {
				if en.DryRun == dry && f.perIP[i] == ip {
					f.order = append(f.order, i)
				}
			}
		}
	}
	return f, nil
}

// errHidden stands for the compiler's message on an expression of a SecureString.
var errHidden = errors.New("does not compile (the parameter is a SecureString: its text is not shown; check it with go run ./cmd/replay --suppress-file)")

// compileOne compiles one expression and says whether it reads src_ip.
func compileOne(e *cel.Env, text string) (cel.Program, bool, error) {
	if strings.TrimSpace(text) == "" {
		return nil, false, errors.New("empty expression")
	}
	checked, iss := e.Compile(text)
	if iss.Err() != nil {
		return nil, false, iss.Err()
	}
	if !checked.OutputType().IsExactType(cel.BoolType) {
		return nil, false, fmt.Errorf("has type %s, want bool", checked.OutputType())
	}
	prg, err := e.Program(checked, cel.CostLimit(CostLimit))
	if err != nil {
		return nil, false, fmt.Errorf("plan: %w", err)
	}
	return prg, readsVariable(checked, VarSrcIP), nil
}

// readsVariable reports whether the checked expression refers to the variable name. The
// checker resolves every identifier (dotted names included) to its declaration; a
// comprehension variable that shadows the name resolves to no declaration.
func readsVariable(checked *cel.Ast, name string) bool {
	if checked.NativeRep() == nil {
		return true // no references known: assume it does
	}
	for _, r := range checked.NativeRep().ReferenceMap() {
		if r != nil && r.Name == name {
			return true
		}
	}
	return false
}

// Len returns how many entries the filter holds.
func (f *Filter) Len() int {
	if f == nil {
		return 0
	}
	return len(f.programs)
}

// Expressions returns the expressions the filter was compiled from.
func (f *Filter) Expressions() []string { return f.each(func(e Entry) string { return e.Expression }) }

// Names returns the names of the filter's entries, in their order.
func (f *Filter) Names() []string { return f.each(func(e Entry) string { return e.Name }) }

// each returns one string of each entry, in their order.
func (f *Filter) each(get func(Entry) string) []string {
	if f == nil {
		return nil
	}
	out := make([]string, len(f.entries))
	for i, e := range f.entries {
		out[i] = get(e)
	}
	return out
}

// Entries returns the filter's entries, in their order.
func (f *Filter) Entries() []Entry {
	if f == nil {
		return nil
	}
	return append([]Entry(nil), f.entries...)
}

// Expired returns the names of the entries that have expired by the filter's clock, in
// their order. They no longer suppress anything.
func (f *Filter) Expired() []string {
	if f == nil {
		return nil
	}
	now := f.now()
	var out []string
	for _, e := range f.entries {
		if e.expired(now) {
			out = append(out, e.Name)
		}
	}
	return out
}

func (e Entry) expired(now time.Time) bool { return !e.Expires.IsZero() && !now.Before(e.Expires) }

// Verdict is what the suppressions say about one match.
type Verdict struct {
	// Suppressed is true when the enforced entries suppress the match; By names them (the
	// entries that were true for at least one of its source IPs).
	Suppressed bool
	By         []string
	// DryRun names the dry-run entries that would have suppressed the match, had they been
	// enforced (empty when Suppressed).
	DryRun []string
	// Errors counts the evaluations that failed on this match (each counted as false).
	Errors int
}

// Suppress reports whether the match is a known false positive (Check(m, src).Suppressed).
func (f *Filter) Suppress(m detect.Match, src aggregate.Source) bool {
	return f.Check(m, src).Suppressed
}

// Check evaluates the entries that have not expired on a match.
//
// The Splunk search filters rows of `stats … by sourceIPs{}`, one row per source IP, so
// the expressions are evaluated once per source IP with src_ip set to that value (and
// src_ips to the whole list); the match is suppressed only when every source IP is
// suppressed by some entry. This also keeps an attacker from hiding behind an
// allow-listed address: sourceIPs lists X-Forwarded-For entries, which the client
// chooses, before the real peer address. A match without source IPs is evaluated once
// with src_ip set to detect.FillValue, as fillnull would.
//
// Dry-run entries are evaluated after the enforced ones, as if they were enforced: when a
// dry-run entry decides at least one row, the match is kept and the verdict names the
// dry-run entries that would have suppressed it.
//
// The work is bounded whatever the number of forwarded addresses: an expression that does
// not read src_ip has the same value for every row, so it is evaluated at most once per
// match; the others once per distinct source IP (a repeated address is one row's answer);
// and a match that would need more than MaxEvaluations is not suppressed.
//
// An expression that fails to evaluate counts as false and is counted by Errors.
func (f *Filter) Check(m detect.Match, src aggregate.Source) Verdict {
	var v Verdict
	if f == nil || len(f.programs) == 0 {
		return v
	}
	now := f.now()
	vars := variables(m, src)
	ips := distinct(m.Fields.SrcIPs)
	if len(ips) == 0 {
		ips = []string{detect.FillValue}
	}
	budget := MaxEvaluations
	// constant[i] caches the answer of an expression that does not read src_ip.
	constant := make([]int8, len(f.programs)) // 0 not evaluated, 1 true, -1 false
	deciders := make([]bool, len(f.programs))
	for _, ip := range ips {
		vars[VarSrcIP] = ip
		i := f.decide(vars, now, constant, &budget, &v)
		if i < 0 {
			if budget < 0 {
				v.Errors++
				f.fail(fmt.Errorf("suppress match with %d distinct source IPs: %w", len(ips), ErrTooManyEvaluations))
			}
			return Verdict{Errors: v.Errors}
		}
		deciders[i] = true
		if !f.perIP[i] {
			break // true for this row, so for every row
		}
	}
	dry := false
	for i, d := range deciders {
		dry = dry || d && f.entries[i].DryRun
	}
	for _, i := range f.order {
		switch {
		case !deciders[i]:
		case !dry:
			v.By = append(v.By, f.entries[i].Name)
		case f.entries[i].DryRun:
			v.DryRun = append(v.DryRun, f.entries[i].Name)
		}
	}
	v.Suppressed = !dry
	return v
}

// decide returns the first entry, in evaluation order, that has not expired and is true
// for vars, or -1. It spends one unit of budget per evaluation and returns -1, with budget
// below zero, when the budget runs out.
func (f *Filter) decide(vars map[string]any, now time.Time, constant []int8, budget *int, v *Verdict) int {
	for _, i := range f.order {
		if f.entries[i].expired(now) {
			continue
		}
		if !f.perIP[i] && constant[i] != 0 {
			if constant[i] > 0 {
				return i
			}
			continue
		}
		if *budget--; *budget < 0 {
			return -1
		}
		ok := f.eval(i, vars, v)
		if !f.perIP[i] {
			constant[i] = -1
			if ok {
				constant[i] = 1
			}
		}
		if ok {
			return i
		}
	}
	return -1
}

// eval evaluates entry i on vars; a failure counts as false.
func (f *Filter) eval(i int, vars map[string]any, v *Verdict) bool {
	f.evaluations.Add(1)
	out, _, err := f.programs[i].Eval(vars)
	if err != nil {
		v.Errors++
		f.fail(fmt.Errorf("suppression %s %q: %w", f.entries[i].Name, f.entries[i].Expression, err))
		return false
	}
	b, ok := out.Value().(bool)
	if !ok {
		v.Errors++
		f.fail(fmt.Errorf("suppression %s %q: result %v is not a bool", f.entries[i].Name, f.entries[i].Expression, out))
		return false
	}
	return b
}

// Alone returns the names of the entries that, each on its own and whatever its expiry
// or dry-run mark, suppress the match: the review of an entry before it is deployed
// (replay --suppress-file). The work is bounded as in Check.
func (f *Filter) Alone(m detect.Match, src aggregate.Source) []string {
	if f == nil {
		return nil
	}
	vars := variables(m, src)
	ips := distinct(m.Fields.SrcIPs)
	if len(ips) == 0 {
		ips = []string{detect.FillValue}
	}
	var names []string
	var v Verdict
	budget := MaxEvaluations
	for i := range f.programs {
		all := true
		for _, ip := range ips {
			vars[VarSrcIP] = ip
			if budget--; budget < 0 || !f.eval(i, vars, &v) {
				all = false
				break
			}
			if !f.perIP[i] {
				break
			}
		}
		if all {
			names = append(names, f.entries[i].Name)
		}
	}
	return names
}

// distinct returns the values of s without repeats, in first-seen order.
func distinct(s []string) []string {
	seen := make(map[string]struct{}, len(s))
	out := make([]string, 0, len(s))
	for _, v := range s {
		if _, ok := seen[v]; !ok {
			seen[v] = struct{}{}
			out = append(out, v)
		}
	}
	return out
}

func (f *Filter) fail(err error) {
	f.errors.Add(1)
	f.mu.Lock()
	f.lastErr = err
	f.mu.Unlock()
}

// Errors returns how many evaluations failed since Compile (a monotonic counter: take
// the difference around an invocation to report it per invocation).
func (f *Filter) Errors() int64 {
	if f == nil {
		return 0
	}
	return f.errors.Load()
}

// LastError returns the most recent evaluation error, naming the expression, or nil.
// Its text can quote values from the audit event.
func (f *Filter) LastError() error {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastErr
}

// variables maps a match and its source to the expression variables, src_ip excepted.
func variables(m detect.Match, src aggregate.Source) map[string]any {
	fl := m.Fields
	vars := map[string]any{
		VarUser:                     fl.User,
		VarUserUID:                  fl.UID,
		VarUserGroups:               nonNil(fl.Groups),
		VarSrcIPs:                   nonNil(fl.SrcIPs),
		VarNamespace:                fl.Namespace,
		VarResource:                 fl.Resource,
		VarRequestURI:               fl.RequestURI,
		VarUserAgent:                fl.UserAgent,
		VarVerb:                     fl.Verb,
		VarStage:                    fl.Stage,
		VarMessage:                  fl.Message,
		VarRequestReceivedTimestamp: fl.RequestReceivedTimestamp,
		VarDecision:                 m.Decision,
		VarCluster:                  src.Cluster,
		VarAccount:                  src.Owner,
		VarRegion:                   src.Region,
		VarLogGroup:                 src.LogGroup,
		VarLogStream:                src.LogStream,
	}
	// The API server writes the code as a JSON number; fillnull gives "0". Anything
	// else leaves the variable unset, so an expression reading it fails (not suppressed).
	if code, err := strconv.ParseInt(fl.Code, 10, 64); err == nil {
		vars[VarCode] = code
	}
	return vars
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
