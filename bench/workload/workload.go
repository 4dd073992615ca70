// Package workload generates realistic, deterministic EKS audit traffic for benchmarks
// and load tests: audit.k8s.io/v1 events as kube-apiserver writes them (controllers,
// nodes, service accounts, IAM-mapped users with user.extra, anonymous probes; some request
// and response bodies; about 1% Forbidden creates and some forbidden non-creates), wrapped
// into CloudWatch Logs subscription Lambda events of realistic size.
//
// The same seed always yields the same bytes.
package workload

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/eks-unauthorized-access/detector/internal/cwlogs"
)

// Generator produces audit lines and Lambda events from a seeded random source.
type Generator struct {
	rng   *rand.Rand
	now   time.Time
	seq   uint64
	nodes []string
	ips   []string
}

// New returns a generator whose output depends only on seed.
func New(seed uint64) *Generator {
	g := &Generator{
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), //nolint:gosec // a reproducible workload, not a secret

		now: time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC),
	}
	for i := 0; i < 24; i++ {
		g.nodes = append(g.nodes, fmt.Sprintf("ip-10-0-%d-%d.eu-west-1.compute.internal", g.rng.IntN(64), g.rng.IntN(254)+1))
		g.ips = append(g.ips, fmt.Sprintf("10.0.%d.%d", g.rng.IntN(64), g.rng.IntN(254)+1))
	}
	return g
}

// Kind says what a generated line is, so callers can count expected detections.
type Kind int

// Kinds of generated lines.
const (
	KindAllowed         Kind = iota // an ordinary allowed request
	KindForbiddenCreate             // verb create answered 403 Forbidden: the rule matches
	KindForbiddenOther              // another verb answered 403 Forbidden: the rule must not match
)

// event mirrors the field order kube-apiserver writes.
type event struct {
	Kind                     string            `json:"kind"`
	APIVersion               string            `json:"apiVersion"`
	Level                    string            `json:"level"`
	AuditID                  string            `json:"auditID"`
	Stage                    string            `json:"stage"`
	RequestURI               string            `json:"requestURI"`
	Verb                     string            `json:"verb"`
	User                     user              `json:"user"`
	ImpersonatedUser         *user             `json:"impersonatedUser,omitempty"`
	SourceIPs                []string          `json:"sourceIPs"`
	UserAgent                string            `json:"userAgent,omitempty"`
	ObjectRef                *objectRef        `json:"objectRef,omitempty"`
	ResponseStatus           status            `json:"responseStatus"`
	RequestObject            json.RawMessage   `json:"requestObject,omitempty"`
	ResponseObject           json.RawMessage   `json:"responseObject,omitempty"`
	RequestReceivedTimestamp string            `json:"requestReceivedTimestamp"`
	StageTimestamp           string            `json:"stageTimestamp"`
	Annotations              map[string]string `json:"annotations,omitempty"`
}

type user struct {
	Username string              `json:"username"`
	UID      string              `json:"uid,omitempty"`
	Groups   []string            `json:"groups"`
	Extra    map[string][]string `json:"extra,omitempty"`
}

type objectRef struct {
	Resource        string `json:"resource"`
	Namespace       string `json:"namespace,omitempty"`
	Name            string `json:"name,omitempty"`
	APIGroup        string `json:"apiGroup,omitempty"`
	APIVersion      string `json:"apiVersion"`
	ResourceVersion string `json:"resourceVersion,omitempty"`
	Subresource     string `json:"subresource,omitempty"`
}

type status struct {
	Metadata struct{}          `json:"metadata"`
	Status   string            `json:"status,omitempty"`
	Message  string            `json:"message,omitempty"`
	Reason   string            `json:"reason,omitempty"`
	Details  map[string]string `json:"details,omitempty"`
	Code     int               `json:"code"`
}

var namespaces = []string{"default", "kube-system", "payments", "checkout", "monitoring", "argocd", "ingress-nginx", "cert-manager"}

func (g *Generator) pick(list []string) string { return list[g.rng.IntN(len(list))] }

func (g *Generator) uuid() string {
	a, b := g.rng.Uint64(), g.rng.Uint64()
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", a>>32, a>>16&0xffff, a&0xfff, b>>48&0x3fff|0x8000, b&0xffffffffffff)
}

