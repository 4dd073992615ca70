package suppress

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/detect"
)

// Defaults of ReloadOptions.
const (
	DefaultReloadInterval = time.Minute
	DefaultReloadTimeout  = 2 * time.Second
)

// ReloadOptions configure a Reloader.
type ReloadOptions struct {
	// Interval is the least time between two reads of the parameter (DefaultReloadInterval
	// if 0).
	Interval time.Duration
	// Timeout bounds one reload of the parameter, retries included (DefaultReloadTimeout if
	// 0): an invocation never waits longer on Parameter Store. The read at start-up is
	// bounded by its context only.
	Timeout time.Duration
	// Now is the clock of the reload interval and of the entries' expiry (time.Now if nil).
	Now func() time.Time
}

// Reloader holds the function's suppressions: the inline ones (SUPPRESSIONS) and those of
// an SSM Parameter Store parameter (SUPPRESSIONS_PARAMETER), which it reads again at most
// every Interval, between invocations, so that a change applies without a cold start. A
// new version that does not parse or compile is rejected and the set in use is kept. It
// is safe for concurrent use; Check uses the set in use without waiting for a reload.
type Reloader struct {
	client    SSMGetter
	inline    []Entry
	parameter string
	opts      ReloadOptions

	cur atomic.Pointer[loaded]

	mu       sync.Mutex // serialises Refresh
	checked  time.Time  // last read of the parameter
	rejected int64      // version of the parameter last rejected, 0 if none
}

// loaded is one compiled set and the parameter version it was read from.
type loaded struct {
	filter  *Filter
	version int64
}

// Status is what one Refresh did, for the invocation's log line and metrics.
type Status struct {
	// Version is the parameter version in use (0 without a parameter).
	Version int64
	// Read is true when the parameter was read; Changed when a new version was taken, and
	// then Names lists the names of the entries now in use.
	Read, Changed bool
	Names         []string
	// Rejected is the latest version of the parameter when it was rejected (the set in use
	// is then older), else 0. RejectError says why, when it was rejected by this Refresh.
	Rejected    int64
	RejectError error
	// ReadError is the failure of the read, if any: the set in use is kept.
	ReadError error
}

