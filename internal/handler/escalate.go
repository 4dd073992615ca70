package handler

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/alert"
	"github.com/eks-unauthorized-access/detector/internal/store"
)

// Lifecycle is what escalations need beyond Store; *store.Store satisfies it.
type Lifecycle interface {
	// CountGroup adds the new log events of aggs to g's running total, idempotently,
	// records g in its window's index, and returns the total.
	CountGroup(ctx context.Context, g store.GroupKey, aggs []aggregate.Aggregate) (int64, error)
	ClaimEscalation(ctx context.Context, g store.GroupKey, threshold int64, lease time.Duration) (store.Claim, error)
	SentAlerts(ctx context.Context, g store.GroupKey) ([]store.Sent, error)
	MarkSentWith(ctx context.Context, c store.Claim, messageID string, snap store.Snapshot) error
}

var _ Lifecycle = (*store.Store)(nil)

// Due returns the thresholds that call for an update: those above what the first alert
// reported (the first alert already told more) and at most the running total, ascending.
// It is the one place that decides which updates a group owes.
func Due(thresholds []int64, firstReported, total int64) []int64 {
	var out []int64
	for _, t := range thresholds {
		if t > firstReported && t <= total {
			out = append(out, t)
		}
	}
	return out
}

// escalate publishes, one claim each, the updates of g that are due, lowest threshold
// first. Each threshold has its own claim item, so under redelivery, concurrency and
// retries each is published once (or, after an ambiguous publish, again flagged with the
// same id), and a delivery that crosses two thresholds publishes one update for each.
// The total comes from CountGroup, so a failure between counting and publishing leaves
// nothing behind: the retry finds the same total and publishes what is still due.
func (h *Handler) escalate(ctx context.Context, g store.GroupKey, total, firstReported int64, would []string, sum *summary) error {
	for _, t := range Due(h.opts.EscalateAt, firstReported, total) {
		build := func(possibleDuplicate bool) (alert.Message, store.Snapshot, error) {
			return h.buildEscalation(ctx, g, t, would, possibleDuplicate)
		}
		c, err := h.alertOnce(ctx, func(lease time.Duration) (store.Claim, error) {
			return h.opts.Lifecycle.ClaimEscalation(ctx, g, t, lease)
		}, build, h.sns(sum, &sum.escalations), sum)
		if err == nil {
			err = h.sendOutputs(ctx, alert.KindEscalation, c, build, sum)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// buildEscalation builds the update of g at threshold from its stored aggregates and
// what the previous alert (the first, or the update of the highest lower threshold)
// reported; would names the dry-run suppressions that would have suppressed some of it.
func (h *Handler) buildEscalation(ctx context.Context, g store.GroupKey, threshold int64, would []string, possibleDuplicate bool) (alert.Message, store.Snapshot, error) {
	aggs, err := h.opts.Store.Aggregates(ctx, g)
	if err != nil {
		return alert.Message{}, store.Snapshot{}, err
	}
	sent, err := h.opts.Lifecycle.SentAlerts(ctx, g)
	if err != nil {
		return alert.Message{}, store.Snapshot{}, err
	}
	var prev store.Sent
	for _, s := range sent {
		if s.Threshold < threshold {
			prev = s
		}
	}
	now := store.SnapshotOf(aggs)
	e := alert.Escalation{
		Threshold:     threshold,
		From:          prev.Reported.Attempts,
		To:            now.Attempts,
		NewSrcIPs:     added(prev.Reported.SrcIPs, now.SrcIPs),
		NewResources:  added(prev.Reported.Resources, now.Resources),
		NewUserAgents: added(prev.Reported.UserAgents, now.UserAgents),
	}
	msg, err := h.opts.RenderEscalation(alert.Group{Rule: h.opts.Rule, Window: g.Window, Key: g.Group, Aggregates: aggs, PossibleDuplicate: possibleDuplicate, WouldSuppress: would}, e)
	if err != nil {
		return alert.Message{}, store.Snapshot{}, fmt.Errorf("render update %d of %s: %w", threshold, g.Key(), err)
	}
	return msg, now, nil
}

// added returns the values of now that were not in before.
func added(before, now []string) []string {
	out := []string{}
	for _, v := range now {
		if !slices.Contains(before, v) {
			out = append(out, v)
		}
	}
	return out
}
