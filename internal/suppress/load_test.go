package suppress_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/eks-unauthorized-access/detector/infra/local/localtest"
	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/suppress"
)

func putParameter(t *testing.T, client *ssm.Client, name, value string, typ ssmtypes.ParameterType) {
	t.Helper()
	_, err := client.PutParameter(context.Background(), &ssm.PutParameterInput{
		Name: aws.String(name), Value: aws.String(value), Type: typ,
	})
	if err != nil {
		t.Fatal(err)
	}
}

func match(user string) detect.Match {
	return detect.Match{Fields: detect.Fields{User: user, SrcIPs: []string{"192.0.2.7"}, Code: "403"}}
}

// TestLoad reads suppressions from moto's Parameter Store, as the function does at start-up.
func TestLoad(t *testing.T) {
	ctx := context.Background()
	m := localtest.MotoForTest(t)
	client := m.SSMClient()
	const rules = "# CI deploys\nuser == \"system:serviceaccount:ci:deployer\"\n\nuser == \"alice\"\n"
	putParameter(t, client, "/detector/string", rules, ssmtypes.ParameterTypeString)
	putParameter(t, client, "/detector/secure", rules, ssmtypes.ParameterTypeSecureString)
	putParameter(t, client, "/detector/list", `user == "alice",src_ip in ["192.0.2.7", "192.0.2.8"]`, ssmtypes.ParameterTypeStringList)

	for _, tt := range []struct {
		parameter string
		want      []string
	}{
		{"/detector/string", []string{`user == "bob"`, `user == "system:serviceaccount:ci:deployer"`, `user == "alice"`}},
		{"/detector/secure", []string{`user == "bob"`, `user == "system:serviceaccount:ci:deployer"`, `user == "alice"`}},
		{"/detector/list", []string{`user == "bob"`, `user == "alice"`, `src_ip in ["192.0.2.7", "192.0.2.8"]`}},
	} {
		t.Run(tt.parameter, func(t *testing.T) {
			f, err := suppress.Load(ctx, client, suppress.Named("env", []string{`user == "bob"`}), tt.parameter)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Expressions(); !slices.Equal(got, tt.want) {
				t.Errorf("expressions = %q, want %q", got, tt.want)
			}
			// Inline and parameter suppressions both apply; others still alert.
			for user, want := range map[string]bool{"alice": true, "bob": true, "mallory": tt.parameter == "/detector/list"} {
				if got := f.Suppress(match(user), aggregate.Source{}); got != want {
					t.Errorf("Suppress(%s) = %v, want %v", user, got, want)
				}
			}
		})
	}

	t.Run("no parameter", func(t *testing.T) {
		f, err := suppress.Load(ctx, client, nil, "")
		if err != nil || f.Len() != 0 {
			t.Fatalf("Load without suppressions = %v, %v; want an empty filter", f, err)
		}
	})

	t.Run("missing parameter names it", func(t *testing.T) {
		_, err := suppress.Load(ctx, client, nil, "/detector/missing")
		if err == nil {
			t.Fatal("Load of a missing parameter succeeded")
		}
		if msg := err.Error(); !strings.Contains(msg, `"/detector/missing"`) || !strings.Contains(msg, "ParameterNotFound") {
			t.Errorf("error = %q, want the parameter name and ParameterNotFound", msg)
		}
	})

	const secret = `user == "s3cr3t-allow-listed-admin" && bad(`
	putParameter(t, client, "/detector/bad-secure", "user == \"ok\"\n"+secret, ssmtypes.ParameterTypeSecureString)
	putParameter(t, client, "/detector/bad-string", "user == \"ok\"\n"+secret, ssmtypes.ParameterTypeString)

	t.Run("a SecureString that does not compile is not quoted", func(t *testing.T) {
		_, err := suppress.Load(ctx, client, nil, "/detector/bad-secure")
		if err == nil {
			t.Fatal("Load of an invalid expression succeeded")
		}
		msg := err.Error()
		if !strings.Contains(msg, `"/detector/bad-secure"`) || !strings.Contains(msg, "suppression 2") {
			t.Errorf("error = %q, want the parameter name and the position", msg)
		}
		if strings.Contains(msg, "s3cr3t") {
			t.Errorf("error quotes the SecureString: %q", msg)
		}
	})

	t.Run("a String that does not compile is quoted", func(t *testing.T) {
		_, err := suppress.Load(ctx, client, nil, "/detector/bad-string")
		if err == nil || !strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), `"/detector/bad-string"`) {
			t.Errorf("error = %v, want the parameter name and the failing expression", err)
		}
	})

	t.Run("invalid inline suppressions are reported before the parameter is read", func(t *testing.T) {
		_, err := suppress.Load(ctx, client, suppress.Named("env", []string{"user =="}), "/detector/missing")
		if err == nil || !strings.HasPrefix(err.Error(), "SUPPRESSIONS:") {
			t.Errorf("error = %v, want one about SUPPRESSIONS", err)
		}
	})
}

// TestLoadDenied reads a parameter with credentials whose policy does not allow
// ssm:GetParameter: the error names the parameter and never carries its value.
func TestLoadDenied(t *testing.T) {
	ctx := context.Background()
	m := localtest.MotoForTest(t)
	putParameter(t, m.SSMClient(), "/detector/suppressions", `user == "s3cr3t"`, ssmtypes.ParameterTypeSecureString)
	creds, err := m.EnforceIAM(ctx, "detector", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sns:Publish","Resource":"*"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	client := m.SSMClient(func(o *ssm.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, "")
	})
	_, err = suppress.Load(ctx, client, nil, "/detector/suppressions")
	if err == nil {
		t.Fatal("Load with a policy that does not allow ssm:GetParameter succeeded")
	}
	msg := err.Error()
	if !strings.Contains(msg, `"/detector/suppressions"`) || !strings.Contains(msg, "403") {
		t.Errorf("error = %q, want the parameter name and the HTTP 403 of the denial", msg)
	}
	if strings.Contains(msg, "s3cr3t") {
		t.Errorf("error carries the value: %q", msg)
	}
}
