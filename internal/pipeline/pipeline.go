// Package pipeline runs decode → parse → detect → aggregate over one Lambda event or over
// replayed lines. It is pure (no AWS calls) and shared by the Lambda handler and cmd/replay.
//
// Per log event the hot loop is: the prefilter detect.MayMatch on the still-escaped bytes,
// then unescaping, audit.Parse, detect.Evaluate, the suppression filter and the
// accumulator. Lines the prefilter rejects are never parsed, so the skip counts only cover
// candidates unless Options.ParseAll is set.
package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/audit"
	"github.com/eks-unauthorized-access/detector/internal/cwlogs"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/logsource"
	"github.com/eks-unauthorized-access/detector/internal/suppress"
)

// Suppressor is the filter macro: it says whether a match is a known false positive, and
// which entries did or would have (dry run) suppressed it; *suppress.Filter and
// *suppress.Reloader satisfy it.
type Suppressor interface {
	Check(m detect.Match, src aggregate.Source) suppress.Verdict
}

// Options configure a Pipeline.
type Options struct {
	Rule    detect.Rule
	Mode    detect.Mode
	GroupBy aggregate.GroupBy
	// Region is copied into every aggregate's Source ("" in replay).
	Region string
	// MaxDecompressedBytes bounds the work on one Lambda event (0: the default): log
	// events whose message starts past this many inflated bytes are counted as
	// SkipPastWorkBound, not read. Memory does not depend on it: deliveries are streamed.
	MaxDecompressedBytes int64
	// MaxLineBytes bounds the bytes of one log message held at once (0: the default); a
	// longer line is read as a cut line (see parseCut).
	MaxLineBytes int
	// Suppressor filters matches; nil suppresses nothing.
	Suppressor Suppressor
	// Sources accepts the log groups and streams whose log events are used; the log events
	// of any other are counted in Stats.Rejected only. Nil accepts every source.
	Sources *logsource.Filter
	// ThinAfter, when positive, keeps the values of at most this many rows per alert group
	// and only the keys, counts and ids of the rest (aggregate.Accumulator.ThinAfter): the
	// function sets it to the store's row bound. Zero keeps every row whole (replay).
	ThinAfter int
	// ParseAll parses every log event instead of only those the prefilter lets through,
	// so that Stats counts every skipped line (replay uses it; slower).
	ParseAll bool
}

// SkipReason says why a log event was not used.
type SkipReason string

// Skip reasons, one per class of unusable line.
const (
	SkipNotJSON     SkipReason = "not_json"
	SkipNotAudit    SkipReason = "not_audit"
	SkipTruncated   SkipReason = "truncated"
	SkipBadEncoding SkipReason = "bad_encoding" // the payload's JSON string escapes are invalid
	// SkipPastWorkBound counts the log events of a delivery past the bound on work
	// (Options.MaxDecompressedBytes): counted, never read.
	SkipPastWorkBound SkipReason = "past_work_bound"
)

// Metric is the reason's name in metrics, after LinesSkipped (LinesSkippedNotJSON): the
// same reason, spelled as CloudWatch metric names are.
func (r SkipReason) Metric() string {
	switch r {
	case SkipNotJSON:
		return "NotJSON"
	case SkipNotAudit:
		return "NotAudit"
	case SkipTruncated:
		return "Truncated"
	case SkipBadEncoding:
		return "BadEncoding"
	case SkipPastWorkBound:
		return "PastWorkBound"
	}
	return string(r)
}

// skipReasons lists every skip reason, for counting by index.
var skipReasons = [...]SkipReason{SkipNotJSON, SkipNotAudit, SkipTruncated, SkipBadEncoding, SkipPastWorkBound}

// Stats count what one run saw. Matches includes suppressed matches; Suppressed and
// DuplicateLogEvents are subsets of Matches.
type Stats struct {
	Payloads           int // compressed payloads decoded, control messages included
	ControlMessages    int
	LogEvents          int // log events in data messages
	Candidates         int // log events the prefilter let through (all with ParseAll)
	AuditEvents        int // candidates that parsed as audit events
	Matches            int
	Suppressed         int
	DuplicateLogEvents int // matched log events whose id was already counted in this run
	// SuppressionErrors counts suppression expressions that failed at run time on a match
	// (the match is then not suppressed): a sign of an expression to fix.
	SuppressionErrors int
	// SuppressedBy counts the suppressed matches per suppression entry name (a match that
	// several entries suppress counts under each); WouldSuppress counts the matches that
	// dry-run entries would have suppressed, per name.
	SuppressedBy  map[string]int
	WouldSuppress map[string]int
	// TruncatedParsed counts lines cut (by CloudWatch Logs, or at MaxLineBytes) that were
	// still read from their complete members: they are also counted in AuditEvents.
	TruncatedParsed int
	Skipped         map[SkipReason]int
	// Rejected counts the log events of log groups or streams that Options.Sources refused
	// (part of LogEvents, never parsed).
	Rejected map[logsource.Reason]int
}

