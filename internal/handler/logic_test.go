package handler_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/alert"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/handler"
	"github.com/eks-unauthorized-access/detector/internal/notify"
	"github.com/eks-unauthorized-access/detector/internal/pipeline"
	"github.com/eks-unauthorized-access/detector/internal/store"
)

// These tests run the handler's claim, publish and record logic against fakes of the
// project's own Store and Publisher interfaces, built from function fields: no emulator,
// so they run in the fast tier. The same paths run against DynamoDB Local and moto in
// ambiguity_test.go and fault_test.go.

// fakeStore is a handler.Store whose methods are its fields; nil fields succeed.
type fakeStore struct {
	claim       func(g store.GroupKey) (store.Claim, error)
	markSent    func(c store.Claim, id string) error
	release     func(c store.Claim) error
	markUnknown func(c store.Claim) error
}

func (f *fakeStore) Record(context.Context, []aggregate.Aggregate) error { return nil }
func (f *fakeStore) Claim(_ context.Context, g store.GroupKey, lease time.Duration) (store.Claim, error) {
	if f.claim == nil {
		return store.Claim{Group: g, Outcome: store.Claimed, Token: "t", LeaseUntil: time.Now().Add(lease)}, nil
	}
	return f.claim(g)
}
func (f *fakeStore) Aggregates(context.Context, store.GroupKey) ([]aggregate.Aggregate, error) {
	return nil, nil
}
func (f *fakeStore) MarkSent(_ context.Context, c store.Claim, id string) error {
	if f.markSent == nil {
		return nil
	}
	return f.markSent(c, id)
}
func (f *fakeStore) Release(_ context.Context, c store.Claim) error {
	if f.release == nil {
		return nil
	}
	return f.release(c)
}
func (f *fakeStore) MarkUnknown(_ context.Context, c store.Claim) error {
	if f.markUnknown == nil {
		return nil
	}
	return f.markUnknown(c)
}

// publishFunc is a handler.Publisher.
type publishFunc func(alert.Message) (string, error)

func (p publishFunc) Publish(_ context.Context, m alert.Message) (string, error) { return p(m) }

var (
	_ handler.Store     = (*fakeStore)(nil)
	_ handler.Publisher = publishFunc(nil)
)

// oneGroup is a delivery with one forbidden create, so one alert group.
func oneGroup(t *testing.T) []byte {
	return delivery(t, []string{auditLine(t, "mallory", "203.0.113.9", time.Minute, nil)}, nil)
}

func fakeHandler(st handler.Store, pub handler.Publisher, log *syncBuffer, heldWait time.Duration) *handler.Handler {
	return handler.New(handler.Options{
		Processor: pipeline.New(pipeline.Options{Rule: detect.UnauthorizedAccess, Mode: detect.ModeSeed, GroupBy: aggregate.GroupByUser}),
		Store:     st, Publisher: pub, Rule: detect.UnauthorizedAccess,
		ClaimLease: time.Minute, HeldWait: heldWait, Logger: handler.NewLogger(log, slog.LevelInfo),
	})
}

