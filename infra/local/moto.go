package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/securityhub"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// MotoInstall is the command that installs moto's server on a user's machine.
const MotoInstall = "pip install 'moto[server]'"

// MotoServices are the AWS services, by the name the SDK gives their endpoint variable
// (AWS_ENDPOINT_URL_<name>), that a Moto serves and that Environment points at it.
var MotoServices = []string{
	"SNS", "SQS", "SSM", "KMS", "KINESIS",
	"CLOUDWATCH", "CLOUDWATCH_LOGS", "EVENTBRIDGE", "SECURITYHUB", "IAM", "STS",
}

// Moto is a running moto_server: one process serving SNS, SQS (JSON protocol), SSM, KMS,
// Kinesis, CloudWatch, EventBridge, Security Hub and more on one port, in memory. Every
// topic it was started with has one SQS queue subscribed, named QueueName(topic), with raw
// message delivery off: a queue message is the SNS notification envelope (Type,
// MessageId, Subject, Message, MessageAttributes) that an SQS subscriber of a real topic
// receives, so tests can check the subject and attributes as well as the message.
type Moto struct {
	// Endpoint is the base URL; Environment exports it as AWS_ENDPOINT_URL_SNS,
	// AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL_SSM, ... (see MotoServices).
	Endpoint string
	proc     *process
	sqs      *sqs.Client // for Receive, Delete and Drain

	mu     sync.Mutex
	queues map[string]string // topic name → URL of its subscribed queue
}

// MotoBinary returns the path of moto_server on the PATH, or an error wrapping
// ErrToolMissing that names the install command.
func MotoBinary() (string, error) {
	p, err := exec.LookPath("moto_server")
	if err != nil {
		return "", fmt.Errorf("moto_server not found on PATH (install it with: %s): %w", MotoInstall, ErrToolMissing)
	}
	return p, nil
}

// QueueName is the name of the queue subscribed to topic.
func QueueName(topic string) string { return topic + "-subscriber" }

// StartMoto starts moto_server on a free loopback port, creates the given topics, each
// with a subscribed queue, and waits until it answers.
func StartMoto(ctx context.Context, topics ...string) (*Moto, error) {
	bin, err := MotoBinary()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	// MOTO_ACCOUNT_ID fixes the account in every ARN and queue URL, whatever the
	// credentials of a request; INITIAL_NO_AUTH_ACTION_COUNT, if the caller has it set,
	// would turn on moto's IAM checks, which only a test asks for (EnforceIAM).
	env := append(os.Environ(), "MOTO_ACCOUNT_ID="+AccountID, "INITIAL_NO_AUTH_ACTION_COUNT=inf")
	// moto keeps everything in memory; it writes nothing to its working directory.
	proc, err := startProcessEnv(bin, os.TempDir(), env, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	if err != nil {
		return nil, fmt.Errorf("start moto_server: %w", err)
	}
	m := &Moto{Endpoint: endpoint(port), proc: proc, queues: map[string]string{}}
	m.sqs = m.SQSClient()
	client := m.SNSClient(func(o *sns.Options) { o.RetryMaxAttempts = 1 })
	err = proc.waitReady(ctx, func(ctx context.Context) error {
		_, err := client.ListTopics(ctx, &sns.ListTopicsInput{})
		return err
	})
	if err != nil {
		m.Stop()
		return nil, fmt.Errorf("start moto_server: %w", err)
	}
	for _, t := range topics {
		if err := m.CreateTopic(ctx, t); err != nil {
			m.Stop()
			return nil, fmt.Errorf("start moto_server: %w", err)
		}
	}
	return m, nil
}

// CreateTopic creates topic with an SQS queue, QueueName(topic), subscribed to it (raw
// message delivery off). Creating an existing topic again is harmless.
func (m *Moto) CreateTopic(ctx context.Context, topic string) error {
	t, err := m.SNSClient().CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(topic)})
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	q, err := m.SQSClient().CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(QueueName(topic))})
	if err != nil {
		return fmt.Errorf("create queue %s: %w", QueueName(topic), err)
	}
	attrs, err := m.SQSClient().GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       q.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return fmt.Errorf("read the ARN of queue %s: %w", QueueName(topic), err)
	}
	_, err = m.SNSClient().Subscribe(ctx, &sns.SubscribeInput{
		TopicArn: t.TopicArn,
		Protocol: aws.String("sqs"),
		Endpoint: aws.String(attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]),
	})
	if err != nil {
		return fmt.Errorf("subscribe queue %s to topic %s: %w", QueueName(topic), topic, err)
	}
	m.mu.Lock()
	m.queues[topic] = aws.ToString(q.QueueUrl)
	m.mu.Unlock()
	return nil
}

// TopicARN returns the ARN moto gives topic.
func (m *Moto) TopicARN(topic string) string {
	return "arn:aws:sns:" + Region + ":" + AccountID + ":" + topic
}

