package metrics

import (
	"context"
	"testing"

	"github.com/eks-unauthorized-access/detector/infra/local"
)

// TestRequestsDoNotGrowWithEvents checks, against DynamoDB Local and moto, that the
// DynamoDB requests of a batch depend on its distinct aggregates and alert groups, not on
// how many events it holds: the same matching lines repeated 1, 10, 98 and 150 times among 1,
// 10, 98 and 150 times more other traffic cost the same requests. Scale 98 puts 98 ids
// in one conditional write, 150 takes the path for more ids than one write checks.
func TestRequestsDoNotGrowWithEvents(t *testing.T) {
	ddb := local.DynamoDBForTest(t)
	sns := local.MotoForTest(t, "alerts")
	batches := Batches(7, 6, 20, 1, 10, 98, 150)
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
		if c.Requests != first.Requests {
			t.Errorf("scale %d: %d DynamoDB requests (%v), want %d as at scale 1 (%v)", c.Scale, c.Requests, c.ByOperation, first.Requests, first.ByOperation)
		}
	}
}
