package local_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/eks-unauthorized-access/detector/infra/local"
)

func TestServices(t *testing.T) {
	ctx := context.Background()
	db := local.DynamoDBForTest(t)
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

	g := local.GoAWSForTest(t, "alerts")
	if _, err := g.SNSClient().Publish(ctx, &sns.PublishInput{
		TopicArn: aws.String(g.TopicARN("alerts")),
		Subject:  aws.String("hello"),
		Message:  aws.String("world"),
	}); err != nil {
		t.Fatal(err)
	}
	got, err := g.Drain(ctx, "alerts")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Type != "Notification" || got[0].Subject != "hello" || got[0].Message != "world" {
		t.Errorf("drained %+v, want one notification hello/world", got)
	}
	if again, err := g.Drain(ctx, "alerts"); err != nil || len(again) != 0 {
		t.Errorf("second drain = %v, %v; want empty", again, err)
	}

	// Stop ends the process: the endpoint no longer answers.
	g.Stop()
	if _, err := g.Receive(ctx, "alerts"); err == nil || !strings.Contains(err.Error(), "receive") {
		t.Errorf("Receive after Stop = %v, want an error", err)
	}
}

func TestEnvironment(t *testing.T) {
	got := strings.Join(local.Environment("http://127.0.0.1:1", ""), " ")
	if !strings.Contains(got, "AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:1") || strings.Contains(got, "AWS_ENDPOINT_URL_SNS") {
		t.Errorf("Environment = %s", got)
	}
}
