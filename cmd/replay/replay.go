package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/alert"
	"github.com/eks-unauthorized-access/detector/internal/cwlogs"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/pipeline"
	"github.com/eks-unauthorized-access/detector/internal/suppress"
	"github.com/eks-unauthorized-access/detector/internal/version"
)

// format is an output format of --format.
type format string

const (
	formatSplunk format = "splunk" // the SPL search's rows, one JSON object per line
	formatJSON   format = "json"   // the aggregates as stored, one JSON object per line
	// formatAlerts prints, per alert group and window, the SNS Publish input the function
	// would send on first delivery (the same alert.Groups, Build and Render).
	formatAlerts format = "alerts"
	// formatReport prints, per window, the SNS Publish inputs of the hourly report the
	// report function would send for it, one per part (the same alert.ReportParts and
	// RenderReportPart).
	formatReport format = "report"
)

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, "\n") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// Exit statuses.
const (
	exitOK    = 0
	exitInput = 1 // some input lines could not be decoded
	exitUsage = 2
)

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("replay", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() {
		fmt.Fprintln(stderr, "usage: replay [--format splunk|json|alerts|report] [--match-mode seed|authz|broad] [--group-by user|user,src_ip|aggregate] [--suppress EXPR]... [--suppress-file FILE] [FILE...]")
		fl.PrintDefaults()
	}
	formatFlag := fl.String("format", string(formatSplunk), "output: splunk (the search's rows), json (aggregates as stored), alerts (first alerts' SNS Publish inputs) or report (the hourly reports' SNS Publish inputs)")
	modeFlag := fl.String("match-mode", string(detect.ModeSeed), "match condition: seed, authz or broad")
	groupFlag := fl.String("group-by", string(aggregate.GroupByUser), "alert grouping: user, user,src_ip or aggregate")
	var suppressions stringList
	fl.Var(&suppressions, "suppress", "a CEL suppression expression, as in SUPPRESSIONS (repeatable)")
	suppressFile := fl.String("suppress-file", "", "a suppression file, as in the SSM parameter (a JSON document, or CEL expressions one per line): each entry's matches are reviewed on standard error")
	region := fl.String("region", os.Getenv("AWS_REGION"), "AWS region for the alerts' console links (--format alerts)")
	nowFlag := fl.String("now", "", "RFC 3339 time written as the alerts' and reports' generatedAt (default: the current time), for reproducible output")
	versionFlag := fl.Bool("version", false, "print the version and exit")
	parseAll := fl.Bool("parse-all", false, "parse every log event instead of only those the function's prefilter lets through, so that every unusable line is counted (slower)")
	maxBytes := fl.Int64("max-decompressed-bytes", cwlogs.DefaultMaxDecompressedBytes, "bound on work per delivery, as MAX_DECOMPRESSED_BYTES: log events past it are counted as past_work_bound")
	maxLine := fl.Int("max-line-bytes", cwlogs.DefaultMaxLineBytes, "bytes of one log message held at once; a longer line is read as a cut line")
	workers := fl.Int("workers", runtime.GOMAXPROCS(0), "Lambda events decoded in parallel (the output does not depend on it; 1 with --suppress-file, whose review keeps the first matches)")
	if err := fl.Parse(args); err != nil {
		return exitUsage
	}
	if *versionFlag {
		fmt.Fprintln(stdout, "replay", version.Version)
		return exitOK
	}
	alertOpts := alert.Options{Region: *region}
	now := time.Now()
	if *nowFlag != "" {
		t, err := time.Parse(time.RFC3339, *nowFlag)
		if err != nil {
			fmt.Fprintln(stderr, "replay: --now:", err)
			return exitUsage
		}
		now = t
		alertOpts.Now = func() time.Time { return now }
	}
	out := format(*formatFlag)
	if !slices.Contains([]format{formatSplunk, formatJSON, formatAlerts, formatReport}, out) {
		fmt.Fprintf(stderr, "replay: unknown format %q (want splunk, json, alerts or report)\n", *formatFlag)
		return exitUsage
	}
	entries := suppress.Named("suppress", suppressions)
	if *suppressFile != "" {
		text, err := os.ReadFile(*suppressFile)
		if err != nil {
			fmt.Fprintln(stderr, "replay:", err)
			return exitUsage
		}
		more, err := suppress.ParseEntries(string(text), "file")
		if err != nil {
			fmt.Fprintf(stderr, "replay: %s: %v\n", *suppressFile, err)
			return exitUsage
		}
		entries = append(entries, more...)
	}
	// Expiry as of --now: the entries apply as the function would apply them then.
	filter, err := suppress.CompileEntries(entries, func() time.Time { return now })
	if err != nil {
		fmt.Fprintln(stderr, "replay:", err)
		return exitUsage
	}
	mode, err := detect.ParseMode(*modeFlag)
	if err != nil {
		fmt.Fprintln(stderr, "replay:", err)
		return exitUsage
	}
	groupBy, err := aggregate.ParseGroupBy(*groupFlag)
	if err != nil {
		fmt.Fprintln(stderr, "replay:", err)
		return exitUsage
	}
	// By default the function's own path: the same prefilter, decoder and bounds.
	opts := pipeline.Options{
		Rule: detect.UnauthorizedAccess, Mode: mode, GroupBy: groupBy, Region: *region, ParseAll: *parseAll,
		MaxDecompressedBytes: *maxBytes, MaxLineBytes: *maxLine,
	}
	var rev *review
	switch {
	case *suppressFile != "":
		rev = newReview(filter, now)
		opts.Suppressor = rev
	case filter.Len() > 0:
		opts.Suppressor = filter
	}
	if *workers < 1 {
		fmt.Fprintln(stderr, "replay: --workers must be at least 1")
		return exitUsage
	}
	if rev != nil {
		*workers = 1
	}
	r := newReplayer(opts, *workers, stderr)
	if fl.NArg() == 0 {
		r.read("<stdin>", stdin)
	}
	for _, name := range fl.Args() {
		f, err := os.Open(name)
		if err != nil {
			r.fail(fmt.Sprintf("%s: %v", name, err))
			continue
		}
		r.read(name, f)
		f.Close()
	}
	r.wait()

	res := r.batch.Result()
	if err := write(stdout, out, res.Aggregates, alertOpts); err != nil {
		fmt.Fprintln(stderr, "replay:", err)
		return exitInput
	}
	fmt.Fprintln(stderr, summary(res.Stats, r.failed))
	if rev != nil {
		rev.write(stderr)
	}
	if err := filter.LastError(); err != nil {
		// The operator's own expressions on their own logs: the error may quote both,
		// which the function never logs.
		fmt.Fprintf(stderr, "replay: %d suppression evaluations failed (the match was kept); the last: %v\n", filter.Errors(), err)
	}
	if r.failed > 0 {
		return exitInput
	}
	return exitOK
}

