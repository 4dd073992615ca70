// Package handler is the Lambda function: for each delivery it runs the pipeline
// (decode → parse → detect → aggregate), records the aggregates in the store, and for
// each alert group claims, builds, publishes and marks sent one alert.
//
// A delivery that cannot be decoded, or whose writes or publishes fail, returns an error,
// so Lambda retries it and finally sends it to the on-failure destination. Counting and
// claiming are idempotent, so a retry finishes the work without counting or alerting
// twice. A Kinesis batch is answered record by record instead (kinesis.go): the response
// lists the records that failed, so that one bad record never holds up its shard.
package handler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/alert"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/logsource"
	"github.com/eks-unauthorized-access/detector/internal/metrics"
	"github.com/eks-unauthorized-access/detector/internal/notify"
	"github.com/eks-unauthorized-access/detector/internal/pipeline"
	"github.com/eks-unauthorized-access/detector/internal/store"
	"github.com/eks-unauthorized-access/detector/internal/suppress"
)

// Processor turns one raw Lambda event into aggregates; *pipeline.Pipeline satisfies it.
type Processor interface {
	Process(event []byte) (pipeline.Result, error)
}

// Store is the durable state; *store.Store satisfies it.
type Store interface {
	Record(ctx context.Context, aggs []aggregate.Aggregate) error
	Claim(ctx context.Context, g store.GroupKey, lease time.Duration) (store.Claim, error)
	Aggregates(ctx context.Context, g store.GroupKey) ([]aggregate.Aggregate, error)
	MarkSent(ctx context.Context, c store.Claim, messageID string) error
	Release(ctx context.Context, c store.Claim) error
	MarkUnknown(ctx context.Context, c store.Claim) error
}

// possiblyPublished is implemented by publish errors that know whether the message may
// have reached SNS anyway (*notify.Error).
type possiblyPublished interface{ PossiblyPublished() bool }

// publishErrorKind classifies a failed publish in err for the summary line: outcomeUnknown
// (SNS may have accepted it), retryable (a later attempt may succeed) or needsOperator (a
// missing topic, a denied permission); "" when err holds no publish error.
func publishErrorKind(err error) string {
	var pe *notify.Error
	switch {
	case !errors.As(err, &pe):
		return ""
	case pe.MaybeAccepted:
		return "outcomeUnknown"
	case pe.Retryable:
		return "retryable"
	}
	return "needsOperator"
}

// maybePublished reports whether a failed publish may have reached SNS. An error that
// does not say (building the alert failed, say) happened before anything was sent.
func maybePublished(err error) bool {
	var p possiblyPublished
	return errors.As(err, &p) && p.PossiblyPublished()
}

// FloodGuard decides which alert groups get an alert of their own; *store.Store satisfies it.
type FloodGuard interface {
	Admit(ctx context.Context, g store.GroupKey, owner, logGroup string, max int) (store.Admission, error)
}

// Publisher sends one alert; *notify.Publisher satisfies it.
type Publisher interface {
	Publish(ctx context.Context, m alert.Message) (messageID string, err error)
}

