package e2e

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/eks-unauthorized-access/detector/internal/cwlogs"
)

// forbiddenCreate is the audit line of user's denied create of a secret from ip, received
// at at (each line its own aggregate: requestReceivedTimestamp is a by-field).
func forbiddenCreate(t *testing.T, auditID, user, ip string, at time.Time) string {
	t.Helper()
	line, err := json.Marshal(map[string]any{
		"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
		"auditID": auditID, "stage": "ResponseComplete",
		"requestURI": "/api/v1/namespaces/kube-system/secrets", "verb": "create",
		"user":      map[string]any{"username": user, "groups": []string{"system:authenticated"}},
		"sourceIPs": []string{ip}, "userAgent": "kubectl/v1.34.2",
		"objectRef": map[string]any{"resource": "secrets", "namespace": "kube-system", "apiVersion": "v1"},
		"responseStatus": map[string]any{
			"metadata": map[string]any{}, "status": "Failure", "reason": "Forbidden", "code": 403,
			"message": "secrets is forbidden",
		},
		"requestReceivedTimestamp": at.UTC().Format("2006-01-02T15:04:05.000000Z"),
		"annotations":              map[string]string{"authorization.k8s.io/decision": "forbid"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(line)
}

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
