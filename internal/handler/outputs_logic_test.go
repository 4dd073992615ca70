package handler_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
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

// fakeOutput is a handler.Output whose Send returns err and counts its calls.
type fakeOutput struct {
	name  string
	kinds []alert.Kind
	err   error
	mu    sync.Mutex
	sent  []alert.Kind
}

func (o *fakeOutput) Name() string { return o.name }
func (o *fakeOutput) Wants(k alert.Kind) bool {
	for _, w := range o.kinds {
		if w == k {
			return true
		}
	}
	return false
}
func (o *fakeOutput) Send(_ context.Context, m alert.Message) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.sent = append(o.sent, alert.KindOf(m))
	return "id-" + o.name, o.err
}

// outputClaimsFunc is a handler.OutputClaims.
type outputClaimsFunc func(parent store.Claim, output string) (store.Claim, error)

func (f outputClaimsFunc) ClaimOutput(_ context.Context, parent store.Claim, output string, _ time.Duration) (store.Claim, error) {
	return f(parent, output)
}

// TestOutputsAfterPublish runs one delivery with two outputs against fakes: the outputs
// are sent after the SNS alert, each under its own claim; one whose answer is ambiguous
// keeps its claim as unknown and fails the delivery, without touching the SNS alert's
// claim or the other output's.
func TestOutputsAfterPublish(t *testing.T) {
	var mu sync.Mutex
	var order []string
	states := map[string]string{} // claim token → final state
	set := func(c store.Claim, state string) error {
		mu.Lock()
		defer mu.Unlock()
		states[c.Token] = state
		return nil
	}
	st := &fakeStore{
		claim: func(g store.GroupKey) (store.Claim, error) {
			return store.Claim{Group: g, Outcome: store.Claimed, Token: "sns"}, nil
		},
		markSent:    func(c store.Claim, _ string) error { return set(c, "sent") },
		release:     func(c store.Claim) error { return set(c, "released") },
		markUnknown: func(c store.Claim) error { return set(c, "unknown") },
	}
	pub := publishFunc(func(alert.Message) (string, error) {
		mu.Lock()
		order = append(order, "sns")
		mu.Unlock()
		return "m-1", nil
	})
	good := &fakeOutput{name: "good", kinds: []alert.Kind{alert.KindFirst}}
	ambiguous := &fakeOutput{name: "ambiguous", kinds: []alert.Kind{alert.KindFirst},
		err: &notify.Error{Retryable: true, MaybeAccepted: true, Err: errors.New("HTTP 500 after sending")}}
	reportsOnly := &fakeOutput{name: "reports", kinds: []alert.Kind{alert.KindReport}}
	claims := outputClaimsFunc(func(parent store.Claim, output string) (store.Claim, error) {
		mu.Lock()
		defer mu.Unlock()
		if states[parent.Token] != "sent" {
			t.Errorf("output %s claimed before the SNS alert was recorded sent", output)
		}
		order = append(order, output)
		return store.Claim{Group: parent.Group, Outcome: store.Claimed, Token: "out-" + output}, nil
	})
	h := handler.New(handler.Options{
		Processor: pipeline.New(pipeline.Options{Rule: detect.UnauthorizedAccess, Mode: detect.ModeSeed, GroupBy: aggregate.GroupByUser}),
		Store:     st, Publisher: pub, Rule: detect.UnauthorizedAccess, ClaimLease: time.Minute,
		Outputs: []handler.Output{good, ambiguous, reportsOnly}, OutputClaims: claims,
		Logger: handler.NewLogger(&syncBuffer{}, slog.LevelInfo),
	})
	err := invokeWith(h, oneGroup(t), "r", 10*time.Second)
	var pe *notify.Error
	if !errors.As(err, &pe) || !pe.MaybeAccepted {
		t.Fatalf("error %v, want the ambiguous output's", err)
	}
	if want := "[sns good ambiguous]"; fmt.Sprint(order) != want {
		t.Errorf("order %v, want %s", order, want)
	}
	for token, want := range map[string]string{"sns": "sent", "out-good": "sent", "out-ambiguous": "unknown"} {
		if states[token] != want {
			t.Errorf("claim %s ended %q, want %q", token, states[token], want)
		}
	}
	if len(good.sent) != 1 || good.sent[0] != alert.KindFirst || len(reportsOnly.sent) != 0 {
		t.Errorf("sent: good %v, reports-only %v", good.sent, reportsOnly.sent)
	}
}
