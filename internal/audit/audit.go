// Package audit parses Kubernetes audit.k8s.io/v1 Event log lines, keeping only the
// fields the detection needs. Request and response bodies (requestObject,
// responseObject) can hold secrets and are never kept.
//
// Almost every value here is chosen or influenced by whoever sent the request to the API
// server: treat them all as attacker-controlled text when rendering or logging them.
package audit

import "errors"

// Stage is the stage of request handling at which an audit event was generated.
type Stage string

// Stages written by the API server (EKS omits RequestReceived).
const (
	StageRequestReceived  Stage = "RequestReceived"
	StageResponseStarted  Stage = "ResponseStarted"
	StageResponseComplete Stage = "ResponseComplete"
	StagePanic            Stage = "Panic"
)

// Reasons a line is not used, counted by the pipeline.
var (
	ErrNotJSON   = errors.New("not JSON")
	ErrNotAudit  = errors.New("not an audit event")
	ErrTruncated = errors.New("truncated line")
)

// Field names one event field whose presence is tracked, so that fillnull can tell a
// missing field from a present one. Fields combine as a bit set (see Event.Present).
type Field uint32

// Tracked fields. A field is present when its key is in the JSON object with a non-null
// value; a list is present when it has at least one element (Splunk extracts nothing from
// an empty array).
const (
	FieldVerb Field = 1 << iota
	FieldRequestURI
	FieldUserAgent
	FieldRequestReceivedTimestamp
	FieldStageTimestamp
	FieldStage
	FieldSourceIPs
	FieldUsername
	FieldUID
	FieldGroups
	FieldNamespace
	FieldResource
	FieldStatusReason
	FieldStatusCode
	FieldStatusMessage
)

// Event is the subset of an audit.k8s.io/v1 Event that the detection reads.
// Field names follow the upstream JSON names. Use Parse (or json.Unmarshal, which calls
// UnmarshalJSON) to fill it: JSON keys are matched exactly, as Splunk does, and Present
// records which fields were in the line.
type Event struct {
	// Kind is "Event"; APIVersion "audit.k8s.io/v1". Set by the API server.
	Kind       string `json:"kind"`
	APIVersion string `json:"apiVersion"`
	// Level is the audit level (Metadata, Request, RequestResponse). Set by the policy.
	Level string `json:"level"`
	// AuditID is unique per request. Set by the API server (clients can propose one).
	AuditID string `json:"auditID"`
	// Stage is the stage at which this event was generated. Set by the API server.
	Stage Stage `json:"stage"`
	// RequestURI is the URI the client sent: attacker-controlled.
	RequestURI string `json:"requestURI"`
	// Verb is the Kubernetes verb derived from the HTTP method and URI: attacker-chosen.
	Verb string `json:"verb"`
	// User is the authenticated identity; its names come from the authenticator.
	User UserInfo `json:"user"`
	// SourceIPs lists the client addresses, X-Forwarded-For entries first: the forwarded
	// entries are attacker-controlled, the last one is the peer address.
	SourceIPs []string `json:"sourceIPs"`
	// UserAgent is the client's User-Agent header: attacker-controlled.
	UserAgent string `json:"userAgent"`
	// ObjectRef is the object the request targets, from the URI: attacker-chosen.
	ObjectRef *ObjectReference `json:"objectRef"`
	// ResponseStatus is the API server's answer; Message can echo attacker-chosen names.
	ResponseStatus *Status `json:"responseStatus"`
	// RequestReceivedTimestamp is when the API server received the request (RFC 3339
	// with microseconds), kept verbatim as written.
	RequestReceivedTimestamp string `json:"requestReceivedTimestamp"`
	// StageTimestamp is when this stage was reached.
	StageTimestamp string `json:"stageTimestamp"`
	// Annotations are written by the API server's authorizer and admission plugins
	// (for example authorization.k8s.io/decision). Values can quote attacker input.
	Annotations map[string]string `json:"annotations"`
	// Present is the set of tracked fields found in the line (see Field).
	Present Field `json:"-"`

	hasUser bool // the user object was present (used to recognise events without kind)
}