func TestPublishOutcomes(t *testing.T) {
	unknown := &notify.Error{Retryable: true, MaybeAccepted: true, Err: errors.New("HTTP 500 after sending")}
	refused := &notify.Error{Retryable: true, Err: errors.New("throttled")}
	for _, tc := range []struct {
		name                      string
		err                       error
		wantErr                   bool
		wantUnknown, wantReleased int
		wantSent                  int
	}{
		{"published", nil, false, 0, 0, 1},
		{"outcome unknown: the claim is kept as unknown", unknown, true, 1, 0, 0},
		{"certainly not published: the claim is released", refused, true, 0, 1, 0},
		{"failed before sending (no classification): released", errors.New("render failed"), true, 0, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var unknowns, releases, sent atomic.Int64
			st := &fakeStore{
				markUnknown: func(store.Claim) error { unknowns.Add(1); return nil },
				release:     func(store.Claim) error { releases.Add(1); return nil },
				markSent:    func(store.Claim, string) error { sent.Add(1); return nil },
			}
			pub := publishFunc(func(alert.Message) (string, error) { return "m-1", tc.err })
			log := &syncBuffer{}
			err := invokeWith(fakeHandler(st, pub, log, 0), oneGroup(t), "r", 10*time.Second)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Invoke error %v, want error %v", err, tc.wantErr)
			}
			if want := map[bool]string{true: `"publishError":"outcomeUnknown"`, false: `"publishError":"retryable"`}[tc.wantUnknown == 1]; tc.err != nil && tc.err.Error() != "render failed" && !strings.Contains(log.String(), want) {
				t.Errorf("summary line lacks %s:\n%s", want, log)
			}
			if unknowns.Load() != int64(tc.wantUnknown) || releases.Load() != int64(tc.wantReleased) || sent.Load() != int64(tc.wantSent) {
				t.Errorf("unknown %d, released %d, sent %d; want %d, %d, %d", unknowns.Load(), releases.Load(), sent.Load(),
					tc.wantUnknown, tc.wantReleased, tc.wantSent)
			}
		})
	}
}