// Options configure a Handler.
type Options struct {
	Processor Processor
	Store     Store
	Publisher Publisher
	// Rule is the detection whose alerts are built.
	Rule detect.Rule
	// Alert configures alert building (region, aggregates per alert, clock).
	Alert alert.Options
	// Render builds the SNS message of an alert group; nil means alert.Build then
	// alert.Render with the Alert options.
	Render func(alert.Group) (alert.Message, error)
	// ClaimLease is the minimum lease of a claim; it is extended to outlast the
	// invocation's deadline, so a slow publish is never taken over while still running.
	ClaimLease time.Duration
	// HeldWait is how long an invocation waits for another invocation's claim on the same
	// alert group to turn into a sent alert before failing, so that Lambda retries it
	// (DefaultHeldWait if 0). Failing instead of succeeding is what keeps an alert from
	// being lost when the holder died or could not release its claim.
	HeldWait time.Duration
	// Concurrency bounds the alert groups processed at once (1 if 0).
	Concurrency int
	// Logger receives the one summary line per invocation (slog.Default if nil).
	Logger *slog.Logger
	// Metrics receives one CloudWatch Embedded Metric Format record per invocation
	// (none if nil); in Lambda it is standard output.
	Metrics io.Writer
	// FunctionName is the metrics' FunctionName dimension ("" for none).
	FunctionName string
	// Now is the clock (time.Now if nil).
	Now func() time.Time
	// Lifecycle keeps the running totals, escalation claims and window index; nil turns
	// escalations off and leaves windows unindexed (no hourly report finds them).
	Lifecycle Lifecycle
	// EscalateAt are the thresholds of attempts in a window at which a group's alert is
	// followed by an update, ascending (none: no updates).
	EscalateAt []int64
	// RenderEscalation builds the SNS message of an update; nil means alert.Build then
	// alert.RenderEscalation with the Alert options.
	RenderEscalation func(alert.Group, alert.Escalation) (alert.Message, error)
	// Report configures the hourly report (InvokeReport).
	Report ReportOptions
	// Outputs are the optional destinations of every alert besides SNS (Security Hub,
	// EventBridge), each sent once per alert under its own claim (see outputs.go).
	Outputs []Output
	// OutputClaims keeps the outputs' claims; nil means the Store, when it has ClaimOutput.
	OutputClaims OutputClaims
	// Suppressions is the suppression set that Processor uses, refreshed before each
	// invocation and reported in its log line and metrics (none if nil).
	Suppressions Suppressions
	// Flood and MaxGroups are the flood guard (ALERT_MAX_GROUPS): per log group and
	// window, at most MaxGroups alert groups get an alert of their own; the others are
	// folded into one "many users" alert, published once. Off when Flood is nil or
	// MaxGroups is 0 or less.
	Flood     FloodGuard
	MaxGroups int
	// RenderFlood builds the SNS message of a "many users" alert; nil means
	// alert.BuildFlood then alert.Render with the Alert options.
	RenderFlood func(g alert.Group, maxGroups, groups int) (alert.Message, error)
}

// Suppressions is the function's suppression set; *suppress.Reloader satisfies it.
type Suppressions interface {
	// Refresh reads the suppressions' parameter again if it is due (bounded in time).
	Refresh(ctx context.Context) suppress.Status
	// Expired names the entries past their expiry (they suppress nothing any more).
	Expired() []string
}

var _ Suppressions = (*suppress.Reloader)(nil)

// Handler handles Lambda invocations. It is safe for concurrent use.
type Handler struct {
	opts Options
	mu   sync.Mutex // guards Processor, which reuses buffers between events
	// expiredSaid holds the names of expired suppressions already logged.
	expiredSaid sync.Map
}

var _ lambda.Handler = (*Handler)(nil)

// ErrClaimHeld is returned when another invocation holds an alert group's claim and has
// not published by the end of HeldWait: the retry of this delivery publishes the alert if
// the holder never does.
var ErrClaimHeld = errors.New("alert group claimed by another invocation that has not published yet")

// DefaultHeldWait is the default of Options.HeldWait.
const DefaultHeldWait = 5 * time.Second

// leaseMargin is added to the time left before the deadline when sizing a claim lease.
const leaseMargin = 10 * time.Second

// New returns a Handler.
func New(opts Options) *Handler {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 1
	}
	if opts.HeldWait <= 0 {
		opts.HeldWait = DefaultHeldWait
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Render == nil {
		alertOpts := opts.Alert
		opts.Render = func(g alert.Group) (alert.Message, error) {
			return alert.Render(alert.Build(g, alertOpts))
		}
	}
	if oc, ok := opts.Store.(OutputClaims); ok && opts.OutputClaims == nil {
		opts.OutputClaims = oc
	}
	if opts.RenderFlood == nil {
		alertOpts := opts.Alert
		opts.RenderFlood = func(g alert.Group, maxGroups, groups int) (alert.Message, error) {
			return alert.Render(alert.BuildFlood(g, maxGroups, groups, alertOpts))
		}
	}
	if opts.RenderEscalation == nil {
		alertOpts := opts.Alert
		opts.RenderEscalation = func(g alert.Group, e alert.Escalation) (alert.Message, error) {
			return alert.RenderEscalation(alert.Build(g, alertOpts), e)
		}
	}
	return &Handler{opts: opts}
}