// NewReloader loads the suppressions once, at start-up: any error (an entry that does not
// parse or compile, a parameter that is missing or may not be read) is returned, so the
// function stops before its first invocation. No error quotes the value of a SecureString
// parameter.
func NewReloader(ctx context.Context, client SSMGetter, inline []Entry, parameter string, opts ReloadOptions) (*Reloader, error) {
	if opts.Interval <= 0 {
		opts.Interval = DefaultReloadInterval
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultReloadTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &Reloader{client: client, inline: inline, parameter: parameter, opts: opts}
	if _, err := CompileEntries(inline, opts.Now); err != nil {
		return nil, fmt.Errorf("SUPPRESSIONS: %w", err)
	}
	var l *loaded
	var err error
	if parameter == "" {
		l, err = r.compile(parsed{}, 0)
	} else {
		r.checked = opts.Now()
		l, err = r.read(ctx)
	}
	if err != nil {
		return nil, err
	}
	r.cur.Store(l)
	return r, nil
}

// Load compiles the inline suppressions and those of the parameter once (NewReloader with
// the default options) and returns the filter.
func Load(ctx context.Context, client SSMGetter, inline []Entry, parameter string) (*Filter, error) {
	r, err := NewReloader(ctx, client, inline, parameter, ReloadOptions{})
	if err != nil {
		return nil, err
	}
	return r.Filter(), nil
}

// Filter returns the set in use.
func (r *Reloader) Filter() *Filter { return r.cur.Load().filter }

// Version returns the parameter version in use (0 without a parameter).
func (r *Reloader) Version() int64 { return r.cur.Load().version }

// Expired names the entries of the set in use that are past their expiry.
func (r *Reloader) Expired() []string { return r.Filter().Expired() }

// Check evaluates the set in use on a match (see Filter.Check).
func (r *Reloader) Check(m detect.Match, src aggregate.Source) Verdict {
	return r.Filter().Check(m, src)
}

// Refresh reads the parameter again when Interval has passed since the last read, and
// takes its new version if it parses and compiles. The read is bounded by Timeout and by
// ctx. On any failure the set in use stays.
func (r *Reloader) Refresh(ctx context.Context) Status {
	cur := r.cur.Load()
	st := Status{Version: cur.version}
	if r.parameter == "" || !r.mu.TryLock() {
		return st // nothing to read, or another invocation is reading it
	}
	defer r.mu.Unlock()
	st.Rejected = r.rejected
	now := r.opts.Now()
	if now.Sub(r.checked) < r.opts.Interval {
		return st
	}
	r.checked = now
	st.Read = true
	rctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	typ, value, version, err := readParameter(rctx, r.client, r.parameter)
	switch {
	case err != nil:
		st.ReadError = fmt.Errorf("SUPPRESSIONS_PARAMETER: %w", err)
		return st
	case version == cur.version:
		r.rejected = 0
	case version == r.rejected:
		// Rejected already: said once, counted on every invocation until it changes.
	default:
		l, err := r.compile(parse(typ, value), version)
		if err != nil {
			r.rejected = version
			st.RejectError = err
			break
		}
		r.rejected = 0
		r.cur.Store(l)
		st.Version, st.Changed, st.Names = version, true, l.filter.Names()
	}
	st.Rejected = r.rejected
	return st
}

// read reads and compiles the parameter with the inline entries, at start-up. Timeout
// does not apply: a slow Parameter Store must not stop the function from starting (Lambda
// bounds the init phase itself), while a reload can always keep the set in use.
func (r *Reloader) read(ctx context.Context) (*loaded, error) {
	typ, value, version, err := readParameter(ctx, r.client, r.parameter)
	if err != nil {
		return nil, fmt.Errorf("SUPPRESSIONS_PARAMETER: %w", err)
	}
	return r.compile(parse(typ, value), version)
}

// parsed is a parameter's entries or why they could not be read.
type parsed struct {
	entries []Entry
	err     error
	hidden  bool
}

func parse(typ ssmtypes.ParameterType, value string) parsed {
	p := parsed{hidden: typ == ssmtypes.ParameterTypeSecureString}
	if IsDocument(value) {
		p.entries, p.err = ParseEntries(value, "parameter")
	} else {
		p.entries = Named("parameter", ParseParameter(typ, value))
	}
	for i := range p.entries {
		p.entries[i].hidden = p.hidden
	}
	return p
}

// compile compiles the inline entries followed by the parameter's.
func (r *Reloader) compile(p parsed, version int64) (*loaded, error) {
	if p.err != nil {
		err := p.err
		if p.hidden {
			err = errHiddenFile
		}
		return nil, fmt.Errorf("SUPPRESSIONS_PARAMETER: SSM parameter %q version %d: %w", r.parameter, version, err)
	}
	f, err := CompileEntries(append(append([]Entry(nil), r.inline...), p.entries...), r.opts.Now)
	if err != nil {
		return nil, fmt.Errorf("SUPPRESSIONS_PARAMETER: SSM parameter %q version %d: %w", r.parameter, version, err)
	}
	return &loaded{filter: f, version: version}, nil
}

// errHiddenFile stands for the reader's message on a SecureString document (the JSON
// decoder quotes the text it stops at).
var errHiddenFile = errors.New("is not a valid suppression file (the parameter is a SecureString: its text is not shown; check it with go run ./cmd/replay --suppress-file)")

// readParameter reads the named SSM Parameter Store parameter (String, StringList or
// SecureString, decrypted) and returns its type, value and version. The error names the
// parameter and never quotes its value.
func readParameter(ctx context.Context, client SSMGetter, name string) (ssmtypes.ParameterType, string, int64, error) {
	out, err := client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
	if err != nil {
		return "", "", 0, fmt.Errorf("get SSM parameter %q: %w", name, err)
	}
	if out.Parameter == nil {
		return "", "", 0, fmt.Errorf("get SSM parameter %q: %w", name, errNoParameter)
	}
	return out.Parameter.Type, aws.ToString(out.Parameter.Value), out.Parameter.Version, nil
}
