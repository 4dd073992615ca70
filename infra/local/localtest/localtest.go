// Package localtest starts the local services of package local for tests: each helper
// fails the test (never skips it) when a tool is missing, except in the fast tier
// (go test -short), and stops what it started when the test ends. It is kept apart from
// package local so that commands such as cmd/localrun do not link the testing package.
package localtest

import (
	"context"
	"testing"

	"github.com/eks-unauthorized-access/detector/infra/local"
)

// MustHaveServices skips the test in the fast tier (go test -short), which needs no
// external tool; in the full tier it does nothing: a test that needs the local services
// then fails, never skips, when one is missing.
func MustHaveServices(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the local AWS services (DynamoDB Local, moto_server, Lambda RIE): full tier only, run without -short")
	}
}

// DynamoDBForTest starts DynamoDB Local for a test and stops it when the test ends.
// A service that is not installed or does not start fails the test (`make test` installs
// the tools first; the error names the install command): these tests are never skipped,
// except in the fast tier (see MustHaveServices).
func DynamoDBForTest(t testing.TB) *local.DynamoDB {
	t.Helper()
	MustHaveServices(t)
	d, err := local.StartDynamoDB(context.Background())
	handleStartError(t, err)
	t.Cleanup(d.Stop)
	return d
}

// MotoForTest starts moto_server with the given topics (each with a subscribed queue) for
// a test and stops it when the test ends; like DynamoDBForTest, it fails rather than
// skips when moto_server is missing.
func MotoForTest(t testing.TB, topics ...string) *local.Moto {
	t.Helper()
	MustHaveServices(t)
	m, err := local.StartMoto(context.Background(), topics...)
	handleStartError(t, err)
	t.Cleanup(m.Stop)
	return m
}

// handleStartError fails the test when a service could not start; the error of a missing
// tool names its install command.
func handleStartError(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// FunctionStackForTest builds the bootstrap and starts a FunctionStack for a test, stopped
// when the test ends. Missing tools fail the test, with the install command.
func FunctionStackForTest(t testing.TB, table, topic string, env ...string) *local.FunctionStack {
	t.Helper()
	return StackForTest(t, local.StackOptions{Table: table, Topic: topic, Env: env})
}

// StackForTest is FunctionStackForTest with every option: it builds the bootstrap when
// opts.Bootstrap is empty.
func StackForTest(t testing.TB, opts local.StackOptions) *local.FunctionStack {
	t.Helper()
	MustHaveServices(t)
	for _, check := range []func() error{
		func() error { _, _, err := local.DynamoDBTools(); return err },
		func() error { _, err := local.MotoBinary(); return err },
		func() error { _, err := local.RIEBinary(); return err },
	} {
		handleStartError(t, check())
	}
	if opts.Bootstrap == "" {
		root, err := local.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		if opts.Bootstrap, err = local.BuildBootstrap(context.Background(), root, t.TempDir()); err != nil {
			t.Fatal(err)
		}
	}
	s, err := local.StartFunctionStack(context.Background(), opts)
	handleStartError(t, err)
	t.Cleanup(s.Stop)
	return s
}

// ReportStackForTest is FunctionStackForTest with the hourly report function beside the
// main one (FunctionStack.Report), both built for the test.
func ReportStackForTest(t testing.TB, table, topic string, env ...string) *local.FunctionStack {
	t.Helper()
	MustHaveServices(t)
	root, err := local.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	report, err := local.BuildFunction(context.Background(), root, t.TempDir(), local.ReportFunctionPackage)
	if err != nil {
		t.Fatal(err)
	}
	return StackForTest(t, local.StackOptions{Table: table, Topic: topic, Env: env, ReportBootstrap: report})
}
