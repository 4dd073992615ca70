package local_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/eks-unauthorized-access/detector/infra/local"
	"github.com/eks-unauthorized-access/detector/infra/local/localtest"
)

func TestServices(t *testing.T) {
	ctx := context.Background()
	db := localtest.DynamoDBForTest(t)
	if err := db.CreateTable(ctx, "detector"); err != nil {
		t.Fatal(err)
	}
	ttl, err := db.Client().DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String("detector")})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(ttl.TimeToLiveDescription.AttributeName); got != "expiresAt" {
		t.Errorf("TTL attribute = %q, want expiresAt", got)
	}

	m := localtest.MotoForTest(t, "alerts")
	// The function publishes with MessageStructure=json and attributes: an SQS subscriber
	// receives the "sqs" entry in the envelope, with subject and attributes.
	if _, err := m.SNSClient().Publish(ctx, &sns.PublishInput{
		TopicArn:         aws.String(m.TopicARN("alerts")),
		Subject:          aws.String("hello"),
		Message:          aws.String(`{"default":"plain","sqs":"world"}`),
		MessageStructure: aws.String("json"),
		MessageAttributes: map[string]snstypes.MessageAttributeValue{
			"user": {DataType: aws.String("String"), StringValue: aws.String("alice")},
		},
	}); err != nil {
		t.Fatal(err)
	}
	got, err := m.Drain(ctx, "alerts")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Type != "Notification" || got[0].Subject != "hello" || got[0].Message != "world" ||
		got[0].TopicARN != m.TopicARN("alerts") || got[0].MessageID == "" {
		t.Fatalf("drained %+v, want one notification hello/world from %s", got, m.TopicARN("alerts"))
	}
	if a := got[0].MessageAttributes["user"]; a.Type != "String" || a.Value != "alice" {
		t.Errorf("user attribute = %+v, want String alice", a)
	}
	if again, err := m.Drain(ctx, "alerts"); err != nil || len(again) != 0 {
		t.Errorf("second drain = %v, %v; want empty", again, err)
	}

	// Stop ends the process: the endpoint no longer answers.
	m.Stop()
	m.Stop() // idempotent
	if _, err := m.Receive(ctx, "alerts"); err == nil || !strings.Contains(err.Error(), "receive") {
		t.Errorf("Receive after Stop = %v, want an error", err)
	}
}

// TestEnforceIAM checks that a Moto with IAM checks on allows what the user's policy
// allows and denies the rest, SecureString decryption included.
func TestEnforceIAM(t *testing.T) {
	ctx := context.Background()
	m := localtest.MotoForTest(t)
	if _, err := m.SSMClient().PutParameter(ctx, &ssm.PutParameterInput{
		Name: aws.String("/secret"), Value: aws.String("yes"), Type: ssmtypes.ParameterTypeSecureString,
	}); err != nil {
		t.Fatal(err)
	}
	// moto checks actions, not resources: a policy can allow or deny an action, but a
	// statement scoped to one parameter ARN is not told apart from "*".
	creds, err := m.EnforceIAM(ctx, "reader", `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"ssm:GetParameter","Resource":"*"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	reader := m.SSMClient(func(o *ssm.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, "")
		o.RetryMaxAttempts = 1
	})
	out, err := reader.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/secret"), WithDecryption: aws.Bool(true)})
	if err != nil {
		t.Fatalf("GetParameter(/secret) as reader: %v", err)
	}
	if got := aws.ToString(out.Parameter.Value); got != "yes" {
		t.Errorf("/secret = %q, want yes (decrypted)", got)
	}
	if _, err := reader.PutParameter(ctx, &ssm.PutParameterInput{
		Name: aws.String("/other"), Value: aws.String("x"), Type: ssmtypes.ParameterTypeString,
	}); err == nil {
		t.Error("PutParameter as reader succeeded; want access denied (not in its policy)")
	}
	if _, err := m.SSMClient(func(o *ssm.Options) { o.RetryMaxAttempts = 1 }).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/secret")}); err == nil {
		t.Error("GetParameter with the dummy credentials succeeded after EnforceIAM; want refused")
	}
}

func TestEnvironment(t *testing.T) {
	got := strings.Join(local.Environment("http://127.0.0.1:1", ""), " ")
	if !strings.Contains(got, "AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:1") || strings.Contains(got, "AWS_ENDPOINT_URL_SNS") {
		t.Errorf("Environment = %s", got)
	}
	env := local.Environment("", "http://127.0.0.1:2")
	for _, service := range []string{"SNS", "SQS", "SSM", "KMS", "KINESIS", "SECURITYHUB", "EVENTBRIDGE"} {
		if !slices.Contains(env, "AWS_ENDPOINT_URL_"+service+"=http://127.0.0.1:2") {
			t.Errorf("Environment has no endpoint for %s: %s", service, env)
		}
	}
	if slices.ContainsFunc(env, func(v string) bool { return strings.HasPrefix(v, "AWS_ENDPOINT_URL_DYNAMODB=") }) {
		t.Errorf("Environment points DynamoDB at moto: %s", env)
	}
}
