// Package notify publishes rendered alerts to an SNS topic.
//
// Publish sends exactly the alert.Message it is given (Subject, Message, MessageStructure,
// MessageAttributes) and classifies failures twice: whether a later attempt may succeed
// (throttling, server-side errors and network failures may; a missing topic or a denied
// permission needs an operator), and whether SNS may have accepted the message anyway (a
// server error, a connection lost after sending, a deadline). Publish is not idempotent,
// so it is repeated only when SNS certainly did not accept it.
package notify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/smithy-go"

	"github.com/eks-unauthorized-access/detector/internal/alert"
)

// Publisher publishes alerts to one SNS topic.
type Publisher struct {
	client   *sns.Client
	topicARN string
}

// New returns a Publisher for the topic topicARN.
func New(client *sns.Client, topicARN string) *Publisher {
	return &Publisher{client: client, topicARN: topicARN}
}

// Publish publishes m and returns the SNS message id. Errors are *Error values.
func (p *Publisher) Publish(ctx context.Context, m alert.Message) (string, error) {
	in := &sns.PublishInput{
		TopicArn: aws.String(p.topicARN),
		Message:  aws.String(m.Message),
	}
	if m.Subject != "" {
		in.Subject = aws.String(m.Subject)
	}
	if m.MessageStructure != "" {
		in.MessageStructure = aws.String(m.MessageStructure)
	}
	if len(m.MessageAttributes) > 0 {
		in.MessageAttributes = make(map[string]types.MessageAttributeValue, len(m.MessageAttributes))
		for name, a := range m.MessageAttributes {
			in.MessageAttributes[name] = types.MessageAttributeValue{
				DataType:    aws.String(a.DataType),
				StringValue: aws.String(a.StringValue),
			}
		}
	}
	// Publish is not idempotent: the SDK's own retries are turned off, since it would
	// repeat a request that SNS may have accepted (a 5xx after accepting, a reset
	// connection). Only a publish that certainly did not reach SNS is tried again here.
	return SendOnce(ctx, "publish to "+p.topicARN, func(ctx context.Context) (string, error) {
		out, err := p.client.Publish(ctx, in, func(o *sns.Options) { o.Retryer = aws.NopRetryer{} })
		if err != nil {
			return "", err
		}
		return aws.ToString(out.MessageId), nil
	})
}

// SendOnce calls send, a request that is not idempotent made with the SDK's retries
// turned off, and calls it again (up to maxAttempts, backing off) only while it certainly
// did not reach the service. It returns send's id, or an *Error saying what it did with
// the failure; what names the request in the error.
func SendOnce(ctx context.Context, what string, send func(context.Context) (string, error)) (string, error) {
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		id, err := send(ctx)
		if err == nil {
			return id, nil
		}
		perr := &Error{Retryable: Classify(err), MaybeAccepted: MaybeAccepted(err), Err: fmt.Errorf("%s: %w", what, err)}
		if perr.MaybeAccepted || !perr.Retryable || attempt == maxAttempts {
			return "", perr
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", perr
		case <-t.C:
		}
		wait *= 4
	}
}

// ErrRefused is wrapped by the error of a request that the service answered with success
// but whose item it did not accept (an EventBridge entry or a Security Hub finding in the
// failed part of a batch answer): certainly not applied, so never MaybeAccepted.
var ErrRefused = errors.New("refused by the service")

// Refused returns the error of an item that the service answered but refused with code
// and message: it wraps ErrRefused and a smithy.APIError of that code, so that Classify
// retries it when the code is transient.
func Refused(what, code, message string) error {
	return fmt.Errorf("%s: %w: %w", what, ErrRefused, &smithy.GenericAPIError{Code: code, Message: message})
}

// maxAttempts bounds the publishes of one alert that certainly did not reach SNS.
const maxAttempts = 3

// Error is a failed publish.
type Error struct {
	// Retryable says whether a later attempt may succeed without operator action.
	Retryable bool
	// MaybeAccepted says that SNS may have accepted the message although the call failed
	// (a server error, a connection lost after sending, a deadline): publishing again may
	// duplicate the alert.
	MaybeAccepted bool
	Err           error
}

// PossiblyPublished reports whether the message may have reached SNS (see MaybeAccepted);
// the handler uses it through an interface, to keep such a claim instead of releasing it.
func (e *Error) PossiblyPublished() bool { return e.MaybeAccepted }

// MaybeAccepted reports whether SNS may have accepted a message whose Publish returned
// err. Only an answer of SNS itself below 500 (throttled, denied, not found, invalid), or a
// failure to connect at all, proves that it did not.
func MaybeAccepted(err error) bool {
	if errors.Is(err, ErrRefused) {
		return false
	}
	var resp *awshttp.ResponseError
	if errors.As(err, &resp) && resp.HTTPStatusCode() != 0 { // 0: no answer at all
		return resp.HTTPStatusCode() >= 500
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return false
	}
	return true
}

// Error returns the message of the underlying error.
func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether err is a publish failure that a later attempt may overcome.
func Retryable(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Retryable
	}
	return false
}

// retryableCodes are SNS and generic AWS error codes of transient conditions.
var retryableCodes = map[string]bool{
	"Throttling":              true,
	"ThrottlingException":     true,
	"Throttled":               true,
	"KMSThrottling":           true,
	"RequestLimitExceeded":    true,
	"InternalError":           true,
	"InternalFailure":         true,
	"ServiceUnavailable":      true,
	"RequestTimeout":          true,
	"RequestTimeoutException": true,
}

// Classify reports whether an error returned by the SNS client is worth retrying.
func Classify(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var (
		throttled    *types.ThrottledException
		kmsThrottled *types.KMSThrottlingException
		internal     *types.InternalErrorException
	)
	if errors.As(err, &throttled) || errors.As(err, &kmsThrottled) || errors.As(err, &internal) {
		return true
	}
	var resp *awshttp.ResponseError
	if errors.As(err, &resp) && resp.HTTPStatusCode() >= 500 {
		return true
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		return retryableCodes[api.ErrorCode()] || api.ErrorFault() == smithy.FaultServer
	}
	// No answer from the service at all: connection refused, reset, DNS failure.
	return true
}
