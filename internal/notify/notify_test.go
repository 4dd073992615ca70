package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/smithy-go"

	"github.com/eks-unauthorized-access/detector/infra/local"
	"github.com/eks-unauthorized-access/detector/infra/local/localtest"
	"github.com/eks-unauthorized-access/detector/internal/alert"
	"github.com/eks-unauthorized-access/detector/internal/notify"
)

// message is a complete minimal alert, built by hand.
func message(t *testing.T) alert.Message {
	t.Helper()
	body, err := json.Marshal(map[string]string{
		"default": "Unauthorized access to Kubernetes from user alice",
		"email":   "Unauthorized access to Kubernetes from user alice\n\n3 forbidden create requests",
		"sqs":     `{"version":"1","user":"alice","count":3}`,
	})
	if err != nil {
		t.Fatal(err)
	}
	return alert.Message{
		Subject:          "Kubernetes Unauthorized Access: alice",
		Message:          string(body),
		MessageStructure: "json",
		MessageAttributes: map[string]alert.Attribute{
			"rule":      {DataType: "String", StringValue: "kubernetes-unauthorized-access"},
			"riskScore": {DataType: "Number", StringValue: "49"},
		},
	}
}

func TestPublish(t *testing.T) {
	g := localtest.MotoForTest(t, "alerts")
	ctx := context.Background()

	t.Run("delivers subject, per-protocol message and attributes", func(t *testing.T) {
		p := notify.New(g.SNSClient(), g.TopicARN("alerts"))
		id, err := p.Publish(ctx, message(t))
		if err != nil {
			t.Fatal(err)
		}
		if id == "" {
			t.Error("empty message id")
		}
		got, err := g.Drain(ctx, "alerts")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 {
			t.Fatalf("queue holds %d notifications, want 1", len(got))
		}
		n := got[0]
		if n.Subject != "Kubernetes Unauthorized Access: alice" {
			t.Errorf("Subject = %q", n.Subject)
		}
		if n.Message != `{"version":"1","user":"alice","count":3}` {
			t.Errorf("Message = %q, want the sqs entry", n.Message)
		}
		if a := n.MessageAttributes["riskScore"]; a.Type != "Number" || a.Value != "49" {
			t.Errorf("riskScore attribute = %+v", a)
		}
		if a := n.MessageAttributes["rule"]; a.Type != "String" || a.Value != "kubernetes-unauthorized-access" {
			t.Errorf("rule attribute = %+v", a)
		}
	})

	t.Run("missing topic is not retryable", func(t *testing.T) {
		p := notify.New(g.SNSClient(), g.TopicARN("no-such-topic"))
		_, err := p.Publish(ctx, message(t))
		if err == nil {
			t.Fatal("publish to a missing topic succeeded")
		}
		if notify.Retryable(err) {
			t.Errorf("Retryable(%v) = true", err)
		}
	})

	t.Run("unreachable endpoint is retryable", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close() // nothing listens there any more
		client := sns.NewFromConfig(local.AWSConfig(), func(o *sns.Options) {
			o.BaseEndpoint = aws.String("http://" + addr)
			o.RetryMaxAttempts = 1
		})
		_, err = notify.New(client, g.TopicARN("alerts")).Publish(ctx, message(t))
		if err == nil {
			t.Fatal("publish to a closed port succeeded")
		}
		if !notify.Retryable(err) {
			t.Errorf("Retryable(%v) = false", err)
		}
	})
}

func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"throttling", &smithy.GenericAPIError{Code: "Throttling"}, true},
		{"server fault", &smithy.GenericAPIError{Code: "Whatever", Fault: smithy.FaultServer}, true},
		{"not found", &smithy.GenericAPIError{Code: "NotFound", Fault: smithy.FaultClient}, false},
		{"authorization", &smithy.GenericAPIError{Code: "AuthorizationError", Fault: smithy.FaultClient}, false},
		{"canceled", context.Canceled, false},
		{"deadline", context.DeadlineExceeded, true},
		{"network", errors.New("dial tcp: connection refused"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := notify.Retryable(&notify.Error{Retryable: notify.Classify(tc.err), Err: tc.err}); got != tc.want {
				t.Errorf("Retryable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
	if notify.Retryable(errors.New("plain")) {
		t.Error("Retryable of a non-publish error = true")
	}
}