// SkippedTotal returns the number of skipped log events, all reasons together.
func (s Stats) SkippedTotal() int {
	n := 0
	for _, c := range s.Skipped {
		n += c
	}
	return n
}

// Result is the outcome of processing one Lambda event.
type Result struct {
	Aggregates []aggregate.Aggregate
	Stats      Stats
}

// Pipeline processes Lambda events. It reuses decoding buffers and is not safe for
// concurrent use.
type Pipeline struct {
	opts Options
	dec  cwlogs.Decoder
	es   eventSink
}

// New returns a Pipeline with the given options.
func New(opts Options) *Pipeline {
	return &Pipeline{opts: opts, dec: cwlogs.Decoder{MaxBytes: opts.MaxDecompressedBytes, MaxLineBytes: opts.MaxLineBytes}}
}

// Process runs one raw Lambda event (a CloudWatch Logs subscription event or a Kinesis
// event) through the pipeline. The error is for a batch that cannot be decoded; bad lines
// inside a good batch are skipped and counted.
//
// The batch is the event's alone, so matches are counted as their log events are read
// instead of waiting, prepared, for the event to decode whole: memory holds each distinct
// aggregate once. Only a payload that the decoder restarts after some of its matches were
// counted (a repeated logEvents key, a header after logEvents: layouts CloudWatch Logs
// does not write) makes Process decode the event again the way AddEvent does.
func (p *Pipeline) Process(event []byte) (Result, error) {
	b := p.NewBatch()
	s := p.sink()
	s.direct = b
	err := p.dec.Stream(event, s)
	voided := s.voided
	s.direct = nil
	if err == nil && voided {
		b = p.NewBatch()
		err = b.AddEvent(event)
	} else if err == nil {
		b.add(&s.event, nil)
	}
	s.clear()
	if err != nil {
		return Result{}, fmt.Errorf("decode lambda event: %w", err)
	}
	return b.take(), nil
}

// Batch accumulates matches from several inputs into one set of aggregates (replay feeds
// it many events and lines). It shares its Pipeline's buffers.
type Batch struct {
	p     *Pipeline
	acc   *aggregate.Accumulator
	stats Stats
}

// NewBatch returns an empty batch.
func (p *Pipeline) NewBatch() *Batch {
	acc := aggregate.New(p.opts.Rule, p.opts.GroupBy)
	if p.opts.ThinAfter > 0 {
		acc.ThinAfter(p.opts.ThinAfter)
	}
	return &Batch{
		p:   p,
		acc: acc,
		stats: Stats{Skipped: map[SkipReason]int{}, Rejected: map[logsource.Reason]int{},
			SuppressedBy: map[string]int{}, WouldSuppress: map[string]int{}},
	}
}

// AddEvent decodes a raw Lambda event and adds its payloads. The payloads are streamed:
// each log event is filtered, parsed and evaluated as it is inflated, and what it gives is
// kept aside until the event is decoded whole. Nothing is added when the event cannot be
// decoded.
func (b *Batch) AddEvent(event []byte) error {
	pr, err := b.p.Prepare(event)
	if err != nil {
		return err
	}
	b.AddPrepared(pr)
	return nil
}

// Prepared is what one Lambda event gives once decoded: its counts, and its matches, each
// keyed, checked against the suppressions and bounded, ready to be added to a batch.
type Prepared struct {
	counts  counts
	pending []pending
}

// Prepare decodes a raw Lambda event and prepares what it gives without a batch: the work
// of AddEvent but the last step. Separate Pipelines with the same options can prepare
// events in parallel for one batch; AddPrepared then adds them, in order, and the batch
// ends exactly as if AddEvent had been called on each.
func (p *Pipeline) Prepare(event []byte) (*Prepared, error) {
	s := p.sink()
	if err := p.dec.Stream(event, s); err != nil {
		return nil, fmt.Errorf("decode lambda event: %w", err)
	}
	pr := &Prepared{counts: s.event, pending: s.pending}
	s.pending = nil
	return pr, nil
}

