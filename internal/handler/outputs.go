package handler

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/eks-unauthorized-access/detector/internal/alert"
	"github.com/eks-unauthorized-access/detector/internal/store"
)

// Output is an optional destination of every alert besides SNS: Security Hub
// (*finding.Importer) or EventBridge (*eventbus.Putter).
//
// Each alert goes to each output once, under a claim of its own (OutputClaims) taken after
// the SNS alert was published and recorded, with the protocol of the SNS alert: an output
// that fails makes the delivery fail and Lambda retry it; the retry finds the SNS alert
// already sent and only sends the output's copy. A failed output so never doubles the SNS
// alert, and an output answer that leaves it unknown whether the copy arrived (Send's error
// says PossiblyPublished) makes the retry send it again flagged as a possible duplicate,
// with the same alert id.
type Output interface {
	// Name names the output in its claim items, logs and metrics.
	Name() string
	// Wants reports whether messages of kind k go to this output.
	Wants(k alert.Kind) bool
	// Send delivers m (the SNS message of the alert: outputs read its structured alert)
	// and returns the id the destination gave it.
	Send(ctx context.Context, m alert.Message) (string, error)
}

// OutputClaims takes the claims of outputs; *store.Store satisfies it.
type OutputClaims interface {
	// ClaimOutput is Claim for output's copy of the alert whose claim is parent.
	ClaimOutput(ctx context.Context, parent store.Claim, output string, lease time.Duration) (store.Claim, error)
}

var _ OutputClaims = (*store.Store)(nil)

// sender is where alertOnce sends an alert, and the counters it keeps for it.
type sender struct {
	send                                   func(context.Context, alert.Message) (string, error)
	sent, unknown, duplicates, alreadySent *atomic.Int64
}

// outputSum counts what one invocation sent to one output.
type outputSum struct {
	sent, failed, unknown, duplicates, alreadySent atomic.Int64
}

// newSummary returns an empty summary with counters for each output.
func (h *Handler) newSummary() *summary {
	return &summary{outputs: make([]outputSum, len(h.opts.Outputs))}
}

// sns is the sender of SNS alerts counting published ones in published.
func (h *Handler) sns(sum *summary, published *atomic.Int64) sender {
	return sender{send: h.opts.Publisher.Publish, sent: published, unknown: &sum.unknown,
		duplicates: &sum.duplicates, alreadySent: &sum.alreadySent}
}

// sendOutputs sends the alert of kind whose claim is parent (claimed and sent now, or found
// already sent) to every output that wants it, each under its own claim, and returns
// their errors, joined. build is the alert's builder: a copy is built again from the
// stored state, with the output claim's possible-duplicate flag.
func (h *Handler) sendOutputs(ctx context.Context, kind alert.Kind, parent store.Claim,
	build func(possibleDuplicate bool) (alert.Message, store.Snapshot, error), sum *summary) error {
	if len(h.opts.Outputs) == 0 || (parent.Outcome != store.Claimed && parent.Outcome != store.AlreadySent) {
		return nil
	}
	if h.opts.OutputClaims == nil {
		return errors.New("send to the outputs: no output claims configured")
	}
	var errs []error
	for i, out := range h.opts.Outputs {
		if !out.Wants(kind) {
			continue
		}
		c := &sum.outputs[i]
		_, err := h.alertOnce(ctx, func(lease time.Duration) (store.Claim, error) {
			return h.opts.OutputClaims.ClaimOutput(ctx, parent, out.Name(), lease)
		}, func(possibleDuplicate bool) (alert.Message, store.Snapshot, error) {
			m, _, err := build(possibleDuplicate)
			// What an output reported is not recorded: updates compare with the SNS alerts.
			return m, store.Snapshot{}, err
		}, sender{send: out.Send, sent: &c.sent, unknown: &c.unknown, duplicates: &c.duplicates, alreadySent: &c.alreadySent}, sum)
		if err != nil {
			c.failed.Add(1)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// outputAttrs are the summary line's counts of each output.
func (h *Handler) outputAttrs(sum *summary) []slog.Attr {
	var attrs []slog.Attr
	for i, out := range h.opts.Outputs {
		c := &sum.outputs[i]
		attrs = append(attrs, slog.Group(out.Name(),
			slog.Int64("sent", c.sent.Load()), slog.Int64("failed", c.failed.Load()),
			slog.Int64("outcomeUnknown", c.unknown.Load()), slog.Int64("possibleDuplicates", c.duplicates.Load()),
			slog.Int64("alreadySent", c.alreadySent.Load())))
	}
	return attrs
}