// replayer feeds input lines to one pipeline batch. Lambda events, nearly all the work,
// are decoded by workers in parallel, each with its own Pipeline (pipeline.Prepare); one
// goroutine adds everything to the batch in input order and reports bad lines in order,
// so the output and the summary do not depend on the number of workers.
type replayer struct {
	batch  *pipeline.Batch
	stderr io.Writer
	failed int // input lines that could not be decoded

	jobs  chan *item // Lambda events, to the workers
	queue chan *item // every item, in input order, to the goroutine that adds them
	done  chan struct{}
	wg    sync.WaitGroup
}

// item is one input line, or a problem to report in its place.
type item struct {
	where string // FILE:LINE, or FILE
	line  []byte
	env   envelope // its top-level keys; nil when the quick walk found no object
	event bool     // a Lambda event, prepared by a worker
	msg   string   // set: report msg instead of adding the line
	prep  *pipeline.Prepared
	err   error
	ready chan struct{} // closed when a worker has prepared the event
}

func newReplayer(opts pipeline.Options, workers int, stderr io.Writer) *replayer {
	r := &replayer{
		batch:  pipeline.New(opts).NewBatch(),
		stderr: stderr,
		jobs:   make(chan *item, workers),
		queue:  make(chan *item, 2*workers),
		done:   make(chan struct{}),
	}
	for range workers {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			p := pipeline.New(opts)
			for it := range r.jobs {
				it.prep, it.err = p.Prepare(it.line)
				it.line = nil
				close(it.ready)
			}
		}()
	}
	go r.add()
	return r
}

// add adds the items to the batch in input order.
func (r *replayer) add() {
	defer close(r.done)
	for it := range r.queue {
		var err error
		switch {
		case it.msg != "":
			fmt.Fprintln(r.stderr, it.msg)
			r.failed++
			continue
		case it.event:
			<-it.ready
			if err = it.err; err == nil {
				r.batch.AddPrepared(it.prep)
			}
		default:
			err = r.line(it.line, it.env)
		}
		if err != nil {
			fmt.Fprintf(r.stderr, "%s: %v\n", it.where, err)
			r.failed++
		}
	}
}

// fail reports msg in input order, as a line that could not be read.
func (r *replayer) fail(msg string) { r.queue <- &item{msg: msg} }

// wait waits until every line read so far has been added.
func (r *replayer) wait() {
	close(r.jobs)
	close(r.queue)
	r.wg.Wait()
	<-r.done
}

func (r *replayer) read(name string, in io.Reader) {
	br := bufio.NewReader(in)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			it := &item{where: fmt.Sprintf("%s:%d", name, n), line: line}
			if env, ok := topKeys(line); ok {
				it.env = env
			}
			if has(it.env, "awslogs") || has(it.env, "Records") {
				it.event, it.ready = true, make(chan struct{})
				r.jobs <- it
			}
			r.queue <- it
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				r.fail(fmt.Sprintf("%s:%d: %v", name, n, err))
			}
			return
		}
	}
}

// envelope holds the top-level keys that tell input kinds apart; keys match exactly.
type envelope map[string]json.RawMessage