func (g *Generator) hex(n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[g.rng.IntN(16)]
	}
	return string(b)
}

func (g *Generator) serviceAccount() user {
	ns, name := g.pick(namespaces), g.pick([]string{"default", "argocd-application-controller", "prometheus", "cert-manager", "external-dns", "aws-load-balancer-controller", "payments-api"})
	return user{
		Username: "system:serviceaccount:" + ns + ":" + name,
		UID:      g.uuid(),
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
		Extra: map[string][]string{
			"authentication.kubernetes.io/pod-name": {name + "-" + g.hex(10)[:5] + "-" + g.hex(5)},
			"authentication.kubernetes.io/pod-uid":  {g.uuid()},
		},
	}
}

func (g *Generator) iamUser() user {
	name := g.pick([]string{"alice", "bob", "carol", "deploy-bot", "oncall"})
	key := "ASIA" + strings.ToUpper(g.hex(16))
	return user{
		Username: name,
		UID:      "aws-iam-authenticator:123456789012:AROA" + strings.ToUpper(g.hex(17)),
		Groups:   []string{"developers", "system:authenticated"},
		Extra: map[string][]string{
			"accessKeyId":  {key},
			"arn":          {"arn:aws:sts::123456789012:assumed-role/EKSDevelopers/" + name},
			"canonicalArn": {"arn:aws:iam::123456789012:role/EKSDevelopers"},
			"principalId":  {"AROA" + strings.ToUpper(g.hex(17))},
			"sessionName":  {name},
		},
	}
}

func (g *Generator) node() (user, string) {
	n := g.pick(g.nodes)
	return user{
		Username: "system:node:" + n,
		UID:      "aws-iam-authenticator:123456789012:AROA" + strings.ToUpper(g.hex(17)),
		Groups:   []string{"system:bootstrappers", "system:nodes", "system:authenticated"},
		Extra: map[string][]string{
			"accessKeyId":  {"ASIA" + strings.ToUpper(g.hex(16))},
			"arn":          {"arn:aws:sts::123456789012:assumed-role/eks-node-role/i-0" + g.hex(16)},
			"canonicalArn": {"arn:aws:iam::123456789012:role/eks-node-role"},
			"sessionName":  {"i-0" + g.hex(16)},
		},
	}, n
}

// eventID returns a CloudWatch Logs event id: 56 decimal digits.
func (g *Generator) eventID() string {
	b := make([]byte, 56)
	const digits = "0123456789"
	b[0] = digits[1+g.rng.IntN(9)]
	for i := 1; i < len(b); i++ {
		b[i] = digits[g.rng.IntN(10)]
	}
	return string(b)
}

// body is a Kubernetes object as a request or response body, sized like real ones.
func (g *Generator) body(kind, ns, name string) json.RawMessage {
	var data strings.Builder
	for i, n := 0, 2+g.rng.IntN(8); i < n; i++ {
		fmt.Fprintf(&data, `,"key-%d":"%s"`, i, base64.StdEncoding.EncodeToString([]byte(g.hex(24+g.rng.IntN(40)))))
	}
	return json.RawMessage(fmt.Sprintf(`{"kind":%q,"apiVersion":"v1","metadata":{"name":%q,"namespace":%q,"uid":%q,"resourceVersion":"%d","creationTimestamp":%q,"labels":{"app.kubernetes.io/name":%q,"app.kubernetes.io/managed-by":"Helm"},"managedFields":[{"manager":"helm","operation":"Update","apiVersion":"v1","time":%q,"fieldsType":"FieldsV1","fieldsV1":{"f:data":{".":{}}}}]},"data":{%s}}`,
		kind, name, ns, g.uuid(), 1000000+g.rng.IntN(9000000), g.now.Format(time.RFC3339), name, g.now.Format(time.RFC3339), strings.TrimPrefix(data.String(), ",")))
}