// summary counts what one invocation did; it is logged as one line.
type summary struct {
	stats       pipeline.Stats
	aggregates  int
	recorded    bool // the aggregates were stored
	groups      int
	published   atomic.Int64
	alreadySent atomic.Int64
	heldByOther atomic.Int64
	failed      atomic.Int64
	// unknown counts publishes whose outcome is unknown; duplicates counts alerts
	// published flagged as possible duplicates; unrecorded counts alerts published whose
	// sent state could not be recorded before the deadline.
	unknown    atomic.Int64
	duplicates atomic.Int64
	unrecorded atomic.Int64
	// escalations counts updates published.
	escalations atomic.Int64
	// outputs counts, per Options.Outputs, what was sent to each.
	outputs []outputSum
	// folded counts the alert groups the flood guard folded into a "many users" alert.
	folded atomic.Int64
	// records and recordsFailed count the Kinesis records of the batch and those reported
	// as failed (both 0 for a CloudWatch Logs event).
	records       int
	recordsFailed int
	firstFailed   string // sequence number of the first record reported failed
	// suppressions is what refreshing the suppressions did; expired names the entries
	// past their expiry.
	suppressions suppress.Status
	expired      []string
}

// Invoke handles one raw Lambda event (a CloudWatch Logs subscription event or a Kinesis
// event). It returns an error when a CloudWatch Logs event cannot be decoded or any write
// or publish failed, so that Lambda retries the delivery. A Kinesis event is answered
// record by record instead (see invokeKinesis): the response names the records that
// failed.
func (h *Handler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	start := h.opts.Now()
	sum := h.newSummary()
	h.refreshSuppressions(ctx, sum)
	if records, ok := kinesisRecords(payload); ok {
		resp, err := h.invokeKinesis(ctx, records, sum)
		h.log(ctx, sum, start, err)
		h.metrics(ctx, sum, err)
		if resp == nil {
			return nil, err
		}
		return resp, nil
	}
	err := h.invoke(ctx, payload, sum)
	h.log(ctx, sum, start, err)
	h.metrics(ctx, sum, err)
	if err != nil {
		return nil, err
	}
	return []byte("null"), nil
}

func (h *Handler) invoke(ctx context.Context, payload []byte, sum *summary) error {
	h.mu.Lock()
	res, err := h.opts.Processor.Process(payload)
	h.mu.Unlock()
	sum.stats = res.Stats
	if err != nil {
		return fmt.Errorf("process event: %w", err)
	}
	_, err = h.deliver(ctx, res.Aggregates, sum)
	return err
}

// deliver records aggs in the store and alerts each of their alert groups. It returns the
// groups whose alert failed (every group when recording failed) and the errors, joined.
func (h *Handler) deliver(ctx context.Context, aggs []aggregate.Aggregate, sum *summary) (map[store.GroupKey]bool, error) {
	sum.aggregates = len(aggs)
	if len(aggs) == 0 {
		return nil, nil
	}
	groups, byGroup := aggregate.Split(aggs)
	if err := h.opts.Store.Record(ctx, aggs); err != nil {
		failed := make(map[store.GroupKey]bool, len(groups))
		for _, g := range groups {
			failed[g] = true
		}
		return failed, err
	}
	sum.recorded = true
	sum.groups = len(groups)
	errs := make([]error, len(groups))
	sem := make(chan struct{}, h.opts.Concurrency)
	var wg sync.WaitGroup
	var folded foldedGroups
	for i, g := range groups {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if errs[i] = h.alertGroup(ctx, g, byGroup[g], &folded, sum); errs[i] != nil {
				sum.failed.Add(1)
			}
		}()
	}
	wg.Wait()
	// The "many users" alert of each log group whose groups this delivery folded (after
	// the groups, so that it lists all of them). Its failure fails the folded groups, so
	// that the retry of the delivery sends it.
	for fk, fgs := range folded.byLog {
		if err := h.alertFlood(ctx, fk, fgs, aggs, sum); err != nil {
			sum.failed.Add(1)
			for _, g := range fgs.groups {
				for i := range groups {
					if groups[i] == g && errs[i] == nil {
						errs[i] = err
					}
				}
			}
		}
	}
	var failed map[store.GroupKey]bool
	for i, err := range errs {
		if err != nil {
			if failed == nil {
				failed = map[store.GroupKey]bool{}
			}
			failed[groups[i]] = true
		}
	}
	return failed, errors.Join(errs...)
}

