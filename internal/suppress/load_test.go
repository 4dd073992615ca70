package suppress_test

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

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

	t.Run("a SecureString suppression file is named by entry, never quoted", func(t *testing.T) {
		putParameter(t, client, "/detector/bad-secure-file", `{"suppressions": [
  {"name": "ok", "expression": "user == \"ok\"", "owner": "o", "reason": "r"},
  {"name": "admin-allow", "expression": "user == \"s3cr3t\" && bad(", "owner": "o", "reason": "r"}]}`, ssmtypes.ParameterTypeSecureString)
		putParameter(t, client, "/detector/bad-secure-json", `{"suppressions": [{"name": "s3cr3t-name" "expression": "s3cr3t"}]}`, ssmtypes.ParameterTypeSecureString)
		_, err := suppress.Load(ctx, client, nil, "/detector/bad-secure-file")
		if err == nil || !strings.Contains(err.Error(), "suppression 2 (admin-allow): does not compile") || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("error = %v, want the entry named and its text hidden", err)
		}
		_, err = suppress.Load(ctx, client, nil, "/detector/bad-secure-json")
		if err == nil || !strings.Contains(err.Error(), "is not a valid suppression file") || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("error = %v, want the file refused without its text", err)
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

// getterFunc is an SSMGetter that calls a function; the tests use it to switch the real
// SDK client the Reloader goes through.
type getterFunc func(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)

func (f getterFunc) GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	return f(ctx, in, optFns...)
}

func overwrite(t *testing.T, client *ssm.Client, name, value string) {
	t.Helper()
	_, err := client.PutParameter(context.Background(), &ssm.PutParameterInput{
		Name: aws.String(name), Value: aws.String(value), Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
}

// entryJSON is a suppression file of one entry suppressing user.
func entryJSON(name, user string) string {
	return `{"suppressions": [{"name": "` + name + `", "expression": "user == \"` + user + `\"", "owner": "secops", "reason": "test"}]}`
}

// TestReloader changes the parameter in moto's Parameter Store under a running Reloader:
// the change applies at the next refresh after the interval, a version that does not
// compile is rejected and the previous set stays, and a Parameter Store that does not
// answer keeps the set too, within the timeout.
func TestReloader(t *testing.T) {
	ctx := context.Background()
	m := localtest.MotoForTest(t)
	const name = "/detector/reloaded"
	putParameter(t, m.SSMClient(), name, entryJSON("ci-bot", "ci-bot"), ssmtypes.ParameterTypeString)

	// An endpoint that accepts connections and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	good := m.SSMClient()
	silent := m.SSMClient(func(o *ssm.Options) { o.BaseEndpoint = aws.String("http://" + ln.Addr().String()) })
	client := good
	var getter getterFunc = func(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
		return client.GetParameter(ctx, in, optFns...)
	}

	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r, err := suppress.NewReloader(ctx, getter, suppress.Named("env", []string{`user == "bob"`}), name,
		suppress.ReloadOptions{Interval: time.Minute, Timeout: 300 * time.Millisecond, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	suppressed := func(user string) bool { return r.Check(match(user), aggregate.Source{}).Suppressed }
	if r.Version() != 1 || !suppressed("ci-bot") || !suppressed("bob") || suppressed("mallory") {
		t.Fatalf("initial set: version %d, names %q", r.Version(), r.Filter().Names())
	}

	overwrite(t, good, name, entryJSON("mallory", "mallory"))
	now = now.Add(30 * time.Second)
	if st := r.Refresh(ctx); st.Read || st.Changed || suppressed("mallory") {
		t.Errorf("refresh before the interval: %+v, want no read", st)
	}
	now = now.Add(31 * time.Second)
	st := r.Refresh(ctx)
	if !st.Read || !st.Changed || st.Version != 2 || !slices.Equal(st.Names, []string{"env-1", "mallory"}) {
		t.Errorf("refresh after the interval: %+v, want version 2 taken", st)
	}
	if !suppressed("mallory") || suppressed("ci-bot") || !suppressed("bob") {
		t.Errorf("after the reload the set is %q", r.Filter().Names())
	}

	overwrite(t, good, name, `{"suppressions": [{"name": "broken", "expression": "user ==", "owner": "o", "reason": "r"}]}`)
	now = now.Add(time.Minute)
	st = r.Refresh(ctx)
	if st.Changed || st.Version != 2 || st.Rejected != 3 || st.RejectError == nil || !strings.Contains(st.RejectError.Error(), "broken") {
		t.Errorf("refresh to a broken version: %+v, want version 3 rejected, 2 kept", st)
	}
	if !suppressed("mallory") {
		t.Error("the last good set is not in use after a broken update")
	}
	now = now.Add(time.Minute)
	if st := r.Refresh(ctx); st.Rejected != 3 || st.RejectError != nil || st.Version != 2 {
		t.Errorf("next refresh: %+v, want version 3 still rejected (said once), 2 in use", st)
	}

	client = silent
	now = now.Add(time.Minute)
	start := time.Now()
	st = r.Refresh(ctx)
	took := time.Since(start)
	if st.ReadError == nil || st.Version != 2 || !suppressed("mallory") {
		t.Errorf("refresh from a silent endpoint: %+v, want a read error and version 2 kept", st)
	}
	if took > 2*time.Second {
		t.Errorf("refresh took %v with a 300ms timeout", took)
	}
	t.Logf("refresh against a silent endpoint returned after %v", took)

	client = good
	overwrite(t, good, name, entryJSON("fixed", "eve"))
	now = now.Add(time.Minute)
	if st := r.Refresh(ctx); !st.Changed || st.Version != 4 || st.Rejected != 0 || !suppressed("eve") {
		t.Errorf("refresh to a fixed version: %+v", st)
	}
}