// Line returns one audit event as kube-apiserver writes it, and what kind of line it is.
func (g *Generator) Line() ([]byte, Kind) {
	g.seq++
	g.now = g.now.Add(time.Duration(2+g.rng.IntN(20)) * time.Millisecond)
	e := event{
		Kind: "Event", APIVersion: "audit.k8s.io/v1", Level: "Metadata", AuditID: g.uuid(),
		Stage: "ResponseComplete", SourceIPs: []string{g.pick(g.ips)},
		ResponseStatus: status{Code: 200},
		Annotations: map[string]string{
			"authorization.k8s.io/decision": "allow",
			"authorization.k8s.io/reason":   "",
		},
	}
	kind := KindAllowed
	ns := g.pick(namespaces)
	p := g.rng.IntN(1000)
	switch {
	case p < 10: // Forbidden create: RBAC denial, or admission refusing an allowed create.
		kind = KindForbiddenCreate
		res := g.pick([]string{"secrets", "pods", "clusterrolebindings", "serviceaccounts", "pods/exec"})
		e.Verb = "create"
		if g.rng.IntN(3) == 0 {
			e.User = user{Username: "system:anonymous", Groups: []string{"system:unauthenticated"}}
			e.SourceIPs = []string{"203.0.113." + fmt.Sprint(g.rng.IntN(254)+1)}
			e.UserAgent = "curl/8.5.0"
		} else {
			e.User = g.iamUser()
			e.UserAgent = "kubectl/v1.31.2 (linux/amd64) kubernetes/5864a46"
		}
		r, sub, _ := strings.Cut(res, "/")
		e.ObjectRef = &objectRef{Resource: r, Namespace: ns, APIVersion: "v1", Subresource: sub}
		e.RequestURI = "/api/v1/namespaces/" + ns + "/" + r + "?fieldManager=kubectl-create&fieldValidation=Strict"
		e.ResponseStatus = status{Status: "Failure", Reason: "Forbidden", Code: 403, Details: map[string]string{"kind": r},
			Message: fmt.Sprintf(`%s is forbidden: User "%s" cannot create resource "%s" in API group "" in the namespace "%s"`, r, e.User.Username, r, ns)}
		e.Annotations["authorization.k8s.io/decision"] = "forbid"
		if g.rng.IntN(4) == 0 { // admission: allowed by RBAC, refused by a quota
			e.Annotations["authorization.k8s.io/decision"] = "allow"
			e.ObjectRef.Name = "web-" + g.hex(5)
			e.ResponseStatus.Message = fmt.Sprintf(`%s "%s" is forbidden: exceeded quota: compute-resources`, r, e.ObjectRef.Name)
		}
	case p < 30: // forbidden reads, mostly anonymous scanners and misconfigured workloads
		kind = KindForbiddenOther
		e.Verb = g.pick([]string{"get", "list", "watch", "delete"})
		e.User = g.serviceAccount()
		e.UserAgent = "Go-http-client/2.0"
		e.ObjectRef = &objectRef{Resource: "secrets", Namespace: "kube-system", APIVersion: "v1"}
		e.RequestURI = "/api/v1/namespaces/kube-system/secrets?limit=500&resourceVersion=0"
		e.ResponseStatus = status{Status: "Failure", Reason: "Forbidden", Code: 403, Details: map[string]string{"kind": "secrets"},
			Message: fmt.Sprintf(`secrets is forbidden: User "%s" cannot %s resource "secrets" in API group "" in the namespace "kube-system"`, e.User.Username, e.Verb)}
		e.Annotations["authorization.k8s.io/decision"] = "forbid"
	case p < 50: // anonymous health probes
		e.Verb = "get"
		e.User = user{Username: "system:anonymous", Groups: []string{"system:unauthenticated"}}
		e.RequestURI = g.pick([]string{"/healthz", "/livez", "/readyz", "/version"})
		e.UserAgent = "kube-probe/1.31+"
		e.Annotations["authorization.k8s.io/reason"] = `RBAC: allowed by ClusterRoleBinding "system:public-info-viewer" of ClusterRole "system:public-info-viewer" to Group "system:unauthenticated"`
	case p < 400: // controllers renewing leases and reconciling
		comp := g.pick([]string{"kube-controller-manager", "kube-scheduler", "cloud-controller-manager", "eks-certificates-controller"})
		e.User = user{Username: "system:" + comp, Groups: []string{"system:authenticated"}}
		e.Verb = g.pick([]string{"update", "get", "get", "list", "watch"})
		e.UserAgent = comp + "/v1.31.2 (linux/amd64) kubernetes/5864a46/leader-election"
		e.ObjectRef = &objectRef{Resource: "leases", Namespace: "kube-system", Name: comp, APIGroup: "coordination.k8s.io", APIVersion: "v1"}
		e.RequestURI = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/" + comp + "?timeout=5s"
		e.Annotations["authorization.k8s.io/reason"] = `RBAC: allowed by ClusterRoleBinding "system:` + comp + `" of ClusterRole "system:` + comp + `" to User "system:` + comp + `"`
	case p < 650: // kubelets
		u, n := g.node()
		e.User = u
		e.Verb = g.pick([]string{"patch", "get", "update"})
		e.UserAgent = "kubelet/v1.31.2-eks-7f9249a (linux/amd64) kubernetes/7f9249a"
		pod := g.pick([]string{"coredns", "aws-node", "kube-proxy", "ebs-csi-node", "web"}) + "-" + g.hex(5)
		e.ObjectRef = &objectRef{Resource: "pods", Namespace: ns, Name: pod, APIVersion: "v1", Subresource: "status"}
		e.RequestURI = "/api/v1/namespaces/" + ns + "/pods/" + pod + "/status"
		if g.rng.IntN(2) == 0 {
			e.ObjectRef = &objectRef{Resource: "nodes", Name: n, APIVersion: "v1", Subresource: "status"}
			e.RequestURI = "/api/v1/nodes/" + n + "/status?timeout=10s"
		}
		e.Annotations["authorization.k8s.io/reason"] = ""
	case p < 900: // workloads' service accounts
		e.User = g.serviceAccount()
		e.Verb = g.pick([]string{"get", "list", "watch", "create", "update"})
		e.UserAgent = g.pick([]string{"argocd-application-controller/v0.0.0 (linux/amd64) kubernetes/$Format", "prometheus/2.54.1", "cert-manager-controller/v1.16.1 (linux/amd64) cert-manager/5bd6a7a", "Go-http-client/2.0"})
		res := g.pick([]string{"configmaps", "endpoints", "events", "pods", "secrets", "services"})
		e.ObjectRef = &objectRef{Resource: res, Namespace: ns, APIVersion: "v1"}
		e.RequestURI = "/api/v1/namespaces/" + ns + "/" + res + "?allowWatchBookmarks=true&resourceVersion=" + fmt.Sprint(g.rng.IntN(1e8)) + "&timeout=8m0s&timeoutSeconds=480&watch=true"
		if e.Verb == "create" {
			e.ResponseStatus.Code = 201
			e.RequestURI = "/api/v1/namespaces/" + ns + "/" + res
		}
		e.Annotations["authorization.k8s.io/reason"] = `RBAC: allowed by RoleBinding "` + res + `-reader/` + ns + `" of Role "` + res + `-reader" to ServiceAccount "` + e.User.Username + `"`
	default: // people with kubectl, some at RequestResponse level with bodies
		e.User = g.iamUser()
		e.Verb = g.pick([]string{"get", "list", "create", "update", "patch"})
		e.UserAgent = "kubectl/v1.31.2 (darwin/arm64) kubernetes/5864a46"
		name := "app-config-" + g.hex(4)
		e.ObjectRef = &objectRef{Resource: "configmaps", Namespace: ns, Name: name, APIVersion: "v1"}
		e.RequestURI = "/api/v1/namespaces/" + ns + "/configmaps/" + name
		if e.Verb == "create" {
			e.ResponseStatus.Code = 201
		}
		if g.rng.IntN(3) == 0 {
			e.Level = "RequestResponse"
			e.RequestObject = g.body("ConfigMap", ns, name)
			e.ResponseObject = g.body("ConfigMap", ns, name)
		}
		e.Annotations["authorization.k8s.io/reason"] = `EKS Access Policy: allowed by ClusterRoleBinding "developers" of ClusterRole "edit" to Group "developers"`
	}
	received := g.now.Add(-time.Duration(g.rng.IntN(5000)) * time.Microsecond)
	e.RequestReceivedTimestamp = received.Format("2006-01-02T15:04:05.000000Z")
	e.StageTimestamp = g.now.Format("2006-01-02T15:04:05.000000Z")
	if e.ResponseStatus.Code == 200 || e.ResponseStatus.Code == 201 {
		e.Annotations["pod-security.kubernetes.io/enforce-policy"] = "privileged:latest"
	}
	b, err := json.Marshal(e) // kube-apiserver escapes <, > and & as \u003c, \u003e, \u0026 too
	if err != nil {
		panic(fmt.Sprintf("workload: marshal audit event: %v", err)) // unreachable: plain types
	}
	return b, kind
}