// alertGroup counts group g's new log events in its running total, claims its first
// alert and, if this invocation wins the claim, publishes it; then it publishes the
// updates of the thresholds the total has crossed (see escalate).
func (h *Handler) alertGroup(ctx context.Context, g store.GroupKey, aggs []aggregate.Aggregate, folded *foldedGroups, sum *summary) error {
	would := wouldSuppress(g, aggs)
	var total int64
	if h.opts.Lifecycle != nil {
		var err error
		// Folded groups are counted too: the window index is what the report reads.
		if total, err = h.opts.Lifecycle.CountGroup(ctx, g, aggs); err != nil {
			return err
		}
	}
	if admitted, err := h.admit(ctx, g, aggs, folded); err != nil || !admitted {
		if err == nil {
			sum.folded.Add(1)
		}
		return err
	}
	build := func(possibleDuplicate bool) (alert.Message, store.Snapshot, error) {
		return h.publishFirst(ctx, g, would, possibleDuplicate)
	}
	first, err := h.alertOnce(ctx, func(lease time.Duration) (store.Claim, error) {
		return h.opts.Store.Claim(ctx, g, lease)
	}, build, h.sns(sum, &sum.published), sum)
	if err == nil {
		err = h.sendOutputs(ctx, alert.KindFirst, first, build, sum)
	}
	if err != nil || h.opts.Lifecycle == nil || first.Outcome == 0 {
		return err
	}
	return h.escalate(ctx, g, total, first.Reported.Attempts, would, sum)
}

// alertOnce runs the claim protocol for one alert (a first alert, an update or a report
// part): take the claim, publish what build returns, record it as sent. When another
// invocation sent it already it returns that claim (with what it reported). After a
// publish that may have reached SNS the claim is kept as unknown, so that the retry
// publishes again flagged as a possible duplicate with the same id; after one that
// certainly did not, it is released. The returned claim's Reported is what was sent.
// The same protocol sends an alert's copy to an output (to.send), under its own claim.
func (h *Handler) alertOnce(ctx context.Context, take func(time.Duration) (store.Claim, error),
	build func(possibleDuplicate bool) (alert.Message, store.Snapshot, error), to sender, sum *summary) (store.Claim, error) {
	claim, err := h.claimWith(ctx, take, to.alreadySent, sum)
	if err != nil || claim.Outcome != store.Claimed {
		return claim, err
	}
	msg, snap, err := build(claim.PossibleDuplicate)
	id := ""
	if err == nil {
		id, err = to.send(ctx, msg)
	}
	if err != nil {
		bg := context.WithoutCancel(ctx)
		if maybePublished(err) {
			// SNS may have accepted it: keep the claim as unknown, so that the retry of this
			// delivery publishes again flagged as a possible duplicate, with the same id.
			to.unknown.Add(1)
			if mErr := h.opts.Store.MarkUnknown(bg, claim); mErr != nil {
				return claim, errors.Join(err, mErr)
			}
			return claim, err
		}
		// Certainly not published: give the claim back so that the retry can publish at once.
		if relErr := h.opts.Store.Release(bg, claim); relErr != nil {
			return claim, errors.Join(err, relErr)
		}
		return claim, err
	}
	to.sent.Add(1)
	if claim.PossibleDuplicate {
		to.duplicates.Add(1)
	}
	claim.Reported = snap
	return claim, h.markSent(ctx, claim, id, snap, sum)
}

// markSent records the published alert, repeating the write (which is safe to repeat)
// while the invocation has time. If it still fails, the alert went out but the claim
// stays until its lease expires; a later delivery of the group then publishes it again,
// flagged as a possible duplicate. The invocation does not fail for it: retrying the
// delivery could only cause that duplicate sooner.
func (h *Handler) markSent(ctx context.Context, claim store.Claim, id string, snap store.Snapshot, sum *summary) error {
	bg := context.WithoutCancel(ctx)
	wait := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		var err error
		if h.opts.Lifecycle != nil {
			err = h.opts.Lifecycle.MarkSentWith(bg, claim, id, snap)
		} else {
			err = h.opts.Store.MarkSent(bg, claim, id)
		}
		if err == nil || errors.Is(err, store.ErrClaimLost) {
			return err
		}
		deadline, ok := ctx.Deadline()
		if (ok && deadline.Sub(h.opts.Now()) < wait+time.Second) || (!ok && attempt == 5) {
			sum.unrecorded.Add(1)
			h.opts.Logger.LogAttrs(ctx, slog.LevelWarn, "alert published but not recorded as sent",
				slog.String("group", claim.Group.Key()), slog.String("error", err.Error()))
			return nil
		}
		time.Sleep(wait)
		wait = min(2*wait, 2*time.Second)
	}
}

