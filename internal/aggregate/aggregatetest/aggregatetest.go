// Package aggregatetest builds aggregates for the tests of the packages that store and
// alert on them (store, handler), so that they share one idea of a typical aggregate.
// Only tests import it.
package aggregatetest

import (
	"fmt"
	"time"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/audit"
	"github.com/eks-unauthorized-access/detector/internal/detect"
)

// Denied returns an aggregate of the rule: user's denied creates of secrets in
// kube-system, in the hour that starts at window, seen five minutes into it, under the
// aggregate key key, counting the log events ids (Count is their number). Every field an
// aggregate stores is set: two source IPs and two groups (lists), and the IAM and pod
// identity behind the user; tests change what they need.
func Denied(window time.Time, user, key string, ids ...string) aggregate.Aggregate {
	at := window.Add(5 * time.Minute)
	return aggregate.Aggregate{
		Rule:   detect.UnauthorizedAccess.ID,
		Window: window,
		Key:    key,
		Group:  user,
		Source: aggregate.Source{Owner: "123456789012", LogGroup: "/aws/eks/prod/cluster", LogStream: "kube-apiserver-audit-1", Cluster: "prod", Region: "eu-west-1"},
		Fields: detect.Fields{
			Namespace: "kube-system", Resource: "secrets",
			RequestReceivedTimestamp: at.Format("2006-01-02T15:04:05.000000Z"),
			RequestURI:               "/api/v1/namespaces/kube-system/secrets",
			Code:                     "403",
			Message:                  `secrets is forbidden: User "` + user + `" cannot create resource "secrets"`,
			SrcIPs:                   []string{"10.0.0.1", "192.0.2.7"},
			Stage:                    "ResponseComplete",
			Groups:                   []string{"system:authenticated", "dev"},
			UID:                      "aws-iam-authenticator:123456789012:AROAEXAMPLE",
			User:                     user,
			UserAgent:                "kubectl/v1.37.2",
			Verb:                     "create",
		},
		Identity: audit.Identity{ARN: "arn:aws:sts::123456789012:assumed-role/Dev/" + user, CanonicalARN: "arn:aws:iam::123456789012:role/Dev",
			SessionName: user, AccessKeyID: "ASIAEXAMPLE", PrincipalID: "AROAEXAMPLE:" + user,
			PodName: "web-1", PodUID: "0f5e", NodeName: "ip-10-0-0-1", CredentialID: "JTI=1"},
		Count:     int64(len(ids)),
		FirstSeen: at,
		LastSeen:  at,
		EventIDs:  ids,
	}
}

// EventIDs returns n log event ids, distinct per prefix: the prefix and 56 digits, at least
// as long as the ids CloudWatch Logs writes (56 digits), so that size bounds are tested
// with real lengths or more.
func EventIDs(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%056d", prefix, i)
	}
	return out
}
