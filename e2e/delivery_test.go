package e2e

import (
	"testing"

	"github.com/eks-unauthorized-access/detector/internal/cwlogs"
)

// prodPayload is the gzip-compressed DATA_MESSAGE of the prod cluster's audit log group
// carrying events.
func prodPayload(t *testing.T, events []cwlogs.MessageEvent) []byte {
	t.Helper()
	msg, err := cwlogs.Message{
		MessageType: cwlogs.DataMessage, Owner: "111122223333", LogGroup: "/aws/eks/prod-cluster/cluster",
		LogStream: "kube-apiserver-audit-0123456789abcdef", SubscriptionFilters: []string{"eks-unauthorized-access"},
		LogEvents: events,
	}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	comp, err := cwlogs.Compress(msg, cwlogs.Gzip)
	if err != nil {
		t.Fatal(err)
	}
	return comp
}
