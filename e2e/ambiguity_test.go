package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eks-unauthorized-access/detector/infra/local"
	"github.com/eks-unauthorized-access/detector/infra/local/localtest"
	"github.com/eks-unauthorized-access/detector/internal/alert"
)

// applyThen500 is a proxy in front of moto that forwards every request and, for the first
// n Publish requests, throws the answer away and answers 500 instead: SNS accepted the
// message, and the caller cannot know it.
func applyThen500(t *testing.T, target string, n int64) (*httptest.Server, *atomic.Int64) {
	var left atomic.Int64
	left.Store(n)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		out, err := http.NewRequestWithContext(r.Context(), r.Method, target+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		out.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		answer, _ := io.ReadAll(resp.Body)
		if bytes.Contains(body, []byte("Action=Publish")) && left.Add(-1) >= 0 {
			hits.Add(1)
			w.Header().Set("Content-Type", "text/xml")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code><Message>injected</Message></Error><RequestId>x</RequestId></ErrorResponse>`)
			return
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(answer)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// TestPublishAnswerLost runs the real bootstrap with a proxy between it and SNS that lets
// the first Publish through and answers 500: the invocation fails instead of publishing
// twice, and Lambda's retry publishes the lost group's alert again with the same id,
// flagged as a possible duplicate. No unflagged duplicate reaches the subscriber.
func TestPublishAnswerLost(t *testing.T) {
	var hits *atomic.Int64
	stack := localtest.StackForTest(t, local.StackOptions{
		Table: "e2e-ambiguous", Topic: "e2e-ambiguous",
		Prepare: func(_ context.Context, s *local.FunctionStack) ([]string, error) {
			var proxy *httptest.Server
			proxy, hits = applyThen500(t, s.Moto.Endpoint, 1)
			return []string{"AWS_ENDPOINT_URL_SNS=" + proxy.URL}, nil
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	event := readEvent(t, "cloudwatch-iam-user.json")

	_, err := stack.Emulator.Invoke(ctx, event)
	var fe *local.FunctionError
	if !errors.As(err, &fe) || !strings.Contains(fe.Message, "publish") {
		t.Fatalf("first delivery = %v; want a function error about the publish\n%s", err, stack.Emulator.Logs())
	}
	if hits.Load() != 1 {
		t.Fatalf("the fault was injected %d times, want 1", hits.Load())
	}
	first := drainAlerts(ctx, t, stack)
	invokeOK(ctx, t, stack, event)
	second := drainAlerts(ctx, t, stack)

	if len(first) != 2 {
		t.Fatalf("first delivery reached the subscriber with %d alerts, want 2 (one per window, one of them unanswered)", len(first))
	}
	if len(second) != 1 || !second[0].PossibleDuplicate {
		t.Fatalf("retry published %d alerts %+v, want 1 flagged as a possible duplicate", len(second), second)
	}
	if first[0].PossibleDuplicate || first[1].PossibleDuplicate || first[0].ID == first[1].ID {
		t.Errorf("first delivery: want two unflagged alerts with different ids, got %+v", first)
	}
	if second[0].ID != first[0].ID && second[0].ID != first[1].ID {
		t.Errorf("the flagged copy has id %s, not the id of either alert", second[0].ID)
	}
	// A third delivery finds both groups sent.
	invokeOK(ctx, t, stack, event)
	if more := drainAlerts(ctx, t, stack); len(more) != 0 {
		t.Errorf("third delivery published %d alerts, want 0", len(more))
	}
}

// drainAlerts reads the structured alerts on the topic's queue.
func drainAlerts(ctx context.Context, t *testing.T, stack *local.FunctionStack) []alert.Alert {
	t.Helper()
	notes, err := stack.Moto.Drain(ctx, stack.Topic)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]alert.Alert, 0, len(notes))
	for _, n := range notes {
		var a alert.Alert
		if err := json.Unmarshal([]byte(n.Message), &a); err != nil {
			t.Fatalf("not a structured alert: %v", err)
		}
		if n.MessageAttributes["alertKind"].Value != string(a.Kind) || n.MessageAttributes["alertId"].Value != a.ID {
			t.Errorf("message %q: attributes %+v disagree with the alert (%s, id %s)", n.Subject, n.MessageAttributes, a.Kind, a.ID)
		}
		out = append(out, a)
	}
	return out
}
