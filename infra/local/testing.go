package local

import (
	"context"
	"errors"
	"os"
	"testing"
)

// InCI reports whether the tests run in continuous integration (CI=true), where a local
// service that cannot start is a failure, never a skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// DynamoDBForTest starts DynamoDB Local for a test and stops it when the test ends.
// When the tools are not installed it skips the test with the install command, except in
// CI, where it fails; a service that is installed but does not start always fails.
func DynamoDBForTest(t testing.TB) *DynamoDB {
	t.Helper()
	d, err := StartDynamoDB(context.Background())
	handleStartError(t, err)
	t.Cleanup(d.Stop)
	return d
}

// GoAWSForTest starts goaws with the given topics (each with a subscribed queue) for a test
// and stops it when the test ends, with the same skip and failure rules as DynamoDBForTest.
func GoAWSForTest(t testing.TB, topics ...string) *GoAWS {
	t.Helper()
	g, err := StartGoAWS(context.Background(), topics...)
	handleStartError(t, err)
	t.Cleanup(g.Stop)
	return g
}

func handleStartError(t testing.TB, err error) {
	t.Helper()
	switch {
	case err == nil:
	case errors.Is(err, ErrToolMissing) && !InCI():
		t.Skipf("skipping: %v", err)
	default:
		t.Fatal(err)
	}
}