// QueueURL returns the URL of the queue subscribed to topic.
func (m *Moto) QueueURL(topic string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if u, ok := m.queues[topic]; ok {
		return u
	}
	return m.Endpoint + "/" + AccountID + "/" + QueueName(topic)
}

// SNSClient returns an SNS client for this instance, with dummy credentials.
func (m *Moto) SNSClient(optFns ...func(*sns.Options)) *sns.Client {
	return sns.NewFromConfig(AWSConfig(), append([]func(*sns.Options){func(o *sns.Options) {
		o.BaseEndpoint = aws.String(m.Endpoint)
	}}, optFns...)...)
}

// SQSClient returns an SQS client for this instance, with dummy credentials.
func (m *Moto) SQSClient(optFns ...func(*sqs.Options)) *sqs.Client {
	return sqs.NewFromConfig(AWSConfig(), append([]func(*sqs.Options){func(o *sqs.Options) {
		o.BaseEndpoint = aws.String(m.Endpoint)
	}}, optFns...)...)
}

// SSMClient returns a Systems Manager client for this instance, with dummy credentials.
func (m *Moto) SSMClient(optFns ...func(*ssm.Options)) *ssm.Client {
	return ssm.NewFromConfig(AWSConfig(), append([]func(*ssm.Options){func(o *ssm.Options) {
		o.BaseEndpoint = aws.String(m.Endpoint)
	}}, optFns...)...)
}

// Stop kills moto_server. It is safe to call more than once.
func (m *Moto) Stop() {
	m.proc.stop()
}

// QueueMessage is one message received from an SQS queue.
type QueueMessage struct {
	MessageID     string
	ReceiptHandle string
	Body          string
}

// Receive receives up to 10 visible messages from the queue subscribed to topic, without
// waiting. Received messages are hidden for the queue's visibility timeout unless deleted.
func (m *Moto) Receive(ctx context.Context, topic string) ([]QueueMessage, error) {
	out, err := m.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:            aws.String(m.QueueURL(topic)),
		MaxNumberOfMessages: 10,
		WaitTimeSeconds:     0,
	})
	if err != nil {
		return nil, fmt.Errorf("receive from %s: %w", QueueName(topic), err)
	}
	msgs := make([]QueueMessage, 0, len(out.Messages))
	for _, msg := range out.Messages {
		msgs = append(msgs, QueueMessage{
			MessageID:     aws.ToString(msg.MessageId),
			ReceiptHandle: aws.ToString(msg.ReceiptHandle),
			Body:          aws.ToString(msg.Body),
		})
	}
	return msgs, nil
}

// Delete deletes a received message.
func (m *Moto) Delete(ctx context.Context, topic, receiptHandle string) error {
	_, err := m.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{
		QueueUrl:      aws.String(m.QueueURL(topic)),
		ReceiptHandle: aws.String(receiptHandle),
	})
	if err != nil {
		return fmt.Errorf("delete from %s: %w", QueueName(topic), err)
	}
	return nil
}

// Drain receives and deletes every message currently in the queue subscribed to topic
// and returns their SNS envelopes, oldest first.
func (m *Moto) Drain(ctx context.Context, topic string) ([]Notification, error) {
	var all []Notification
	for {
		msgs, err := m.Receive(ctx, topic)
		if err != nil {
			return nil, err
		}
		if len(msgs) == 0 {
			return all, nil
		}
		for _, msg := range msgs {
			var n Notification
			if err := json.Unmarshal([]byte(msg.Body), &n); err != nil {
				return nil, fmt.Errorf("drain %s: decode SNS envelope: %w", QueueName(topic), err)
			}
			all = append(all, n)
			if err := m.Delete(ctx, topic, msg.ReceiptHandle); err != nil {
				return nil, err
			}
		}
	}
}

// Notification is the SNS envelope an SQS subscriber receives when raw message delivery
// is off. With MessageStructure=json, Message is the "sqs" entry (else "default").
type Notification struct {
	Type              string                           `json:"Type"`
	MessageID         string                           `json:"MessageId"`
	TopicARN          string                           `json:"TopicArn"`
	Subject           string                           `json:"Subject"`
	Message           string                           `json:"Message"`
	MessageAttributes map[string]NotificationAttribute `json:"MessageAttributes"`
}

// NotificationAttribute is a message attribute as shown in the SNS envelope.
type NotificationAttribute struct {
	Type  string `json:"Type"`
	Value string `json:"Value"`
}