// AddPrepared adds an event prepared by a Pipeline with the batch's options.
func (b *Batch) AddPrepared(pr *Prepared) { b.add(&pr.counts, pr.pending) }

// AddPayload adds one decoded subscription message. Control messages are counted only.
// A log event around which the subscription message is not JSON is counted as
// SkipBadEncoding; AddEvent fails the whole batch instead.
func (b *Batch) AddPayload(pl cwlogs.Payload) {
	s := b.p.sink()
	events := pl.LogEvents
	pl.LogEvents = nil
	s.Restart(&pl)
	for i := range events {
		s.LogEvent(&events[i])
	}
	_ = s.Payload(&pl)
	b.add(&s.event, s.pending)
	s.clear()
}

// sink returns the pipeline's cwlogs.Sink, emptied.
func (p *Pipeline) sink() *eventSink {
	s := &p.es
	s.p = p
	s.event.reset()
	s.payload.reset()
	s.pending, s.payloadStart, s.err = s.pending[:0], 0, nil
	s.env = envelope{}
	s.direct, s.counted, s.voided = nil, 0, false
	return s
}

// clear drops the sink's pending matches, keeping their memory for the next event unless
// it is large.
func (s *eventSink) clear() {
	if cap(s.pending) > maxKeptPending {
		s.pending = nil
		return
	}
	clear(s.pending)
	s.pending = s.pending[:0]
}

// maxKeptPending is the most pending matches whose memory the sink keeps between events.
const maxKeptPending = 1024

// counts are the per-line counts of Stats, kept aside until a payload and its event are
// decoded whole.
type counts struct {
	payloads, controls, logEvents, candidates, auditEvents, matches, truncatedParsed int
	rejectedGroup, rejectedStream                                                    int
	skipped                                                                          [len(skipReasons)]int
}

func (c *counts) reset() { *c = counts{} }

func (c *counts) add(o *counts) {
	c.payloads += o.payloads
	c.controls += o.controls
	c.logEvents += o.logEvents
	c.candidates += o.candidates
	c.auditEvents += o.auditEvents
	c.matches += o.matches
	c.truncatedParsed += o.truncatedParsed
	c.rejectedGroup += o.rejectedGroup
	c.rejectedStream += o.rejectedStream
	for i, n := range o.skipped {
		c.skipped[i] += n
	}
}

// pending is a match waiting for the event to be decoded whole. It is prepared as soon as
// its log event is read (keys hashed, suppressions checked, values bounded), so a
// delivery's pending matches hold bounded values, never the lines they came from.
type pending struct {
	e       aggregate.Entry
	id      string
	verdict suppress.Verdict
}

// envelope is what the sink knows of the current payload's envelope, from Restart.
type envelope struct {
	set     bool
	pl      cwlogs.Payload // LogEvents nil
	src     aggregate.Source
	control bool
	reject  logsource.Reason
}

// eventSink runs the per-line steps on the log events cwlogs.Decoder.Stream hands over.
type eventSink struct {
	p              *Pipeline
	event, payload counts
	pending        []pending
	payloadStart   int // the first pending match of the current payload
	// direct, when set, is the batch that matches are counted into as they are read
	// (Process); counted is how many of the current payload's matches it has counted, and
	// voided says that a restart voided some of them: the event must be decoded again.
	direct  *Batch
	counted int
	voided  bool
	err     error // cwlogs.ErrMalformedMessage around a log event of the payload
	env     envelope
}

var _ cwlogs.Sink = (*eventSink)(nil)

// errEnvelopeChanged means a payload ended with another envelope than the one its log
// events were read under (cwlogs.Sink promises it cannot happen).
var errEnvelopeChanged = errors.New("payload envelope changed after its log events")

// Restart implements cwlogs.Sink: the payload's log events so far are void, and the ones
// that follow belong to env.
func (s *eventSink) Restart(env *cwlogs.Payload) {
	s.payload.reset()
	s.pending = s.pending[:s.payloadStart]
	s.err = nil
	if s.counted > 0 {
		s.voided = true
	}
	e := envelope{set: true, pl: *env}
	e.pl.LogEvents = nil
	e.pl.SubscriptionFilters = slices.Clone(env.SubscriptionFilters)
	e.control = env.MessageType == cwlogs.ControlMessage
	e.reject = s.p.opts.Sources.Accept(env.LogGroup, env.LogStream)
	e.src = aggregate.Source{
		Owner:     env.Owner,
		LogGroup:  env.LogGroup,
		LogStream: env.LogStream,
		Cluster:   aggregate.ClusterFromLogGroup(env.LogGroup),
		Region:    s.p.opts.Region,
	}
	s.env = e
}

