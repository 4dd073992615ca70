package metrics

import (
	"context"
	"testing"

	"github.com/eks-unauthorized-access/detector/infra/local/localtest"
	"github.com/eks-unauthorized-access/detector/internal/store"
)

// TestRequestsPerBatch checks, against DynamoDB Local and moto, the bound on the DynamoDB
// requests of a batch that the store states: they depend on its distinct aggregates and
// alert groups, and on its events only through the chunks of at most store.MaxIDsPerWrite
// ids that each aggregate's ids are written in. The same matching lines repeated s times
// (among s times more other traffic) give each of the 6 aggregates s ids, so a batch costs
// what scale 1 costs plus one write per aggregate for each chunk past the first: the same
// up to 90 (one full chunk), one more per aggregate at 91, 98 and 150, two more at 181.
func TestRequestsPerBatch(t *testing.T) {
	ddb := localtest.DynamoDBForTest(t)
	sns := localtest.MotoForTest(t, "alerts")
	batches := Batches(7, 6, 20, 1, 10, store.MaxIDsPerWrite, store.MaxIDsPerWrite+1, 98, 150, 2*store.MaxIDsPerWrite+1)
	counts, err := CountRequests(context.Background(), ddb, sns, "alerts", batches)
	if err != nil {
		t.Fatal(err)
	}
	first := counts[0]
	t.Log(first)
	if first.Matches != 6 || first.Aggregates != 6 || first.Groups == 0 || first.Requests == 0 {
		t.Fatalf("scale 1: %v; want 6 matches in 6 aggregates, some groups and requests", first)
	}
	// Per aggregate at least one counting write, per group at least a claim.
	if first.Requests < first.Aggregates+first.Groups {
		t.Errorf("scale 1: %d requests, fewer than aggregates + groups = %d", first.Requests, first.Aggregates+first.Groups)
	}
	for _, c := range counts[1:] {
		t.Log(c)
		if c.Matches != c.Scale*first.Matches || c.Events != c.Scale*first.Events {
			t.Errorf("scale %d: %d matches in %d events, want %d in %d", c.Scale, c.Matches, c.Events, c.Scale*first.Matches, c.Scale*first.Events)
		}
		if c.Aggregates != first.Aggregates || c.Groups != first.Groups {
			t.Errorf("scale %d: %d aggregates and %d groups, want the same as scale 1 (%d, %d)", c.Scale, c.Aggregates, c.Groups, first.Aggregates, first.Groups)
		}
		chunks := (c.Scale + store.MaxIDsPerWrite - 1) / store.MaxIDsPerWrite
		if want := first.Requests + c.Aggregates*(chunks-1); c.Requests != want {
			t.Errorf("scale %d: %d DynamoDB requests (%v), want %d: %d at scale 1 (%v) plus %d aggregates x %d more chunks",
				c.Scale, c.Requests, c.ByOperation, want, first.Requests, first.ByOperation, c.Aggregates, chunks-1)
		}
	}
}
