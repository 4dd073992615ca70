// Package detect implements the Splunk detection "Kubernetes Unauthorized Access":
//
//	`kube_audit` verb=create responseStatus.reason=Forbidden
//	| fillnull
//	| stats count by objectRef.namespace objectRef.resource requestReceivedTimestamp requestURI
//	    responseStatus.code responseStatus.message sourceIPs{} stage user.groups{} user.uid
//	    user.username userAgent verb
//	| rename sourceIPs{} as src_ip, user.username as user
//	| `kubernetes_unauthorized_access_filter`
//
// How each clause maps to Go:
//
//   - `kube_audit`: the subscribed EKS audit log groups (package cwlogs decodes them,
//     package audit parses each line).
//   - verb=create responseStatus.reason=Forbidden: Evaluate, comparing the decoded JSON
//     values case-insensitively as SPL's search does (Mode selects variants).
//   - fillnull: Evaluate writes FillValue into each missing by-field (a list missing or
//     empty becomes ["0"]); a present empty string stays "".
//   - stats count by …: package aggregate, per hourly window of event time; sourceIPs{} and
//     user.groups{} keep their lists, aggregate.SplunkRows expands them as Splunk does.
//   - rename: the output names in the JSON tags of Fields (src_ip, user).
//   - `kubernetes_unauthorized_access_filter`: package suppress (CEL expressions).
package detect

import (
	"time"

	"github.com/eks-unauthorized-access/detector/internal/audit"
)

// FillValue is what fillnull writes into a missing by-field (Splunk's default).
const FillValue = "0"

// Rule is the detection's metadata, carried into every aggregate and alert.
type Rule struct {
	ID             string // stable identifier, used in storage keys
	Name           string
	RiskMessage    string // with $user$ placeholder
	RiskScore      int
	Impact         int
	Confidence     int
	MitreID        string
	MitreTechnique string
	MitreTactic    string
	RiskObject     string // output field name of the risk object
	ThreatObject   string // output field name of the threat object
}

// UnauthorizedAccess is the seed rule's metadata.
var UnauthorizedAccess = Rule{
	ID:             "kubernetes-unauthorized-access",
	Name:           "Kubernetes Unauthorized Access",
	RiskMessage:    "Unauthorized access to Kubernetes from user $user$",
	RiskScore:      49,
	Impact:         70,
	Confidence:     70,
	MitreID:        "T1204",
	MitreTechnique: "User Execution",
	MitreTactic:    "Execution",
	RiskObject:     "user",
	ThreatObject:   "src_ip",
}

// Mode selects the match condition.
type Mode string

// Match modes.
const (
	// ModeSeed is exactly the seed's rule: verb=create AND responseStatus.reason=Forbidden.
	ModeSeed Mode = "seed"
	// ModeAuthz keeps only authorization denials: ModeSeed AND annotation
	// authorization.k8s.io/decision=forbid (drops admission 403s).
	ModeAuthz Mode = "authz"
	// ModeBroad is ModeSeed plus creates answered 403 whose reason is missing or empty.
	ModeBroad Mode = "broad"
)

// Fields are the 13 by-fields of the stats clause after fillnull and rename, verbatim
// from the event (FillValue where missing). The multi-value fields keep the whole list.
type Fields struct {
	Namespace                string   `json:"objectRef.namespace"`
	Resource                 string   `json:"objectRef.resource"`
	RequestReceivedTimestamp string   `json:"requestReceivedTimestamp"`
	RequestURI               string   `json:"requestURI"`
	Code                     string   `json:"responseStatus.code"`
	Message                  string   `json:"responseStatus.message"`
	SrcIPs                   []string `json:"src_ip"`
	Stage                    string   `json:"stage"`
	Groups                   []string `json:"user.groups{}"`
	UID                      string   `json:"user.uid"`
	User                     string   `json:"user"`
	UserAgent                string   `json:"userAgent"`
	Verb                     string   `json:"verb"`
}

// Match is one audit event that satisfied the rule.
type Match struct {
	Fields Fields
	// Time is the event time used for windowing: requestReceivedTimestamp, else the
	// CloudWatch log event timestamp.
	Time time.Time
	// Decision is the authorization.k8s.io/decision annotation, if any.
	Decision string
	// Identity is who is behind the request, from user.extra (not a by-field).
	Identity audit.Identity
	// AuditID is the request's audit id: the API server writes one per request, shared by
	// the request's stages (ResponseStarted and ResponseComplete of an exec). Not a by-field.
	AuditID string
}

// Peer is the address the API server itself saw the request come from: the last entry of
// src_ip. The API server lists sourceIPs as the X-Forwarded-For entries, then X-Real-Ip
// when not already listed, then the connection's remote address unless it equals the last
// entry so far; so the last entry is always the remote address, and "all but the last IP
// can be arbitrarily set by the client" (k8s.io/apiserver pkg/apis/audit, Event.SourceIPs).
// It is "" when src_ip is empty.
func (f Fields) Peer() string {
	if len(f.SrcIPs) == 0 {
		return ""
	}
	return f.SrcIPs[len(f.SrcIPs)-1]
}
