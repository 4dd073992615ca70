package alert

import (
	"slices"
	"strings"
)

// UserKind is what kind of Kubernetes user an alert is about: the message attribute
// userKind, for routing (service-account denials to the platform team, anonymous ones to
// security).
type UserKind string

// User kinds.
const (
	UserAnonymous      UserKind = "anonymous"      // system:anonymous, or in system:unauthenticated
	UserServiceAccount UserKind = "serviceaccount" // system:serviceaccount:<namespace>:<name>
	UserNode           UserKind = "node"           // system:node:<name>, or in system:nodes
	UserIAM            UserKind = "iam"            // an AWS identity (EKS authenticator uid, or an ARN in user.extra)
	UserOther          UserKind = "other"          // anything else (certificates, OIDC, tokens)
)

// UserKindOf classifies a user from its name, uid and groups as the API server wrote them,
// and the identities of its requests. A node authenticates with IAM on EKS: it is a node.
func UserKindOf(user, uid string, groups []string, ids []Identity) UserKind {
	switch {
	case user == "system:anonymous" || slices.Contains(groups, "system:unauthenticated"):
		return UserAnonymous
	case strings.HasPrefix(user, "system:serviceaccount:"):
		return UserServiceAccount
	case strings.HasPrefix(user, "system:node:") || slices.Contains(groups, "system:nodes"):
		return UserNode
	case strings.HasPrefix(uid, "aws-iam-authenticator:"):
		return UserIAM
	}
	for _, id := range ids {
		if id.Kind == IdentityIAM && (id.ARN != "" || id.CanonicalARN != "") {
			return UserIAM
		}
	}
	return UserOther
}