func TestPossibleDuplicateIsFlagged(t *testing.T) {
	st := &fakeStore{claim: func(g store.GroupKey) (store.Claim, error) {
		return store.Claim{Group: g, Outcome: store.Claimed, Token: "t", PossibleDuplicate: true}, nil
	}}
	var got alert.Message
	pub := publishFunc(func(m alert.Message) (string, error) { got = m; return "m-2", nil })
	log := &syncBuffer{}
	if err := invokeWith(fakeHandler(st, pub, log, 0), oneGroup(t), "r", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if got.MessageAttributes["possibleDuplicate"].StringValue != "true" || !strings.Contains(got.Subject, "(possible duplicate)") {
		t.Errorf("published %q with attributes %v: want it flagged", got.Subject, got.MessageAttributes)
	}
	if !strings.Contains(log.String(), `"possibleDuplicates":1`) {
		t.Errorf("summary line does not count the flagged copy:\n%s", log)
	}
}

func TestMarkSentIsRepeated(t *testing.T) {
	var calls atomic.Int64
	st := &fakeStore{markSent: func(store.Claim, string) error {
		if calls.Add(1) < 3 {
			return errors.New("throttled")
		}
		return nil
	}}
	pub := publishFunc(func(alert.Message) (string, error) { return "m-3", nil })
	if err := invokeWith(fakeHandler(st, pub, &syncBuffer{}, 0), oneGroup(t), "r", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 {
		t.Errorf("MarkSent called %d times, want 3", calls.Load())
	}

	// Never recorded before the deadline: the alert is out, so the invocation succeeds and
	// says so in its summary line.
	calls.Store(0)
	st.markSent = func(store.Claim, string) error { calls.Add(1); return errors.New("throttled") }
	log := &syncBuffer{}
	if err := invokeWith(fakeHandler(st, pub, log, 0), oneGroup(t), "r", 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if calls.Load() < 1 || !strings.Contains(log.String(), `"sentNotRecorded":1`) {
		t.Errorf("MarkSent called %d times, summary:\n%s", calls.Load(), log)
	}

	// A claim lost to another holder is an error (the retry finds the group sent).
	st.markSent = func(store.Claim, string) error { return store.ErrClaimLost }
	if err := invokeWith(fakeHandler(st, pub, &syncBuffer{}, 0), oneGroup(t), "r", 10*time.Second); !errors.Is(err, store.ErrClaimLost) {
		t.Errorf("Invoke = %v, want ErrClaimLost", err)
	}
}

func TestHeldClaimIsWaitedFor(t *testing.T) {
	for _, tc := range []struct {
		name     string
		lease    time.Duration // the holder's lease ends this long from now
		budget   time.Duration // the invocation's time
		wantHeld bool
	}{
		{"lease ends within the budget: wait for it", 300 * time.Millisecond, 30 * time.Second, false},
		{"lease ends past the budget: give up after HeldWait", time.Hour, 30 * time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			until := time.Now().Add(tc.lease)
			st := &fakeStore{claim: func(g store.GroupKey) (store.Claim, error) {
				if time.Now().Before(until) {
					return store.Claim{Group: g, Outcome: store.HeldByOther, LeaseUntil: until}, nil
				}
				return store.Claim{Group: g, Outcome: store.Claimed, Token: "t"}, nil
			}}
			pub := publishFunc(func(alert.Message) (string, error) { return "m-4", nil })
			err := invokeWith(fakeHandler(st, pub, &syncBuffer{}, 50*time.Millisecond), oneGroup(t), "r", tc.budget)
			if got := errors.Is(err, handler.ErrClaimHeld); got != tc.wantHeld {
				t.Errorf("Invoke = %v, want ErrClaimHeld %v", err, tc.wantHeld)
			}
		})
	}
}

// admitFunc is a handler.FloodGuard.
type admitFunc func(g store.GroupKey) store.Admission

func (f admitFunc) Admit(_ context.Context, g store.GroupKey, _, _ string, _ int) (store.Admission, error) {
	return f(g), nil
}

// TestFloodFolding: groups the flood guard refuses get no alert of their own; one
// "many users" alert lists them, claimed under the log group's many-users key, and a
// delivery whose groups are all admitted sends none.
func TestFloodFolding(t *testing.T) {
	var lines []string
	for _, u := range []string{"u1", "u2", "u3", "u4"} {
		lines = append(lines, auditLine(t, u, "203.0.113.9", time.Minute, nil))
	}
	var claimed []string
	var published []alert.Message
	st := &fakeStore{claim: func(g store.GroupKey) (store.Claim, error) {
		claimed = append(claimed, g.Group)
		return store.Claim{Group: g, Outcome: store.Claimed, Token: "t", LeaseUntil: time.Now().Add(time.Minute)}, nil
	}}
	pub := publishFunc(func(m alert.Message) (string, error) { published = append(published, m); return "id", nil })
	admitted := 0
	h := handler.New(handler.Options{
		Processor: pipeline.New(pipeline.Options{Rule: detect.UnauthorizedAccess, Mode: detect.ModeSeed, GroupBy: aggregate.GroupByUser}),
		Store:     st, Publisher: pub, Rule: detect.UnauthorizedAccess, ClaimLease: time.Minute,
		Logger: slog.New(slog.DiscardHandler), MaxGroups: 2,
		Flood: admitFunc(func(g store.GroupKey) store.Admission {
			admitted++
			return store.Admission{Admitted: admitted <= 2, Groups: admitted}
		}),
	})
	if err := invokeWith(h, delivery(t, lines, nil), "fold", time.Minute); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, m := range published {
		kinds = append(kinds, m.MessageAttributes["alertKind"].StringValue)
	}
	if len(published) != 3 || strings.Count(strings.Join(kinds, ","), "first") != 2 || !strings.Contains(strings.Join(kinds, ","), "flood") {
		t.Fatalf("published kinds %v, want two first alerts and one flood", kinds)
	}
	flood := published[len(published)-1]
	if !strings.HasPrefix(claimed[len(claimed)-1], "many-users#") || !strings.Contains(flood.Subject, "many users") {
		t.Errorf("flood alert claimed as %q, subject %q", claimed[len(claimed)-1], flood.Subject)
	}
	_, folded, _ := strings.Cut(flood.Message, "folded here, most attempts first:")
	folded, _, _ = strings.Cut(folded, `\n`)
	if n := strings.Count(folded, " (1)"); n != 2 {
		t.Errorf("the many-users alert lists %d folded users, want the 2 refused: %q", n, folded)
	}
}