// Delivery is one generated Lambda event and what it holds.
type Delivery struct {
	// Event is the Lambda event: {"awslogs":{"data":base64(gzip(subscription JSON))}}.
	Event []byte
	// Message is the inflated subscription message (DATA_MESSAGE JSON).
	Message []byte
	// Compressed is the gzip payload.
	Compressed []byte
	// Events is the number of log events; AuditBytes the total size of their lines.
	Events, AuditBytes int
	// ForbiddenCreates is the number of lines the rule matches; ForbiddenOther the
	// forbidden requests with other verbs.
	ForbiddenCreates, ForbiddenOther int
}

// BenchmarkDeliveries returns the n maximum-size deliveries the benchmarks run on, from
// seeds 1 to n: the Go benchmarks and the Node.js comparison read the same bytes.
func BenchmarkDeliveries(n int) []Delivery {
	ds := make([]Delivery, 0, n)
	for seed := uint64(1); len(ds) < n; seed++ {
		ds = append(ds, New(seed).Delivery(MaxDeliveryAuditBytes))
	}
	return ds
}

// MaxDeliveryAuditBytes is the audit JSON of a maximum-size delivery (about 1 MB of
// base64 with this generator's lines).
const MaxDeliveryAuditBytes = 5_200_000

// Delivery builds a CloudWatch Logs subscription Lambda event whose audit lines total
// about auditBytes (CloudWatch Logs caps one delivery at about 1 MB of base64, which is
// 6 to 7 MB of audit JSON).
func (g *Generator) Delivery(auditBytes int) Delivery {
	var lines [][]byte
	var kinds []Kind
	for size := 0; size < auditBytes; {
		line, kind := g.Line()
		lines = append(lines, line)
		kinds = append(kinds, kind)
		size += len(line)
	}
	return g.Wrap(lines, kinds)
}