// claim takes the claim of group g. When another invocation holds it, claim waits up to
// HeldWait for that alert to be sent (the usual case: a concurrent delivery of the same
// group) and retries the claim, which succeeds once an abandoned lease expires. If the
// group is still held it returns ErrClaimHeld, so that Lambda retries this delivery
// rather than dropping an alert whose holder may have died.
func (h *Handler) claimWith(ctx context.Context, take func(time.Duration) (store.Claim, error), alreadySent *atomic.Int64, sum *summary) (store.Claim, error) {
	start := h.opts.Now()
	for wait := 25 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		claim, err := take(h.lease(ctx))
		if err != nil {
			return store.Claim{}, err
		}
		switch claim.Outcome {
		case store.AlreadySent:
			alreadySent.Add(1)
			return claim, nil
		case store.Claimed:
			return claim, nil
		}
		// Wait, at most up to the limit, and try again: the last try comes at the limit,
		// after the holder's lease has ended when the limit is the lease's end.
		elapsed, limit := h.opts.Now().Sub(start), h.heldLimit(ctx, start, claim.LeaseUntil)
		if elapsed >= limit {
			sum.heldByOther.Add(1)
			return store.Claim{}, fmt.Errorf("claim %s: %w", claim.Group.Key(), ErrClaimHeld)
		}
		t := time.NewTimer(min(wait, limit-elapsed))
		select {
		case <-ctx.Done():
			t.Stop()
			sum.heldByOther.Add(1)
			return store.Claim{}, fmt.Errorf("claim %s: %w (%w)", claim.Group.Key(), ErrClaimHeld, ctx.Err())
		case <-t.C:
		}
	}
}

// publishReserve is the time an invocation keeps for publishing after waiting for a lease.
const publishReserve = 10 * time.Second

// heldLimit is how long claim waits, from start, for a group held by another invocation:
// HeldWait, or until the holder's lease ends if that leaves publishReserve before the
// deadline. A retry of a delivery whose first attempt died holding the claim (Lambda
// retries a minute later; the lease outlasts the dead invocation's deadline by 10 s) so
// takes the claim over in the same attempt instead of failing again.
func (h *Handler) heldLimit(ctx context.Context, start, leaseUntil time.Time) time.Duration {
	limit := h.opts.HeldWait
	deadline, ok := ctx.Deadline()
	if !ok || leaseUntil.IsZero() {
		return limit
	}
	if end := leaseUntil.Add(100 * time.Millisecond); end.Before(deadline.Add(-publishReserve)) {
		limit = max(limit, end.Sub(start))
	}
	return limit
}