// EnforceIAM creates an IAM user whose only permissions are the identity-based policy
// document policy, turns on moto's IAM checks and returns the user's credentials. From
// then on every request to this instance must be signed by a known access key and be
// allowed by its policies: the dummy credentials of AWSConfig (and so every client this
// type returns) are refused. It lets a test show what the function does when AWS denies
// it something.
func (m *Moto) EnforceIAM(ctx context.Context, user, policy string) (aws.Credentials, error) {
	client := iam.NewFromConfig(AWSConfig(), func(o *iam.Options) { o.BaseEndpoint = aws.String(m.Endpoint) })
	if _, err := client.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(user)}); err != nil {
		return aws.Credentials{}, fmt.Errorf("create IAM user %s: %w", user, err)
	}
	_, err := client.PutUserPolicy(ctx, &iam.PutUserPolicyInput{
		UserName: aws.String(user), PolicyName: aws.String(user), PolicyDocument: aws.String(policy),
	})
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("attach the policy of IAM user %s: %w", user, err)
	}
	key, err := client.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(user)})
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("create an access key for IAM user %s: %w", user, err)
	}
	if key.AccessKey == nil || aws.ToString(key.AccessKey.AccessKeyId) == "" || aws.ToString(key.AccessKey.SecretAccessKey) == "" {
		return aws.Credentials{}, fmt.Errorf("create an access key for IAM user %s: %w", user, errNoAccessKey)
	}
	// moto checks every request once as many requests as this number have been served
	// since the call: 0 turns the checks on from the next request.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.Endpoint+"/moto-api/reset-auth", strings.NewReader("0"))
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("turn on IAM checks: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("turn on IAM checks: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return aws.Credentials{}, fmt.Errorf("turn on IAM checks: HTTP %s", resp.Status)
	}
	return aws.Credentials{
		AccessKeyID:     aws.ToString(key.AccessKey.AccessKeyId),
		SecretAccessKey: aws.ToString(key.AccessKey.SecretAccessKey),
	}, nil
}

// errNoAccessKey is returned when moto creates an access key without an id or secret.
var errNoAccessKey = errors.New("no access key in the answer")

// SecurityHubClient returns a Security Hub client for this instance, with dummy credentials.
func (m *Moto) SecurityHubClient(optFns ...func(*securityhub.Options)) *securityhub.Client {
	return securityhub.NewFromConfig(AWSConfig(), append([]func(*securityhub.Options){func(o *securityhub.Options) {
		o.BaseEndpoint = aws.String(m.Endpoint)
	}}, optFns...)...)
}

// EventBridgeClient returns an EventBridge client for this instance, with dummy credentials.
func (m *Moto) EventBridgeClient(optFns ...func(*eventbridge.Options)) *eventbridge.Client {
	return eventbridge.NewFromConfig(AWSConfig(), append([]func(*eventbridge.Options){func(o *eventbridge.Options) {
		o.BaseEndpoint = aws.String(m.Endpoint)
	}}, optFns...)...)
}

// RouteEvents creates an EventBridge rule named rule on bus ("" for the default bus; a
// named bus is created when missing) with the event pattern pattern, delivering to a new
// SQS queue QueueName(rule): DrainEvents reads what the rule matched.
func (m *Moto) RouteEvents(ctx context.Context, bus, rule, pattern string) error {
	eb := m.EventBridgeClient()
	if bus != "" && bus != "default" {
		if _, err := eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String(bus)}); err != nil {
			var exists *ebtypes.ResourceAlreadyExistsException
			if !errors.As(err, &exists) {
				return fmt.Errorf("create event bus %s: %w", bus, err)
			}
		}
	}
	q, err := m.SQSClient().CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(QueueName(rule))})
	if err != nil {
		return fmt.Errorf("create queue %s: %w", QueueName(rule), err)
	}
	in := &eventbridge.PutRuleInput{Name: aws.String(rule), EventPattern: aws.String(pattern)}
	if bus != "" {
		in.EventBusName = aws.String(bus)
	}
	if _, err := eb.PutRule(ctx, in); err != nil {
		return fmt.Errorf("create rule %s: %w", rule, err)
	}
	target := &eventbridge.PutTargetsInput{Rule: aws.String(rule), Targets: []ebtypes.Target{{
		Id: aws.String("queue"), Arn: aws.String("arn:aws:sqs:" + Region + ":" + AccountID + ":" + QueueName(rule)),
	}}}
	if bus != "" {
		target.EventBusName = aws.String(bus)
	}
	if _, err := eb.PutTargets(ctx, target); err != nil {
		return fmt.Errorf("add the queue of rule %s: %w", rule, err)
	}
	m.mu.Lock()
	m.queues[rule] = aws.ToString(q.QueueUrl)
	m.mu.Unlock()
	return nil
}

// DrainEvents receives and deletes every event the rule made by RouteEvents delivered so
// far, oldest first.
func (m *Moto) DrainEvents(ctx context.Context, rule string) ([]json.RawMessage, error) {
	var all []json.RawMessage
	for {
		msgs, err := m.Receive(ctx, rule)
		if err != nil {
			return nil, err
		}
		if len(msgs) == 0 {
			return all, nil
		}
		for _, msg := range msgs {
			all = append(all, json.RawMessage(msg.Body))
			if err := m.Delete(ctx, rule, msg.ReceiptHandle); err != nil {
				return nil, err
			}
		}
	}
}
