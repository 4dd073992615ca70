package metrics

import (
	"context"
	"testing"

	"github.com/eks-unauthorized-access/detector/infra/local/localtest"
	"github.com/eks-unauthorized-access/detector/internal/store"
)

// TestHostileDelivery: one delivery of 71,000 denied creates by one user, each a distinct
// row, is counted whole and exactly, with a number of DynamoDB requests within
// HostileRequestBound: about two per 90 events (the overflow row's ids and the running
// total's), not one per row. Its time is logged, not asserted (make bench measures).
func TestHostileDelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("71,000 events against DynamoDB Local")
	}
	ddb := localtest.DynamoDBForTest(t)
	sns := localtest.MotoForTest(t, "alerts")
	const n = 71000
	d := DistinctRequests(3, n)
	t.Logf("delivery: %d events, %d bytes of audit JSON, %d bytes compressed, %d bytes Lambda event",
		d.Events, d.AuditBytes, len(d.Compressed), len(d.Event))
	got, err := RunHostile(context.Background(), ddb, sns, "alerts", "hostile", d, store.DefaultMaxRowsPerGroup)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", got)
	if got.Aggregates != n {
		t.Fatalf("%d distinct aggregates, want %d (every request a row)", got.Aggregates, n)
	}
	if got.Attempts != n || got.Total != n {
		t.Errorf("stored %d attempts in %d rows, running total %d; want %d", got.Attempts, got.Rows, got.Total, n)
	}
	if got.Rows != store.DefaultMaxRowsPerGroup+1 {
		t.Errorf("%d rows stored, want the bound %d and the overflow row", got.Rows, store.DefaultMaxRowsPerGroup)
	}
	if bound := HostileRequestBound(n, got.Aggregates, store.DefaultMaxRowsPerGroup); got.Requests > bound {
		t.Errorf("%d DynamoDB requests (%v), more than the bound %d", got.Requests, got.ByOp, bound)
	}
}