// Wrap builds a CloudWatch Logs subscription Lambda event holding lines as its log
// events, each with a distinct event id; kinds[i] says what lines[i] is (for the counts
// of the Delivery). A line may appear several times: each copy is a separate log event.
func (g *Generator) Wrap(lines [][]byte, kinds []Kind) Delivery {
	var d Delivery
	m := cwlogs.Message{
		MessageType: cwlogs.DataMessage, Owner: "123456789012", LogGroup: "/aws/eks/prod/cluster",
		LogStream:           "kube-apiserver-audit-" + g.hex(32),
		SubscriptionFilters: []string{"unauthorized-access"},
	}
	for i, line := range lines {
		switch kinds[i] {
		case KindForbiddenCreate:
			d.ForbiddenCreates++
		case KindForbiddenOther:
			d.ForbiddenOther++
		}
		d.Events++
		d.AuditBytes += len(line)
		m.LogEvents = append(m.LogEvents, cwlogs.MessageEvent{
			ID:        g.eventID(),
			Timestamp: g.now.UnixMilli(),
			Message:   string(line),
		})
	}
	msg, err := m.Marshal()
	if err != nil {
		panic(fmt.Sprintf("workload: %v", err)) // strings always encode
	}
	d.Message = msg
	comp, err := cwlogs.Compress(d.Message, cwlogs.Gzip)
	if err != nil {
		panic(fmt.Sprintf("workload: %v", err)) // compressing into memory does not fail
	}
	d.Compressed = comp
	d.Event = cwlogs.SubscriptionEvent(comp)
	return d
}