// line adds one input line other than a Lambda event; env holds its top-level keys (nil
// when topKeys found no object).
func (r *replayer) line(line []byte, env envelope) error {
	if env == nil {
		// Not an object as far as the quick walk sees: encoding/json says what it is.
		if err := json.Unmarshal(line, &env); err != nil {
			if !json.Valid(line) {
				return errors.New("not JSON")
			}
			return errors.New("not a JSON object")
		}
	}
	switch {
	case has(env, "awslogs") || has(env, "Records"):
		return r.batch.AddEvent(line)
	case has(env, "messageType"):
		pl, err := cwlogs.ParseMessage(line)
		if err != nil {
			return fmt.Errorf("parse subscription message: %w", err)
		}
		r.batch.AddPayload(pl)
		return nil
	default:
		return r.batch.AddAuditLine(line, aggregate.Source{})
	}
}

// topKeys lists the keys of the top-level object of line that tell input kinds apart,
// without decoding anything: one pass over the bytes that skips strings and nested
// values. It reports false for anything that is not an object in its outline (the
// caller asks encoding/json why); the decoders validate the rest.
func topKeys(line []byte) (envelope, bool) {
	b := bytes.TrimSpace(line)
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return nil, false
	}
	env := envelope{}
	depth := 0
	expectKey := true
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			end := i + 1
			for {
				k := bytes.IndexByte(b[end:], '"')
				if k < 0 {
					return nil, false
				}
				end += k
				n := 0
				for end-n-1 > i && b[end-n-1] == '\\' {
					n++
				}
				if n%2 == 0 {
					break
				}
				end++
			}
			if depth == 1 && expectKey {
				switch key := string(b[i+1 : end]); key {
				case "awslogs", "Records", "messageType":
					env[key] = nil
				}
				expectKey = false
			}
			i = end
		case '{', '[':
			depth++
			expectKey = b[i] == '{'
		case '}', ']':
			depth--
			if depth < 0 {
				return nil, false
			}
		case ',':
			expectKey = depth == 1 || expectKey
			if depth == 1 {
				expectKey = true
			}
		}
	}
	return env, depth == 0
}

func has(env envelope, key string) bool {
	_, ok := env[key]
	return ok
}

func write(w io.Writer, out format, aggs []aggregate.Aggregate, alertOpts alert.Options) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false) // values verbatim: no \u003c for <
	var err error
	switch out {
	case formatSplunk:
		for _, row := range aggregate.SplunkReport(aggs) {
			err = errors.Join(err, enc.Encode(row))
		}
	case formatJSON:
		for _, a := range aggs {
			err = errors.Join(err, enc.Encode(a))
		}
	case formatAlerts:
		for _, g := range alert.Groups(detect.UnauthorizedAccess, aggs) {
			m, rerr := alert.Render(alert.Build(g, alertOpts))
			if rerr != nil {
				err = errors.Join(err, fmt.Errorf("render alert for group %s: %w", g.Key, rerr))
				continue
			}
			err = errors.Join(err, enc.Encode(m))
		}
	case formatReport:
		err = writeReports(enc, aggs, alertOpts)
	}
	if err = errors.Join(err, bw.Flush()); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// summary is the one-line account printed on standard error.
func summary(s pipeline.Stats, failed int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "replay: %d payloads (%d control), %d log events, %d audit events, %d matches (%d suppressed, %d duplicate log events)",
		s.Payloads, s.ControlMessages, s.LogEvents, s.AuditEvents, s.Matches, s.Suppressed, s.DuplicateLogEvents)
	if n := s.SkippedTotal(); n > 0 {
		reasons := make([]string, 0, len(s.Skipped))
		for r, c := range s.Skipped {
			reasons = append(reasons, fmt.Sprintf("%s=%d", r, c))
		}
		slices.Sort(reasons)
		fmt.Fprintf(&b, ", %d log events skipped (%s)", n, strings.Join(reasons, " "))
	}
	if failed > 0 {
		fmt.Fprintf(&b, ", %d input lines not decoded", failed)
	}
	return b.String()
}

// writeReports encodes, window by window in time order, the parts of the hourly report
// that the report function publishes for each window with a match.
func writeReports(enc *json.Encoder, aggs []aggregate.Aggregate, alertOpts alert.Options) error {
	now := time.Now
	if alertOpts.Now != nil {
		now = alertOpts.Now
	}
	byWindow := map[time.Time][]aggregate.Aggregate{}
	for _, a := range aggs {
		w := a.Window.UTC()
		byWindow[w] = append(byWindow[w], a)
	}
	windows := slices.SortedFunc(maps.Keys(byWindow), time.Time.Compare)
	var err error
	for _, w := range windows {
		parts, perr := alert.ReportParts(detect.UnauthorizedAccess, w, byWindow[w], now(), false)
		if perr != nil {
			err = errors.Join(err, fmt.Errorf("report of %s: %w", w.Format(time.RFC3339), perr))
			continue
		}
		for _, p := range parts {
			m, rerr := alert.RenderReportPart(p)
			if rerr != nil {
				err = errors.Join(err, fmt.Errorf("render report part %d of %s: %w", p.Part, w.Format(time.RFC3339), rerr))
				continue
			}
			err = errors.Join(err, enc.Encode(m))
		}
	}
	return err
}
