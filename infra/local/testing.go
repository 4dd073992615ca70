package local

import (
	"context"
	"errors"
	"testing"
)

// DynamoDBForTest starts DynamoDB Local for a test and stops it when the test ends.
// A service that is not installed or does not start fails the test (`make test` installs
// the tools first; the error names the install command): these tests are never skipped.
func DynamoDBForTest(t testing.TB) *DynamoDB {
	t.Helper()
	d, err := StartDynamoDB(context.Background())
	handleStartError(t, err)
	t.Cleanup(d.Stop)
	return d
}

// GoAWSForTest starts goaws with the given topics (each with a subscribed queue) for a test
// and stops it when the test ends; like DynamoDBForTest, it fails rather than skips.
func GoAWSForTest(t testing.TB, topics ...string) *GoAWS {
	t.Helper()
	g, err := StartGoAWS(context.Background(), topics...)
	handleStartError(t, err)
	t.Cleanup(g.Stop)
	return g
}

func handleStartError(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrToolMissing) {
		t.Fatalf("%v (run `make tools`, or `make test`, which installs them)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
}
