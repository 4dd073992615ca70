package local

import "testing"

// MustHaveServices and handleStartError are the localtest helpers, for this package's
// own tests (which cannot import localtest: it imports this package).
func MustHaveServices(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the local AWS services (DynamoDB Local, moto_server, Lambda RIE): full tier only, run without -short")
	}
}

func handleStartError(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
