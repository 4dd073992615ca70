package handler

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/alert"
	"github.com/eks-unauthorized-access/detector/internal/store"
)

// Reports is what the hourly report needs beyond Store; *store.Store satisfies it.
type Reports interface {
	// WindowAggregates finds a window's aggregates through its index (no scan).
	WindowAggregates(ctx context.Context, rule string, window time.Time) ([]aggregate.Aggregate, error)
	ClaimReportPart(ctx context.Context, rule string, window time.Time, part int, lease time.Duration) (store.Claim, error)
}

var _ Reports = (*store.Store)(nil)

// ReportEvent is the input of the report function. The schedule sends its scheduled
// time, so that a late or repeated run reports the same window; Window, when set (a
// manual run), names the window's start instead.
type ReportEvent struct {
	ScheduledTime string `json:"scheduledTime,omitempty"`
	Window        string `json:"window,omitempty"`
}

// ReportWindow is the window a report event is for: Window, or the hour that ended before
// the scheduled time (or now, when the event has neither).
func ReportWindow(ev ReportEvent, now time.Time) (time.Time, error) {
	if ev.Window != "" {
		w, err := time.Parse(time.RFC3339, ev.Window)
		if err != nil {
			return time.Time{}, fmt.Errorf("report window %q: %w", ev.Window, err)
		}
		return w.UTC().Truncate(aggregate.WindowSize), nil
	}
	at := now
	if ev.ScheduledTime != "" {
		t, err := time.Parse(time.RFC3339, ev.ScheduledTime)
		if err != nil {
			return time.Time{}, fmt.Errorf("scheduled time %q: %w", ev.ScheduledTime, err)
		}
		at = t
	}
	return at.UTC().Truncate(aggregate.WindowSize).Add(-aggregate.WindowSize), nil
}

// ReportOptions configure the report of a Handler.
type ReportOptions struct {
	Reports Reports
	// Heartbeat publishes a report for a window without any match ("nothing happened").
	Heartbeat bool
}

// InvokeReport handles one invocation of the report function: it publishes each part of
// the report of the window, exactly once per part, with the same claim protocol as alerts.
func (h *Handler) InvokeReport(ctx context.Context, payload []byte) ([]byte, error) {
	var ev ReportEvent
	if len(payload) > 0 && string(payload) != "null" {
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, fmt.Errorf("decode report event: %w", err)
		}
	}
	window, err := ReportWindow(ev, h.opts.Now())
	if err != nil {
		return nil, err
	}
	sum := h.newSummary()
	parts, err := h.report(ctx, window, sum)
	level := slog.LevelInfo
	attrs := []slog.Attr{
		slog.String("window", window.Format(time.RFC3339)), slog.Int("parts", parts),
		slog.Int64("partsPublished", sum.published.Load()), slog.Int64("alreadySent", sum.alreadySent.Load()),
		slog.Int64("publishOutcomeUnknown", sum.unknown.Load()), slog.Int64("possibleDuplicates", sum.duplicates.Load()),
	}
	attrs = append(attrs, h.outputAttrs(sum)...)
	if err != nil {
		level = slog.LevelError
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	h.opts.Logger.LogAttrs(ctx, level, "report", attrs...)
	if err != nil {
		return nil, err
	}
	return []byte("null"), nil
}

func (h *Handler) report(ctx context.Context, window time.Time, sum *summary) (int, error) {
	r := h.opts.Report.Reports
	if r == nil {
		return 0, fmt.Errorf("report: no report store configured")
	}
	aggs, err := r.WindowAggregates(ctx, h.opts.Rule.ID, window)
	if err != nil {
		return 0, err
	}
	parts, err := alert.ReportParts(h.opts.Rule, window, aggs, h.opts.Now(), h.opts.Report.Heartbeat)
	if err != nil {
		return 0, fmt.Errorf("report of %s: %w", window.Format(time.RFC3339), err)
	}
	for _, p := range parts {
		build := func(possibleDuplicate bool) (alert.Message, store.Snapshot, error) {
			// After an ambiguous publish of this part, the retry sends it again with
			// the same id, flagged, as for alerts.
			p.PossibleDuplicate = possibleDuplicate
			m, err := alert.RenderReportPart(p)
			if err != nil {
				return alert.Message{}, store.Snapshot{}, fmt.Errorf("render report part %d of %s: %w", p.Part, window.Format(time.RFC3339), err)
			}
			return m, store.Snapshot{}, nil
		}
		c, err := h.alertOnce(ctx, func(lease time.Duration) (store.Claim, error) {
			return r.ClaimReportPart(ctx, h.opts.Rule.ID, window, p.Part, lease)
		}, build, h.sns(sum, &sum.published), sum)
		if err == nil {
			err = h.sendOutputs(ctx, alert.KindReport, c, build, sum)
		}
		if err != nil {
			return len(parts), err
		}
	}
	return len(parts), nil
}