// mayMatch is the prefilter for a log event: a message that still carries the payload's
// escapes and holds its whole line has the stronger screen of detect.MayMatchEscaped.
func mayMatch(le *cwlogs.LogEvent, mode detect.Mode) bool {
	if le.Escaped && !le.Cut {
		return detect.MayMatchEscaped(le.Message, mode)
	}
	return detect.MayMatch(le.Message, mode)
}

// LogEvent implements cwlogs.Sink: prefilter, unescape, parse and evaluate one log event,
// and prepare its match.
func (s *eventSink) LogEvent(le *cwlogs.LogEvent) {
	opts := &s.p.opts
	c := &s.payload
	if s.voided {
		return // the event is decoded again
	}
	if s.env.control {
		return // a control message's log events are not counted
	}
	c.logEvents++
	if s.env.reject != "" {
		return // counted as log events of a rejected source, never parsed
	}
	if le.PastBound {
		c.skip(SkipPastWorkBound)
		return
	}
	if !opts.ParseAll && !mayMatch(le, opts.Mode) {
		return
	}
	c.candidates++
	text, err := le.Text()
	if err != nil {
		c.skip(SkipBadEncoding)
		if errors.Is(err, cwlogs.ErrMalformedMessage) && s.err == nil {
			s.err = err
		}
		return
	}
	ev, err := audit.Parse(text)
	if err != nil || le.Cut {
		var ok bool
		if ev, ok = parseCut(text, le.Cut, err); !ok {
			if le.Cut {
				c.skip(SkipTruncated)
			} else {
				c.skip(SkipReasonOf(err))
			}
			return
		}
		c.truncatedParsed++
	}
	c.auditEvents++
	m, ok := detect.Evaluate(ev, time.UnixMilli(le.Timestamp), opts.Mode)
	if !ok {
		return
	}
	c.matches++
	id := le.EventID()
	if id == "" {
		// CloudWatch Logs always sets ids; a producer that reshapes payloads may not.
		// A derived id keeps counting idempotent across redeliveries of such a batch.
		id = derivedID(&s.env.pl, le.Timestamp, text)
	}
	src := s.env.src
	p := pending{e: aggregate.NewEntry(opts.GroupBy, src, m), id: id, verdict: s.p.check(m, src)}
	if s.direct != nil {
		s.direct.count(p.e, p.id, p.verdict)
		s.counted++
		return
	}
	s.pending = append(s.pending, p)
}

// Payload implements cwlogs.Sink: the payload has ended, its counts join the event's.
func (s *eventSink) Payload(pl *cwlogs.Payload) error {
	env := s.env
	s.env = envelope{}
	if err := s.err; err != nil {
		s.event.add(&s.payload)
		s.payload.reset()
		return err
	}
	if env.set && !cwlogs.SameEnvelope(&env.pl, pl) {
		return errEnvelopeChanged
	}
	if !env.set && (s.payloadStart != len(s.pending) || s.counted > 0) {
		return errEnvelopeChanged
	}
	s.counted = 0
	s.event.payloads++
	if pl.MessageType == cwlogs.ControlMessage {
		s.event.controls++
		s.payload.reset()
		return nil
	}
	if reason := s.p.opts.Sources.Accept(pl.LogGroup, pl.LogStream); reason != "" {
		// Log events of a rejected source count as such, never as parsed, matched or
		// skipped.
		n := s.payload.logEvents
		s.payload.reset()
		s.payload.logEvents = n
		switch reason {
		case logsource.RejectLogGroup:
			s.payload.rejectedGroup = n
		default:
			s.payload.rejectedStream = n
		}
	}
	s.payloadStart = len(s.pending)
	s.event.add(&s.payload)
	s.payload.reset()
	return nil
}

