package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/eks-unauthorized-access/detector/infra/local"
	"github.com/eks-unauthorized-access/detector/infra/local/localtest"
	"github.com/eks-unauthorized-access/detector/internal/cwlogs"
)

// parameter is the SSM parameter the function reads its suppressions from in these tests.
const parameter = "/detector/suppressions"

// secretRule is a suppression whose text must never reach a log line: the user name of an
// allow-listed admin is the kind of thing a SecureString keeps out of sight.
const secretRule = `user == "alice-s3cr3t-admin"`

// TestSuppressionsParameter runs the real function with SUPPRESSIONS_PARAMETER set, its
// suppressions in moto's Parameter Store: a SecureString suppresses the user it names, and
// a parameter that is missing or that the function's credentials may not read stops the
// function at start-up with a message naming the parameter, never its value.
func TestSuppressionsParameter(t *testing.T) {
	localtest.MustHaveServices(t)
	root, err := local.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bootstrap, err := local.BuildBootstrap(context.Background(), root, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	event := deliveryNow(t, now, "alice-s3cr3t-admin", "mallory")
	put := func(typ ssmtypes.ParameterType, value string) func(context.Context, *local.FunctionStack) ([]string, error) {
		return func(ctx context.Context, s *local.FunctionStack) ([]string, error) {
			_, err := s.Moto.SSMClient().PutParameter(ctx, &ssm.PutParameterInput{
				Name: aws.String(parameter), Type: typ, Value: aws.String(value),
			})
			return nil, err
		}
	}
	env := []string{"SUPPRESSIONS_PARAMETER=" + parameter}

	t.Run("a SecureString suppression suppresses", func(t *testing.T) {
		t.Parallel()
		stack := localtest.StackForTest(t, local.StackOptions{
			Bootstrap: bootstrap, Table: "ssm-secure", Topic: "ssm-secure", Env: env,
			Prepare: put(ssmtypes.ParameterTypeSecureString, "# allow-listed admin\n"+secretRule+"\n"),
		})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		invokeOK(ctx, t, stack, event)
		notes, err := stack.Moto.Drain(ctx, stack.Topic)
		if err != nil {
			t.Fatal(err)
		}
		if len(notes) != 1 || notes[0].MessageAttributes["user"].Value != "mallory" {
			t.Errorf("alerts %+v, want one, for mallory", notes)
		}
		if got := totalCount(ctx, t, stack); got != 1 {
			t.Errorf("DynamoDB counts sum to %d, want 1 (mallory's create; the suppressed one is not stored)", got)
		}
		logs := stack.Emulator.Logs()
		if !strings.Contains(logs, `"suppressed":1`) {
			t.Errorf("function output:\n%s\nwant a summary with one suppressed match", logs)
		}
		if strings.Contains(logs, "s3cr3t") {
			t.Errorf("function output carries the parameter's value:\n%s", logs)
		}
	})

	t.Run("a missing parameter stops start-up", func(t *testing.T) {
		t.Parallel()
		stack := localtest.StackForTest(t, local.StackOptions{Bootstrap: bootstrap, Table: "ssm-missing", Topic: "ssm-missing", Env: env})
		startFails(t, stack, event, "ParameterNotFound")
		notes, err := stack.Moto.Drain(context.Background(), stack.Topic)
		if err != nil || len(notes) != 0 {
			t.Errorf("alerts %+v, %v; want none", notes, err)
		}
	})

	t.Run("a denied read stops start-up", func(t *testing.T) {
		t.Parallel()
		stack := localtest.StackForTest(t, local.StackOptions{
			Bootstrap: bootstrap, Table: "ssm-denied", Topic: "ssm-denied", Env: env,
			Prepare: func(ctx context.Context, s *local.FunctionStack) ([]string, error) {
				if _, err := put(ssmtypes.ParameterTypeSecureString, secretRule)(ctx, s); err != nil {
					return nil, err
				}
				// The function may publish but not read the parameter.
				creds, err := s.Moto.EnforceIAM(ctx, "detector", `{"Version":"2012-10-17","Statement":[
					{"Effect":"Allow","Action":"sns:Publish","Resource":"*"}]}`)
				if err != nil {
					return nil, err
				}
				return []string{"AWS_ACCESS_KEY_ID=" + creds.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + creds.SecretAccessKey}, nil
			},
		})
		// Real SSM answers AccessDeniedException in JSON; moto answers the same denial
		// with HTTP 403 and an XML body the SDK cannot decode, so the status is what
		// the message shows here.
		startFails(t, stack, event, "StatusCode: 403")
	})
}

// startFails invokes the function and checks that it never got to handle the event: the
// invocation fails, the function's output names the parameter and why, without the
// value, and nothing was counted.
func startFails(t *testing.T, stack *local.FunctionStack, event []byte, why string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Lambda answers an invocation whose runtime exited during init with an error (the
	// emulator: HTTP 502); the reason is in the function's output, as in CloudWatch Logs.
	if resp, err := stack.Emulator.Invoke(ctx, event); err == nil {
		t.Fatalf("Invoke = %s; want an error\n%s", resp, stack.Emulator.Logs())
	}
	logs := stack.Emulator.Logs()
	if want := `load suppressions: SUPPRESSIONS_PARAMETER: get SSM parameter "` + parameter + `"`; !strings.Contains(logs, want) || !strings.Contains(logs, why) {
		t.Errorf("function output:\n%s\nwant %q and %q", logs, want, why)
	}
	if strings.Contains(logs, "s3cr3t") {
		t.Errorf("function output carries the parameter's value:\n%s", logs)
	}
	out, err := stack.DynamoDB.Client().Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(stack.Table)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Items) != 0 {
		t.Errorf("table holds %d items after a failed start, want 0", len(out.Items))
	}
}

// deliveryNow is a CloudWatch Logs delivery with one forbidden create by each user,
// received now (DynamoDB Local expires items by the real clock).
func deliveryNow(t *testing.T, now time.Time, users ...string) []byte {
	t.Helper()
	var events []cwlogs.MessageEvent
	for i, user := range users {
		line := forbiddenCreate(t, fmt.Sprintf("e2e-ssm-%d", i), user, fmt.Sprintf("192.0.2.%d", i+1), now)
		events = append(events, cwlogs.MessageEvent{ID: fmt.Sprintf("%056d", i), Timestamp: now.UnixMilli(), Message: line})
	}
	return cwlogs.SubscriptionEvent(prodPayload(t, events))
}
