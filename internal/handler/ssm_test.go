package handler_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/eks-unauthorized-access/detector/infra/local/localtest"
	"github.com/eks-unauthorized-access/detector/internal/suppress"
)

// TestSuppressionsParameter loads the suppressions as the function does at start-up,
// from a String and from a SecureString parameter in moto's Parameter Store, and runs a
// delivery through the real pipeline, DynamoDB Local and moto's SNS: the user the
// parameter names is neither stored nor alerted, and the other one is.
func TestSuppressionsParameter(t *testing.T) {
	ctx := context.Background()
	paramTypes := []ssmtypes.ParameterType{ssmtypes.ParameterTypeString, ssmtypes.ParameterTypeSecureString}
	topics := make([]string, len(paramTypes))
	for i, typ := range paramTypes {
		topics[i] = "ssm-" + string(typ)
	}
	db, moto := localtest.DynamoDBForTest(t), localtest.MotoForTest(t, topics...)
	event := delivery(t, []string{
		auditLine(t, "ci-bot", "192.0.2.10", time.Minute, nil),
		auditLine(t, "mallory", "203.0.113.66", 2*time.Minute, nil),
	}, nil)

	for i, typ := range paramTypes {
		t.Run(string(typ), func(t *testing.T) {
			name := "/detector/suppressions-" + string(typ)
			_, err := moto.SSMClient().PutParameter(ctx, &ssm.PutParameterInput{
				Name: aws.String(name), Type: typ,
				Value: aws.String("# the CI robot creates what it may not, by design\nuser == \"ci-bot\" && src_ip == \"192.0.2.10\"\n"),
			})
			if err != nil {
				t.Fatal(err)
			}
			filter, err := suppress.Load(ctx, moto.SSMClient(), nil, name)
			if err != nil {
				t.Fatal(err)
			}
			r := newRig(t, db.Endpoint, moto, topics[i])
			r.opts.Suppressor = filter
			if err := invokeWith(r.handler(nil, nil), event, "req-"+string(typ), 30*time.Second); err != nil {
				t.Fatal(err)
			}
			if got, want := alertUsers(r.notifications(t)), []string{"mallory"}; !slices.Equal(got, want) {
				t.Errorf("alerts for %q, want %q", got, want)
			}
			var stored []string
			for k, n := range r.counts(t, "ci-bot", "mallory") {
				user, _, _ := strings.Cut(k, " ")
				stored = append(stored, fmt.Sprintf("%s=%d", user, n))
			}
			if want := []string{"mallory=1"}; !slices.Equal(stored, want) {
				t.Errorf("aggregates stored: %q, want %q", stored, want)
			}
			sums := r.summaries(t)
			if len(sums) != 1 || sums[0]["matches"] != 2.0 || sums[0]["suppressed"] != 1.0 {
				t.Errorf("summary = %v, want 2 matches, 1 suppressed", sums)
			}
		})
	}
}