// wouldSuppress returns the names of the dry-run suppressions that tagged the aggregates
// of group g in this delivery, sorted.
func wouldSuppress(g store.GroupKey, aggs []aggregate.Aggregate) []string {
	var names []string
	for _, a := range aggs {
		if len(a.WouldSuppress) > 0 && aggregate.AlertGroupOf(a) == g {
			names = append(names, a.WouldSuppress...)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// publishFirst builds the first alert of g from its stored aggregates, and what it
// reports; would names the dry-run suppressions that would have suppressed some of it.
func (h *Handler) publishFirst(ctx context.Context, g store.GroupKey, would []string, possibleDuplicate bool) (alert.Message, store.Snapshot, error) {
	aggs, err := h.opts.Store.Aggregates(ctx, g)
	if err != nil {
		return alert.Message{}, store.Snapshot{}, err
	}
	msg, err := h.opts.Render(alert.Group{Rule: h.opts.Rule, Window: g.Window, Key: g.Group, Aggregates: aggs, PossibleDuplicate: possibleDuplicate, WouldSuppress: would})
	if err != nil {
		return alert.Message{}, store.Snapshot{}, fmt.Errorf("render alert %s: %w", g.Key(), err)
	}
	return msg, store.SnapshotOf(aggs), nil
}

// lease returns the claim lease: at least ClaimLease, and longer than the time left.
func (h *Handler) lease(ctx context.Context) time.Duration {
	lease := h.opts.ClaimLease
	if deadline, ok := ctx.Deadline(); ok {
		if left := deadline.Sub(h.opts.Now()) + leaseMargin; left > lease {
			lease = left
		}
	}
	if lease <= 0 {
		lease = leaseMargin
	}
	return lease
}

// metrics writes the invocation's EMF record. Aggregates count as written only when the
// invocation stored them; DuplicateDeliveries counts the signs of a redelivery: log events
// repeated within the batch and alert groups found already sent.
func (h *Handler) metrics(ctx context.Context, sum *summary, err error) {
	if h.opts.Metrics == nil {
		return
	}
	inv := metrics.Invocation{
		FunctionName:        h.opts.FunctionName,
		LogEventsReceived:   int64(sum.stats.LogEvents),
		AuditEventsParsed:   int64(sum.stats.AuditEvents),
		LinesSkipped:        make(map[string]int64, len(sum.stats.Skipped)),
		Matches:             int64(sum.stats.Matches),
		Suppressed:          int64(sum.stats.Suppressed),
		DuplicateDeliveries: int64(sum.stats.DuplicateLogEvents) + sum.alreadySent.Load(),
		AlertsPublished:     sum.published.Load(),
		SuppressionErrors:   int64(sum.stats.SuppressionErrors),
		// Alerts published but not recorded as sent are unknown outcomes too: a later
		// delivery of the group publishes them again, flagged.
		PublishOutcomeUnknown: sum.unknown.Load() + sum.unrecorded.Load(),
		PossibleDuplicates:    sum.duplicates.Load(),
		LogEventsRejected:     make(map[logsource.Reason]int64, len(sum.stats.Rejected)),
		RecordsFailed:         int64(sum.recordsFailed),
		SuppressionsExpired:   int64(len(sum.expired)),
	}
	if sum.suppressions.Rejected != 0 {
		inv.SuppressionUpdateRejected = 1
	}
	if sum.suppressions.ReadError != nil {
		inv.SuppressionParameterErrors = 1
	}
	for reason, n := range sum.stats.Rejected {
		inv.LogEventsRejected[reason] += int64(n)
	}
	for i, out := range h.opts.Outputs {
		c := &sum.outputs[i]
		inv.Outputs = append(inv.Outputs, metrics.Output{Name: out.Name(), Sent: c.sent.Load(), Failures: c.failed.Load(),
			OutcomeUnknown: c.unknown.Load(), PossibleDuplicates: c.duplicates.Load()})
	}
	if sum.recorded {
		inv.AggregatesWritten = int64(sum.aggregates)
	}
	for reason, n := range sum.stats.Skipped {
		inv.LinesSkipped[reason.Metric()] += int64(n)
	}
	werr := metrics.Write(h.opts.Metrics, inv, h.opts.Now())
	if werr == nil {
		werr = metrics.WriteSuppressions(h.opts.Metrics, h.opts.FunctionName, suppressionCounts(sum.stats), h.opts.Now())
	}
	if werr != nil {
		h.opts.Logger.LogAttrs(ctx, slog.LevelWarn, "write metrics", slog.String("error", werr.Error()))
	}
}

// log writes the invocation's summary line: counts only, never event contents.
func (h *Handler) log(ctx context.Context, sum *summary, start time.Time, err error) {
	level := slog.LevelInfo
	attrs := []slog.Attr{
		slog.Int("payloads", sum.stats.Payloads),
		slog.Int("controlMessages", sum.stats.ControlMessages),
		slog.Int("logEvents", sum.stats.LogEvents),
		slog.Int("auditEvents", sum.stats.AuditEvents),
		slog.Int("matches", sum.stats.Matches),
		slog.Int("suppressed", sum.stats.Suppressed),
		slog.Int("suppressionErrors", sum.stats.SuppressionErrors),
		slog.Int("candidates", sum.stats.Candidates),
		slog.Int("duplicateLogEvents", sum.stats.DuplicateLogEvents),
		slog.Int("skipped", sum.stats.SkippedTotal()),
		slog.Int("truncatedParsed", sum.stats.TruncatedParsed),
		slog.Int("rejected", sum.stats.RejectedTotal()),
		slog.Int("aggregates", sum.aggregates),
		slog.Int("alertGroups", sum.groups),
		slog.Int64("alertsPublished", sum.published.Load()),
		slog.Int64("escalationsPublished", sum.escalations.Load()),
		slog.Int64("groupsFolded", sum.folded.Load()),
		slog.Int64("alreadySent", sum.alreadySent.Load()),
		slog.Int64("heldByOther", sum.heldByOther.Load()),
		slog.Int64("groupsFailed", sum.failed.Load()),
		slog.Int64("publishOutcomeUnknown", sum.unknown.Load()),
		slog.Int64("possibleDuplicates", sum.duplicates.Load()),
		slog.Int64("sentNotRecorded", sum.unrecorded.Load()),
		slog.Int64("durationMs", h.opts.Now().Sub(start).Milliseconds()),
	}
	attrs = append(attrs, h.outputAttrs(sum)...)
	for reason, n := range sum.stats.Skipped {
		attrs = append(attrs, slog.Int("skipped_"+string(reason), n))
	}
	for reason, n := range sum.stats.Rejected {
		attrs = append(attrs, slog.Int("rejected_"+string(reason), n))
	}
	if v := sum.suppressions.Version; v != 0 {
		attrs = append(attrs, slog.Int64("suppressionsVersion", v))
	}
	if r := sum.suppressions.Rejected; r != 0 {
		attrs = append(attrs, slog.Int64("suppressionsRejectedVersion", r))
	}
	if len(sum.stats.SuppressedBy) > 0 {
		attrs = append(attrs, countsAttr("suppressedBy", sum.stats.SuppressedBy))
	}
	if len(sum.stats.WouldSuppress) > 0 {
		attrs = append(attrs, countsAttr("wouldSuppress", sum.stats.WouldSuppress))
	}
	if sum.records > 0 {
		attrs = append(attrs, slog.Int("records", sum.records), slog.Int("recordsFailed", sum.recordsFailed))
		if sum.firstFailed != "" {
			attrs = append(attrs, slog.String("firstFailedSequenceNumber", sum.firstFailed))
		}
	}
	if err != nil {
		level = slog.LevelError
		attrs = append(attrs, slog.String("error", err.Error()))
		if kind := publishErrorKind(err); kind != "" {
			attrs = append(attrs, slog.String("publishError", kind))
		}
	}
	h.opts.Logger.LogAttrs(ctx, level, "invocation", attrs...)
}

// countsAttr is a group of counts per suppression name, in name order: names only, never
// an expression or a value.
func countsAttr(key string, counts map[string]int) slog.Attr {
	attrs := make([]any, 0, len(counts))
	for _, name := range slices.Sorted(maps.Keys(counts)) {
		attrs = append(attrs, slog.Int(name, counts[name]))
	}
	return slog.Group(key, attrs...)
}

// suppressionCounts returns the per-entry counts of an invocation for its metrics.
func suppressionCounts(st pipeline.Stats) map[string]metrics.SuppressionCounts {
	out := make(map[string]metrics.SuppressionCounts, len(st.SuppressedBy)+len(st.WouldSuppress))
	for name, n := range st.SuppressedBy {
		c := out[name]
		c.Suppressed = int64(n)
		out[name] = c
	}
	for name, n := range st.WouldSuppress {
		c := out[name]
		c.WouldSuppress = int64(n)
		out[name] = c
	}
	return out
}

// refreshSuppressions refreshes the suppression set before the invocation and says what
// changed: the parameter version taken (with the entries' names), an update rejected
// (with why: the names and positions of its problems; the text of a SecureString is never
// quoted), a failed read, entries that expired (once each).
func (h *Handler) refreshSuppressions(ctx context.Context, sum *summary) {
	if h.opts.Suppressions == nil {
		return
	}
	st := h.opts.Suppressions.Refresh(ctx)
	sum.suppressions = st
	log := h.opts.Logger
	switch {
	case st.Changed:
		log.LogAttrs(ctx, slog.LevelInfo, "suppressions updated", slog.Int64("parameterVersion", st.Version), slog.Any("entries", st.Names))
	case st.RejectError != nil:
		log.LogAttrs(ctx, slog.LevelError, "suppressions update rejected; the previous set stays in use",
			slog.Int64("parameterVersion", st.Rejected), slog.Int64("inUseVersion", st.Version), slog.String("error", st.RejectError.Error()))
	case st.ReadError != nil:
		log.LogAttrs(ctx, slog.LevelWarn, "suppressions parameter not read; the previous set stays in use",
			slog.Int64("inUseVersion", st.Version), slog.String("error", st.ReadError.Error()))
	}
	sum.expired = h.opts.Suppressions.Expired()
	for _, name := range sum.expired {
		if _, said := h.expiredSaid.LoadOrStore(name, true); !said {
			log.LogAttrs(ctx, slog.LevelWarn, "suppression expired: it suppresses nothing any more; remove it or renew its expiry",
				slog.String("suppression", name))
		}
	}
}

// floodKey is one log group in one window: the scope of the flood guard.
type floodKey struct {
	rule            string
	window          time.Time
	owner, logGroup string
}

// foldedGroup lists the groups of one delivery folded into a log group's "many users"
// alert, and the most groups the flood item counted for them.
type foldedGroup struct {
	groups []store.GroupKey
	count  int
}

// foldedGroups collects the folded groups of one delivery; safe for concurrent use.
type foldedGroups struct {
	mu    sync.Mutex
	byLog map[floodKey]*foldedGroup
}

func (f *foldedGroups) add(k floodKey, g store.GroupKey, count int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byLog == nil {
		f.byLog = map[floodKey]*foldedGroup{}
	}
	fg := f.byLog[k]
	if fg == nil {
		fg = &foldedGroup{}
		f.byLog[k] = fg
	}
	fg.groups = append(fg.groups, g)
	fg.count = max(fg.count, count)
}

// admit asks the flood guard whether g gets an alert of its own; a folded group is added
// to folded. Without a flood guard every group is admitted.
func (h *Handler) admit(ctx context.Context, g store.GroupKey, aggs []aggregate.Aggregate, folded *foldedGroups) (bool, error) {
	if h.opts.Flood == nil || h.opts.MaxGroups <= 0 {
		return true, nil
	}
	src := sourceOf(g, aggs)
	adm, err := h.opts.Flood.Admit(ctx, g, src.Owner, src.LogGroup, h.opts.MaxGroups)
	if err != nil {
		return false, err
	}
	if !adm.Admitted {
		folded.add(floodKey{g.Rule, g.Window, src.Owner, src.LogGroup}, g, adm.Groups)
	}
	return adm.Admitted, nil
}

// sourceOf returns the source of group g's aggregates in aggs (a group is within one
// account and log group).
func sourceOf(g store.GroupKey, aggs []aggregate.Aggregate) aggregate.Source {
	for _, a := range aggs {
		if aggregate.AlertGroupOf(a) == g {
			return a.Source
		}
	}
	return aggregate.Source{}
}

// alertFlood publishes, once per log group and window, the "many users" alert, built from
// this delivery's aggregates of the folded groups fg.
func (h *Handler) alertFlood(ctx context.Context, k floodKey, fg *foldedGroup, aggs []aggregate.Aggregate, sum *summary) error {
	key := store.GroupKey{Rule: k.rule, Window: k.window, Group: alert.FloodGroupKey(k.owner, k.logGroup)}
	var mine []aggregate.Aggregate
	for _, a := range aggs {
		if slices.Contains(fg.groups, aggregate.AlertGroupOf(a)) {
			mine = append(mine, a)
		}
	}
	build := func(possibleDuplicate bool) (alert.Message, store.Snapshot, error) {
		msg, err := h.opts.RenderFlood(alert.Group{Rule: h.opts.Rule, Window: k.window, Key: key.Group, Aggregates: mine, PossibleDuplicate: possibleDuplicate},
			h.opts.MaxGroups, fg.count)
		if err != nil {
			return alert.Message{}, store.Snapshot{}, fmt.Errorf("render the many-users alert %s: %w", key.Key(), err)
		}
		return msg, store.SnapshotOf(mine), nil
	}
	c, err := h.alertOnce(ctx, func(lease time.Duration) (store.Claim, error) {
		return h.opts.Store.Claim(ctx, key, lease)
	}, build, h.sns(sum, &sum.published), sum)
	if err == nil {
		err = h.sendOutputs(ctx, alert.KindFlood, c, build, sum)
	}
	return err
}