// Has reports whether field f was present in the parsed line.
func (e Event) Has(f Field) bool { return e.Present&f != 0 }

// UserInfo is the identity of the requester. Of user.extra only the identifiers listed in
// IdentityKeys are kept (see Identity); every other key is skipped while parsing.
type UserInfo struct {
	// Username is the authenticated name; for anonymous requests system:anonymous.
	Username string `json:"username"`
	// UID is the authenticator's unique id; on EKS aws-iam-authenticator:<account>:<id>.
	UID string `json:"uid"`
	// Groups are the groups the authenticator placed the user in.
	Groups []string `json:"groups"`
	// Extra is the part of user.extra that identifies who is behind the request.
	Extra Identity `json:"-"`
}

// Identity is what user.extra says about who is behind a request: the AWS identity that
// the EKS authenticator (or an access entry) mapped to the Kubernetes user, or the pod and
// node bound to a service-account token. Every value is an identifier, none a secret.
// The authenticator writes them from the verified STS answer, except SessionName, which
// the caller chose when it assumed the role: it names a session, not a person. Only the
// first value of each key is kept.
type Identity struct {
	// ARN is the caller's ARN as STS returned it (an assumed-role ARN with its session).
	ARN string `json:"arn,omitempty"`
	// CanonicalARN is the IAM role or user behind ARN.
	CanonicalARN string `json:"canonicalArn,omitempty"`
	// SessionName is the role session name: chosen by the caller.
	SessionName string `json:"sessionName,omitempty"`
	// AccessKeyID is the access key that signed the token (an ASIA… key for a session).
	AccessKeyID string `json:"accessKeyId,omitempty"`
	// PrincipalID is the unique id of the IAM principal (AROA…:session, AIDA…).
	PrincipalID string `json:"principalId,omitempty"`
	// PodName, PodUID and NodeName are the pod a bound service-account token was issued
	// to and the node it ran on; CredentialID identifies the token (its JWT id).
	PodName      string `json:"podName,omitempty"`
	PodUID       string `json:"podUid,omitempty"`
	NodeName     string `json:"nodeName,omitempty"`
	CredentialID string `json:"credentialId,omitempty"`
}

// IsZero reports whether no identifier is known.
func (i Identity) IsZero() bool { return i == Identity{} }

// IdentityKeys are the user.extra keys read into an Identity, and the only ones read.
var IdentityKeys = []string{
	"arn", "canonicalArn", "sessionName", "accessKeyId", "principalId",
	"authentication.kubernetes.io/pod-name", "authentication.kubernetes.io/pod-uid",
	"authentication.kubernetes.io/node-name", "authentication.kubernetes.io/credential-id",
}

// fields returns pointers to the Identity fields, in the order of IdentityKeys.
func (i *Identity) fields() []*string {
	return []*string{&i.ARN, &i.CanonicalARN, &i.SessionName, &i.AccessKeyID, &i.PrincipalID,
		&i.PodName, &i.PodUID, &i.NodeName, &i.CredentialID}
}

// ObjectReference identifies the target object of a request. Every field comes from the
// request URI and is attacker-chosen.
type ObjectReference struct {
	// Resource is the resource type, e.g. "secrets".
	Resource string `json:"resource"`
	// Namespace is the target namespace; empty for cluster-scoped resources.
	Namespace string `json:"namespace"`
	// Name is the object name; RBAC denials of a create carry none.
	Name string `json:"name"`
	// APIGroup is the API group; empty for the core group.
	APIGroup string `json:"apiGroup"`
	// APIVersion is the API version of the request.
	APIVersion string `json:"apiVersion"`
	// Subresource is e.g. "exec" or "token".
	Subresource string `json:"subresource"`
}

// Status is the response status (a metav1.Status subset).
type Status struct {
	// Status is "Success" or "Failure".
	Status string `json:"status"`
	// Message is the human-readable explanation; it quotes user and object names.
	Message string `json:"message"`
	// Reason is the machine-readable reason, e.g. "Forbidden".
	Reason string `json:"reason"`
	// Code is kept as the JSON number text written by the API server (e.g. "403").
	Code string `json:"-"`
}