// add adds an event's counts and prepared matches to the batch.
func (b *Batch) add(c *counts, pending []pending) {
	b.stats.Payloads += c.payloads
	b.stats.ControlMessages += c.controls
	b.stats.LogEvents += c.logEvents
	b.stats.Candidates += c.candidates
	b.stats.AuditEvents += c.auditEvents
	b.stats.Matches += c.matches
	b.stats.TruncatedParsed += c.truncatedParsed
	if c.rejectedGroup > 0 {
		b.stats.Rejected[logsource.RejectLogGroup] += c.rejectedGroup
	}
	if c.rejectedStream > 0 {
		b.stats.Rejected[logsource.RejectLogStream] += c.rejectedStream
	}
	for i, n := range c.skipped {
		if n > 0 {
			b.stats.Skipped[skipReasons[i]] += n
		}
	}
	for i := range pending {
		p := &pending[i]
		b.count(p.e, p.id, p.verdict)
	}
}

func (c *counts) skip(r SkipReason) {
	for i, sr := range skipReasons {
		if sr == r {
			c.skipped[i]++
			return
		}
	}
}

// derivedID identifies a log event that came without an id by a hash of where it was
// logged, when, and its text: the same line redelivered gets the same id.
func derivedID(pl *cwlogs.Payload, timestamp int64, text []byte) string {
	h := sha256.New()
	for _, s := range []string{pl.Owner, pl.LogGroup, pl.LogStream, strconv.FormatInt(timestamp, 10)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	h.Write(text)
	return "sha256:" + hex.EncodeToString(h.Sum(nil)[:16])
}

// AddAuditLine adds one raw audit event line (no envelope, no log event id, no log
// group). The error wraps audit's classification (audit.ErrNotJSON, …); such a line is
// not counted in Stats, since it is the caller's input rather than a log event.
func (b *Batch) AddAuditLine(line []byte, src aggregate.Source) error {
	ev, err := audit.Parse(line)
	if err != nil {
		return err
	}
	b.stats.Candidates++
	b.addAudit(ev, time.Time{}, src, "")
	return nil
}

func (b *Batch) addAudit(ev audit.Event, logTime time.Time, src aggregate.Source, id string) {
	b.stats.AuditEvents++
	m, ok := detect.Evaluate(ev, logTime, b.p.opts.Mode)
	if !ok {
		return
	}
	b.stats.Matches++
	b.keep(m, src, id)
}

// keep runs the suppression filter on a match and counts it.
func (b *Batch) keep(m detect.Match, src aggregate.Source, id string) {
	b.count(aggregate.NewEntry(b.p.opts.GroupBy, src, m), id, b.p.check(m, src))
}

// check runs the suppression filter on a match.
func (p *Pipeline) check(m detect.Match, src aggregate.Source) suppress.Verdict {
	if s := p.opts.Suppressor; s != nil {
		return s.Check(m, src)
	}
	return suppress.Verdict{}
}

// count adds a prepared match to the accumulator, tagged with the dry-run entries that
// would have suppressed it, unless the enforced entries suppress it.
func (b *Batch) count(e aggregate.Entry, id string, v suppress.Verdict) {
	b.stats.SuppressionErrors += v.Errors
	if v.Suppressed {
		b.stats.Suppressed++
		for _, name := range v.By {
			b.stats.SuppressedBy[name]++
		}
		return
	}
	if b.acc.AddEntry(e, id, v.DryRun) {
		b.stats.DuplicateLogEvents++
		return
	}
	for _, name := range v.DryRun {
		b.stats.WouldSuppress[name]++
	}
}

// Result returns the aggregates and counts so far.
func (b *Batch) Result() Result {
	st := b.stats
	st.Skipped = make(map[SkipReason]int, len(b.stats.Skipped))
	for k, v := range b.stats.Skipped {
		st.Skipped[k] = v
	}
	st.Rejected = maps.Clone(b.stats.Rejected)
	st.SuppressedBy = maps.Clone(b.stats.SuppressedBy)
	st.WouldSuppress = maps.Clone(b.stats.WouldSuppress)
	return Result{Aggregates: b.acc.Aggregates(), Stats: st}
}

// take returns the result without copying the aggregates, leaving the batch empty of them.
func (b *Batch) take() Result {
	return Result{Aggregates: b.acc.Take(), Stats: b.stats}
}

// SkipReasonOf classifies an audit.Parse error.
func SkipReasonOf(err error) SkipReason {
	switch {
	case errors.Is(err, audit.ErrTruncated):
		return SkipTruncated
	case errors.Is(err, audit.ErrNotJSON):
		return SkipNotJSON
	default:
		return SkipNotAudit
	}
}
