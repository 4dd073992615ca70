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
	"strconv"
	"time"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/audit"
	"github.com/eks-unauthorized-access/detector/internal/cwlogs"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/logsource"
)

// Suppressor is the filter macro: it says whether a match is a known false positive.
type Suppressor interface {
	Suppress(m detect.Match, src aggregate.Source) bool
}

// Options configure a Pipeline.
type Options struct {
	Rule    detect.Rule
	Mode    detect.Mode
	GroupBy aggregate.GroupBy
	// Region is copied into every aggregate's Source ("" in replay).
	Region string
	// MaxDecompressedBytes caps the inflated size of one Lambda event (0: the default).
	MaxDecompressedBytes int64
	// Suppressor filters matches; nil suppresses nothing.
	Suppressor Suppressor
	// Sources accepts the log groups and streams whose log events are used; the log events
	// of any other are counted in Stats.Rejected only. Nil accepts every source.
	Sources *logsource.Filter
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
)

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
	Skipped           map[SkipReason]int
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
}

// New returns a Pipeline with the given options.
func New(opts Options) *Pipeline {
	return &Pipeline{opts: opts, dec: cwlogs.Decoder{MaxBytes: opts.MaxDecompressedBytes}}
}

// Process runs one raw Lambda event (a CloudWatch Logs subscription event or a Kinesis
// event) through the pipeline. The error is for a batch that cannot be decoded; bad lines
// inside a good batch are skipped and counted.
func (p *Pipeline) Process(event []byte) (Result, error) {
	b := p.NewBatch()
	if err := b.AddEvent(event); err != nil {
		return Result{}, err
	}
	return b.Result(), nil
}

// Batch accumulates matches from several inputs into one set of aggregates (replay feeds
// it many events and lines). It shares its Pipeline's buffers.
type Batch struct {
	p     *Pipeline
	acc   *aggregate.Accumulator
	stats Stats
	// suppressErrors is the suppressor's error count when the batch started.
	suppressErrors int64
}

// errorCounter is implemented by suppressors that count expressions failing at run time
// (*suppress.Filter); such a failure counts as "not suppressed".
type errorCounter interface{ Errors() int64 }

// NewBatch returns an empty batch.
func (p *Pipeline) NewBatch() *Batch {
	b := &Batch{
		p:     p,
		acc:   aggregate.New(p.opts.Rule, p.opts.GroupBy),
		stats: Stats{Skipped: map[SkipReason]int{}, Rejected: map[logsource.Reason]int{}},
	}
	if ec, ok := p.opts.Suppressor.(errorCounter); ok {
		b.suppressErrors = ec.Errors()
	}
	return b
}

// AddEvent decodes a raw Lambda event and adds its payloads. Nothing is added when the
// event cannot be decoded.
func (b *Batch) AddEvent(event []byte) error {
	payloads, err := b.p.dec.Decode(event)
	if err != nil {
		return fmt.Errorf("decode lambda event: %w", err)
	}
	for i, pl := range payloads {
		if err := b.addPayload(pl); err != nil {
			return fmt.Errorf("decode lambda event: payload %d: %w", i, err)
		}
	}
	return nil
}

// AddPayload adds one decoded subscription message. Control messages are counted only.
// A log event around which the subscription message is not JSON is counted as
// SkipBadEncoding; AddEvent fails the whole batch instead.
func (b *Batch) AddPayload(pl cwlogs.Payload) {
	_ = b.addPayload(pl)
}

// addPayload is AddPayload returning cwlogs.ErrMalformedMessage, after counting the line.
func (b *Batch) addPayload(pl cwlogs.Payload) error {
	b.stats.Payloads++
	if pl.MessageType == cwlogs.ControlMessage {
		b.stats.ControlMessages++
		return nil
	}
	if reason := b.p.opts.Sources.Accept(pl.LogGroup, pl.LogStream); reason != "" {
		b.stats.LogEvents += len(pl.LogEvents)
		b.stats.Rejected[reason] += len(pl.LogEvents)
		return nil
	}
	src := aggregate.Source{
		Owner:     pl.Owner,
		LogGroup:  pl.LogGroup,
		LogStream: pl.LogStream,
		Cluster:   aggregate.ClusterFromLogGroup(pl.LogGroup),
		Region:    b.p.opts.Region,
	}
	for _, le := range pl.LogEvents {
		b.stats.LogEvents++
		if !b.p.opts.ParseAll && !detect.MayMatch(le.Message, b.p.opts.Mode) {
			continue
		}
		b.stats.Candidates++
		text, err := le.Text()
		if err != nil {
			b.stats.Skipped[SkipBadEncoding]++
			if errors.Is(err, cwlogs.ErrMalformedMessage) {
				return err
			}
			continue
		}
		ev, err := audit.Parse(text)
		if err != nil {
			b.stats.Skipped[SkipReasonOf(err)]++
			continue
		}
		id := le.ID
		if id == "" {
			// CloudWatch Logs always sets ids; a producer that reshapes payloads may not.
			// A derived id keeps counting idempotent across redeliveries of such a batch.
			id = derivedID(pl, le.Timestamp, text)
		}
		b.add(ev, time.UnixMilli(le.Timestamp), src, id)
	}
	return nil
}

// derivedID identifies a log event that came without an id by a hash of where it was
// logged, when, and its text: the same line redelivered gets the same id.
func derivedID(pl cwlogs.Payload, timestamp int64, text []byte) string {
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
	b.add(ev, time.Time{}, src, "")
	return nil
}

func (b *Batch) add(ev audit.Event, logTime time.Time, src aggregate.Source, id string) {
	b.stats.AuditEvents++
	m, ok := detect.Evaluate(ev, logTime, b.p.opts.Mode)
	if !ok {
		return
	}
	b.stats.Matches++
	if s := b.p.opts.Suppressor; s != nil && s.Suppress(m, src) {
		b.stats.Suppressed++
		return
	}
	if b.acc.Add(src, m, id) {
		b.stats.DuplicateLogEvents++
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
	if ec, ok := b.p.opts.Suppressor.(errorCounter); ok {
		st.SuppressionErrors = int(ec.Errors() - b.suppressErrors)
	}
	return Result{Aggregates: b.acc.Aggregates(), Stats: st}
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
