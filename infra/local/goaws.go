package local

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
)

// GoAWS is a running goaws serving SNS and SQS on one port. Every topic it was started
// with has one SQS queue subscribed, named QueueName(topic), with raw message delivery
// off: a queue message is the SNS notification envelope (Type, MessageId, Subject,
// Message, MessageAttributes) that an SQS subscriber of a real topic receives, so tests
// can check the subject and attributes as well as the message.
type GoAWS struct {
	// Endpoint is the base URL; export it as AWS_ENDPOINT_URL_SNS.
	Endpoint string
	proc     *process
	dir      string
	http     *http.Client
}

// GoAWSBinary returns the path of the goaws binary installed under .tools/bin.
func GoAWSBinary() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, ".tools", "bin", "cmd")
	if _, err := os.Stat(bin); err != nil {
		if p, lookErr := exec.LookPath("goaws"); lookErr == nil {
			return p, nil
		}
		return "", fmt.Errorf("goaws not found at %s (run infra/local/install.sh): %w", bin, ErrToolMissing)
	}
	return bin, nil
}

// QueueName is the name of the queue subscribed to topic.
func QueueName(topic string) string { return topic + "-subscriber" }

// StartGoAWS starts goaws on a free loopback port with the given topics, each with a
// subscribed queue, and waits until it answers.
func StartGoAWS(ctx context.Context, topics ...string) (*GoAWS, error) {
	bin, err := GoAWSBinary()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "local-goaws-*")
	if err != nil {
		return nil, fmt.Errorf("start goaws: %w", err)
	}
	conf := filepath.Join(dir, "goaws.yaml")
	if err := os.WriteFile(conf, []byte(goawsConfig(port, topics)), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start goaws: write config: %w", err)
	}
	proc, err := startProcess(bin, dir, "-config", conf, "Local")
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start goaws: %w", err)
	}
	g := &GoAWS{Endpoint: endpoint(port), proc: proc, dir: dir, http: &http.Client{}}
	err = proc.waitReady(ctx, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.Endpoint+"/health", nil)
		if err != nil {
			return err
		}
		resp, err := g.http.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("health: %s", resp.Status)
		}
		return nil
	})
	if err != nil {
		g.Stop()
		return nil, fmt.Errorf("start goaws: %w", err)
	}
	return g, nil
}

// goawsConfig renders goaws' YAML configuration. Topic names are restricted by the callers
// (tests) to [A-Za-z0-9_-], so no YAML quoting is needed.
func goawsConfig(port int, topics []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Local:\n  Host: 127.0.0.1\n  Port: %d\n  Region: %s\n  AccountId: \"%s\"\n", port, Region, AccountID)
	b.WriteString("  LogToFile: false\n  EnableDuplicates: false\n")
	b.WriteString("  QueueAttributeDefaults:\n    VisibilityTimeout: 30\n    ReceiveMessageWaitTimeSeconds: 0\n    MaximumMessageSize: 262144\n")
	b.WriteString("  Queues: []\n  Topics:\n")
	for _, t := range topics {
		fmt.Fprintf(&b, "    - Name: %s\n      Subscriptions:\n        - QueueName: %s\n          Raw: false\n", t, QueueName(t))
	}
	b.WriteString("  RandomLatency:\n    Min: 0\n    Max: 0\n")
	return b.String()
}

// TopicARN returns the ARN goaws gives topic.
func (g *GoAWS) TopicARN(topic string) string {
	return "arn:aws:sns:" + Region + ":" + AccountID + ":" + topic
}

// QueueURL returns the URL of the queue subscribed to topic.
func (g *GoAWS) QueueURL(topic string) string {
	return g.Endpoint + "/" + AccountID + "/" + QueueName(topic)
}

// SNSClient returns an SNS client for this instance, with dummy credentials.
func (g *GoAWS) SNSClient(optFns ...func(*sns.Options)) *sns.Client {
	return sns.NewFromConfig(AWSConfig(), append([]func(*sns.Options){func(o *sns.Options) {
		o.BaseEndpoint = aws.String(g.Endpoint)
	}}, optFns...)...)
}

// Stop kills goaws and removes its configuration. It is safe to call more than once.
func (g *GoAWS) Stop() {
	g.proc.stop()
	os.RemoveAll(g.dir)
}

// QueueMessage is one message received from an SQS queue.
type QueueMessage struct {
	MessageID     string `xml:"MessageId"`
	ReceiptHandle string `xml:"ReceiptHandle"`
	Body          string `xml:"Body"`
}

// Receive receives up to 10 visible messages from the queue subscribed to topic, without
// waiting, over the SQS query protocol (the only one goaws speaks). Received messages are
// hidden for the queue's visibility timeout unless deleted.
func (g *GoAWS) Receive(ctx context.Context, topic string) ([]QueueMessage, error) {
	var out struct {
		Messages []QueueMessage `xml:"ReceiveMessageResult>Message"`
	}
	err := g.sqs(ctx, url.Values{
		"Action":              {"ReceiveMessage"},
		"QueueUrl":            {g.QueueURL(topic)},
		"MaxNumberOfMessages": {"10"},
		"WaitTimeSeconds":     {"0"},
	}, &out)
	if err != nil {
		return nil, fmt.Errorf("receive from %s: %w", QueueName(topic), err)
	}
	return out.Messages, nil
}

// Delete deletes a received message.
func (g *GoAWS) Delete(ctx context.Context, topic, receiptHandle string) error {
	err := g.sqs(ctx, url.Values{
		"Action":        {"DeleteMessage"},
		"QueueUrl":      {g.QueueURL(topic)},
		"ReceiptHandle": {receiptHandle},
	}, nil)
	if err != nil {
		return fmt.Errorf("delete from %s: %w", QueueName(topic), err)
	}
	return nil
}

// Drain receives and deletes every message currently in the queue subscribed to topic
// and returns their SNS envelopes, oldest first.
func (g *GoAWS) Drain(ctx context.Context, topic string) ([]Notification, error) {
	var all []Notification
	for {
		msgs, err := g.Receive(ctx, topic)
		if err != nil {
			return nil, err
		}
		if len(msgs) == 0 {
			return all, nil
		}
		for _, m := range msgs {
			var n Notification
			if err := json.Unmarshal([]byte(m.Body), &n); err != nil {
				return nil, fmt.Errorf("drain %s: decode SNS envelope: %w", QueueName(topic), err)
			}
			all = append(all, n)
			if err := g.Delete(ctx, topic, m.ReceiptHandle); err != nil {
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

// sqs posts one query-protocol request and decodes the XML answer into out (if not nil).
func (g *GoAWS) sqs(ctx context.Context, form url.Values, out any) error {
	form.Set("Version", "2012-11-05")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.Endpoint+"/", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := g.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %s: %s", form.Get("Action"), strconv.Itoa(resp.StatusCode), body)
	}
	if out == nil {
		return nil
	}
	if err := xml.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%s: decode answer: %w", form.Get("Action"), err)
	}
	return nil
}
