package local

import (
	"context"
	"testing"
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
func DynamoDBForTest(t testing.TB) *DynamoDB {
	t.Helper()
	MustHaveServices(t)
	d, err := StartDynamoDB(context.Background())
	handleStartError(t, err)
	t.Cleanup(d.Stop)
	return d
}

// MotoForTest starts moto_server with the given topics (each with a subscribed queue) for
// a test and stops it when the test ends; like DynamoDBForTest, it fails rather than
// skips when moto_server is missing.
func MotoForTest(t testing.TB, topics ...string) *Moto {
	t.Helper()
	MustHaveServices(t)
	m, err := StartMoto(context.Background(), topics...)
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
