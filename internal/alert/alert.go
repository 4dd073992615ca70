// Package alert builds risk alerts from aggregates and renders them into one SNS Publish
// input per alert: a short Subject, and a MessageStructure=json message with an AWS Chatbot
// custom notification (default, https), plain text (email) and versioned JSON (sqs, lambda).
//
// Every value copied from an audit event is attacker-controlled; rendering neutralises
// Slack mentions and links, markdown, control characters and over-long values.
package alert

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/detect"
)

// Group is everything known about one alert group when its alert is built.
type Group struct {
	Rule   detect.Rule
	Window time.Time // start of the hour, UTC
	Key    string    // alert group key (aggregate.Aggregate.Group)
	// Aggregates are the group's aggregates (from this delivery or, in the Lambda, as stored).
	Aggregates []aggregate.Aggregate
	// PossibleDuplicate says that an earlier attempt to send this alert may have reached
	// subscribers (its outcome was unknown): the alert goes out flagged, with the same id.
	PossibleDuplicate bool
	// WouldSuppress names the dry-run suppressions that would have suppressed events of
	// the group in the delivery that raised this alert.
	WouldSuppress []string
}

// Attribute is one SNS message attribute (DataType String or Number).
type Attribute struct {
	DataType    string `json:"DataType"`
	StringValue string `json:"StringValue"`
}

// Message is exactly the SNS Publish input for one alert (TopicArn aside).
type Message struct {
	Subject           string               `json:"Subject"`
	Message           string               `json:"Message"`
	MessageStructure  string               `json:"MessageStructure"`
	MessageAttributes map[string]Attribute `json:"MessageAttributes"`
}

// Size is the size SNS counts against its 256 KiB limit: the message, the subject and
// every attribute's name, data type and value, in bytes.
func (m Message) Size() int {
	n := len(m.Subject) + len(m.Message)
	for name, a := range m.MessageAttributes {
		n += len(name) + len(a.DataType) + len(a.StringValue)
	}
	return n
}

// SchemaVersion is the version of the structured alert delivered to sqs and lambda
// subscribers. It changes only when a field is removed or changes meaning.
const SchemaVersion = "1"

// Severity is the alert severity, derived from the risk score with the bands of
// Splunk Enterprise Security.
type Severity string

// Severities, from the risk score: 0-20, 21-40, 41-60, 61-80, 81-100.
const (
	SeverityInformational Severity = "informational"
	SeverityLow           Severity = "low"
	SeverityMedium        Severity = "medium"
	SeverityHigh          Severity = "high"
	SeverityCritical      Severity = "critical"
)

// SeverityOf maps a risk score to its severity band.
func SeverityOf(score int) Severity {
	switch {
	case score > 80:
		return SeverityCritical
	case score > 60:
		return SeverityHigh
	case score > 40:
		return SeverityMedium
	case score > 20:
		return SeverityLow
	default:
		return SeverityInformational
	}
}

// Options are the inputs of Build that do not come from the aggregates.
type Options struct {
	// Region is the AWS region of the log groups, used when an aggregate's Source.Region
	// is empty (the Lambda's own region); "" leaves the console link region-less.
	Region string
	// MaxAggregates caps the aggregates listed in an alert; 0 or less lists as many as fit
	// in one SNS message. Attempts always count every aggregate.
	MaxAggregates int
	// Now is the clock for Alert.GeneratedAt; nil means time.Now.
	Now func() time.Time
}

// Alert is the risk alert for one alert group, with every attacker-controlled value
// cleaned (valid UTF-8, no control or invisible characters, cut to a bounded length).
// Its JSON form is the structured alert delivered to sqs and lambda subscribers.
type Alert struct {
	SchemaVersion string     `json:"schemaVersion"`
	ID            string     `json:"id"` // stable per rule, window, group key and log group
	Title         string     `json:"title"`
	Rule          RuleRef    `json:"rule"`
	Severity      Severity   `json:"severity"`
	RiskScore     int        `json:"riskScore"`
	Impact        int        `json:"impact"`
	Confidence    int        `json:"confidence"`
	MITRE         MITRE      `json:"mitre"`
	RiskObject    RiskObject `json:"riskObject"`
	// ThreatObjects are the distinct source IPs, the peer addresses first, each part
	// sorted; at most MaxThreatObjects.
	ThreatObjects        []ThreatObject `json:"threatObjects"`
	ThreatObjectsOmitted int            `json:"threatObjectsOmitted"`
	// UserKind is what kind of user the risk object is (see UserKindOf).
	UserKind UserKind `json:"userKind"`
	// Identities are who was behind the requests, from user.extra (most recent first, at
	// most MaxIdentities; IdentitiesOmitted says how many more).
	Identities        []Identity `json:"identities"`
	IdentitiesOmitted int        `json:"identitiesOmitted"`
	// Namespaces are the distinct namespaces the requests targeted, sorted, at most
	// maxNamespaces (cluster-scoped requests have none).
	Namespaces []string  `json:"namespaces"`
	Source     Source    `json:"source"`
	Window     Window    `json:"window"`
	FirstSeen  time.Time `json:"firstSeen"`
	LastSeen   time.Time `json:"lastSeen"`
	// Attempts is the sum of the counts of all the group's aggregates: audit events, as the
	// Splunk search counts them.
	Attempts int64 `json:"attempts"`
	// Requests is the number of distinct requests among those events: the API server logs
	// a denied exec, attach or portforward twice (stages ResponseStarted and
	// ResponseComplete), and those count once here (see DistinctRequests).
	Requests int64 `json:"requests"`
	// AggregatesTotal is how many aggregates the group has; Aggregates lists the most
	// recent first, AggregatesOmitted says how many are not listed.
	AggregatesTotal   int         `json:"aggregatesTotal"`
	AggregatesOmitted int         `json:"aggregatesOmitted"`
	Aggregates        []Aggregate `json:"aggregates"`
	// Late is true when the alert was built LateAfter or more after its window ended: the
	// events arrived late (a delayed delivery, a redrive from the failure queue, a replay of
	// old logs). LateSeconds is how long after the window's end, 0 when not late.
	Late        bool  `json:"late"`
	LateSeconds int64 `json:"lateSeconds"`
	// PossibleDuplicate is true when an earlier attempt to send this alert may have been
	// delivered (SNS's answer was lost): subscribers that saw the same id can drop it.
	PossibleDuplicate bool `json:"possibleDuplicate"`
	// ConsoleURL opens CloudWatch Logs Insights with a query for this user over the window.
	ConsoleURL string `json:"consoleUrl"`
	// SuppressExample is a SUPPRESSIONS CEL expression that would silence this user.
	SuppressExample string    `json:"suppressExample"`
	NextSteps       []string  `json:"nextSteps"`
	GeneratedAt     time.Time `json:"generatedAt"`
	// Kind says whether this is the group's first alert or an update (added in schema 1:
	// consumers that ignore unknown fields are unaffected).
	Kind Kind `json:"alertKind"`
	// RiskMessage is the seed's risk message for the risk object ("Unauthorized access to
	// Kubernetes from user $user$").
	RiskMessage string `json:"riskMessage"`
	// Escalation says what grew since the previous alert of the group (updates only).
	Escalation *Escalation `json:"escalation,omitempty"`
	// WouldSuppressBy names the dry-run suppressions that would have suppressed events of
	// this alert had they been enforced, sorted (absent when none did).
	WouldSuppressBy []string `json:"wouldSuppressBy,omitempty"`
	// Flood lists the folded users of a "many users" alert (KindFlood only).
	Flood *Flood `json:"flood,omitempty"`
}

// RuleRef names the detection rule.
type RuleRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// MITRE is the ATT&CK technique and tactic of the rule.
type MITRE struct {
	TechniqueID string `json:"techniqueId"`
	Technique   string `json:"technique"`
	Tactic      string `json:"tactic"`
}

// RiskObject is the entity the risk is attributed to (the user).
type RiskObject struct {
	Field string `json:"field"` // output field name, "user"
	Type  string `json:"type"`  // "user"
	Value string `json:"value"`
}

// ThreatObject is one indicator seen with the risk (a source IP).
type ThreatObject struct {
	Field string `json:"field"` // output field name, "src_ip"
	Type  string `json:"type"`  // "ip_address"
	Value string `json:"value"`
	// Origin is OriginPeer when the API server saw a request come from this address (in
	// at least one request), else OriginClientSupplied; absent on report rows, where each
	// row has one address of its request's list.
	Origin string `json:"origin,omitempty"`
	// Class is ClassPublic, ClassPrivate, ClassLoopback, ClassLinkLocal, ClassOther or ClassInvalid.
	Class string `json:"class,omitempty"`
}

// Source says where the events were read.
type Source struct {
	Cluster   string `json:"cluster"`
	Account   string `json:"account"`
	Region    string `json:"region"`
	LogGroup  string `json:"logGroup"`
	LogStream string `json:"logStream"`
}

// Window is the hourly window of the alert, [Start, End).
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Aggregate is one row of the detection's stats clause: its count, when it was seen and
// its 13 by-fields, named as in the Splunk search output.
type Aggregate struct {
	Count     int64         `json:"count"`
	FirstSeen time.Time     `json:"firstSeen"`
	LastSeen  time.Time     `json:"lastSeen"`
	Fields    detect.Fields `json:"fields"`
	// Folded is true for the row into which the events past the bound on rows per group
	// and window (MAX_ROWS_PER_GROUP) are counted; of its fields only user and user.uid
	// are set.
	Folded bool `json:"folded,omitempty"`
}

// LateAfter is how long after its window's end an alert is marked late. EKS delivers
// audit logs within minutes, and the seed's hourly search reads its window up to 70
// minutes back: an alert an hour or more after its window ended is not news of now.
const LateAfter = time.Hour

// MaxThreatObjects caps the source IPs listed in one alert (forwarded addresses are
// attacker-chosen, so their number is too).
const MaxThreatObjects = 50

// Length limits, in characters, of cleaned values.
const (
	maxName    = 256  // user, uid, groups, cluster, namespace, resource and similar
	maxLong    = 1024 // user agent, request URI, response message
	maxIP      = 64
	maxList    = 20 // items of a multi-value field in one aggregate
	maxSources = 512
	// maxNamespaces caps the namespaces of an alert (and of its namespace attribute).
	maxNamespaces = 20
)

// Build builds the alert for one group. It is pure apart from opts.Now.
func Build(g Group, opts Options) Alert {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	aggs := slices.Clone(g.Aggregates)
	// Most recent first; the key makes the order total, so goldens are stable.
	slices.SortStableFunc(aggs, func(x, y aggregate.Aggregate) int {
		if c := y.LastSeen.Compare(x.LastSeen); c != 0 {
			return c
		}
		if c := y.FirstSeen.Compare(x.FirstSeen); c != 0 {
			return c
		}
		return cmp.Compare(x.Key, y.Key)
	})

	a := Alert{
		SchemaVersion:   SchemaVersion,
		Rule:            RuleRef{ID: clean(g.Rule.ID, maxName), Name: clean(g.Rule.Name, maxName)},
		Severity:        SeverityOf(g.Rule.RiskScore),
		RiskScore:       g.Rule.RiskScore,
		Impact:          g.Rule.Impact,
		Confidence:      g.Rule.Confidence,
		MITRE:           MITRE{TechniqueID: g.Rule.MitreID, Technique: g.Rule.MitreTechnique, Tactic: g.Rule.MitreTactic},
		Window:          Window{Start: g.Window.UTC(), End: g.Window.UTC().Add(aggregate.WindowSize)},
		AggregatesTotal: len(aggs),
		GeneratedAt:     now().UTC(),
		// Empty lists are [] in JSON, never null.
		ThreatObjects: []ThreatObject{},
		Aggregates:    []Aggregate{},
		Namespaces:    []string{},
	}

	var rawUser string
	peer := map[string]bool{} // every source IP; true when it was a request's peer
	namespaces := map[string]bool{}
	for i, ag := range aggs {
		a.Attempts += ag.Count
		if i == 0 {
			rawUser = ag.Fields.User
			a.Source = Source{
				Cluster:   clean(ag.Source.Cluster, maxName),
				Account:   clean(ag.Source.Owner, maxName),
				Region:    clean(ag.Source.Region, maxName),
				LogGroup:  clean(ag.Source.LogGroup, maxSources),
				LogStream: clean(ag.Source.LogStream, maxSources),
			}
		}
		if !ag.FirstSeen.IsZero() && (a.FirstSeen.IsZero() || ag.FirstSeen.Before(a.FirstSeen)) {
			a.FirstSeen = ag.FirstSeen.UTC()
		}
		if ag.LastSeen.After(a.LastSeen) {
			a.LastSeen = ag.LastSeen.UTC()
		}
		for i, ip := range ag.Fields.SrcIPs {
			ip = clean(ip, maxIP)
			peer[ip] = peer[ip] || i == len(ag.Fields.SrcIPs)-1
		}
		if ns := ag.Fields.Namespace; ns != detect.FillValue && ns != "" {
			namespaces[clean(ns, maxName)] = true
		}
		if opts.MaxAggregates <= 0 || len(a.Aggregates) < opts.MaxAggregates {
			a.Aggregates = append(a.Aggregates, cleanAggregate(ag))
		}
	}
	if a.Source.Region == "" {
		a.Source.Region = clean(opts.Region, maxName)
	}
	a.PossibleDuplicate = g.PossibleDuplicate
	if len(g.WouldSuppress) > 0 {
		a.WouldSuppressBy = cleanList(slices.Compact(slices.Sorted(slices.Values(g.WouldSuppress))), maxName)
	}
	if late := a.GeneratedAt.Sub(a.Window.End); late >= LateAfter {
		a.Late, a.LateSeconds = true, int64(late/time.Second)
	}
	a.AggregatesOmitted = a.AggregatesTotal - len(a.Aggregates)
	a.Requests = DistinctRequests(aggs)

	// Peers first: a forged X-Forwarded-For list can be long, and must not push the
	// addresses the API server saw out of the alert.
	ips := slices.Sorted(maps.Keys(peer))
	slices.SortStableFunc(ips, func(x, y string) int { return -cmp.Compare(b2i(peer[x]), b2i(peer[y])) })
	for _, ip := range ips {
		if len(a.ThreatObjects) == MaxThreatObjects {
			a.ThreatObjectsOmitted++
			continue
		}
		origin := OriginClientSupplied
		if peer[ip] {
			origin = OriginPeer
		}
		a.ThreatObjects = append(a.ThreatObjects, ThreatObject{Field: g.Rule.ThreatObject, Type: "ip_address", Value: ip, Origin: origin, Class: classify(ip)})
	}
	for _, ns := range slices.Sorted(maps.Keys(namespaces)) {
		if len(a.Namespaces) < maxNamespaces {
			a.Namespaces = append(a.Namespaces, ns)
		}
	}
	a.Identities, a.IdentitiesOmitted = identities(aggs, a.Source.Region)
	if len(aggs) > 0 {
		f := aggs[0].Fields
		a.UserKind = UserKindOf(f.User, f.UID, f.Groups, a.Identities)
	}

	user := clean(rawUser, maxName)
	a.RiskObject = RiskObject{Field: g.Rule.RiskObject, Type: "user", Value: user}
	a.Title = clean(strings.ReplaceAll(g.Rule.RiskMessage, "$user$", user), maxLong)
	a.Kind, a.RiskMessage = KindFirst, a.Title
	a.ID = alertID(g, a.Source.LogGroup)
	a.ConsoleURL = InsightsURL(a.Source.Region, logGroups(g.Aggregates), rawUser, a.Window.Start, a.Window.End)
	a.SuppressExample = suppressExample(rawUser)
	a.NextSteps = nextSteps(a, strconv.Quote, func(s string) string { return s }, a.ConsoleURL)
	return a
}

// DistinctRequests counts the distinct requests of aggregates. The stages of one request
// share its every by-field but stage (requestReceivedTimestamp, with microseconds,
// included; and its auditID), so they fall into aggregates that differ only in stage: for
// each set of such aggregates the requests are the largest count among its stages, not
// their sum. The counts are exact under redelivery (the store counts each log event once),
// so this is too, and needs nothing more stored. An aggregate is one request in practice;
// two requests alike to the microsecond count as many as the stage seen most often.
func DistinctRequests(aggs []aggregate.Aggregate) int64 {
	most := map[string]int64{}
	for _, ag := range aggs {
		f := ag.Fields
		f.Stage = ""
		k := aggregate.KeyOf(ag.Source, f)
		most[k] = max(most[k], ag.Count)
	}
	var n int64
	for _, c := range most {
		n += c
	}
	return n
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// cleanAggregate copies an aggregate with every field cleaned and bounded.
func cleanAggregate(ag aggregate.Aggregate) Aggregate {
	f := ag.Fields
	return Aggregate{
		Folded:    ag.Folded(),
		Count:     ag.Count,
		FirstSeen: ag.FirstSeen.UTC(),
		LastSeen:  ag.LastSeen.UTC(),
		Fields: detect.Fields{
			Namespace:                clean(f.Namespace, maxName),
			Resource:                 clean(f.Resource, maxName),
			RequestReceivedTimestamp: clean(f.RequestReceivedTimestamp, maxIP),
			RequestURI:               clean(f.RequestURI, maxLong),
			Code:                     clean(f.Code, maxIP),
			Message:                  clean(f.Message, maxLong),
			SrcIPs:                   cleanList(f.SrcIPs, maxIP),
			Stage:                    clean(f.Stage, maxName),
			Groups:                   cleanList(f.Groups, maxName),
			UID:                      clean(f.UID, maxName),
			User:                     clean(f.User, maxName),
			UserAgent:                clean(f.UserAgent, maxLong),
			Verb:                     clean(f.Verb, maxName),
		},
	}
}

// cleanList cleans each item and keeps at most maxList, saying how many were dropped
// before the last item, which is always kept (the last source IP is the peer address).
func cleanList(in []string, limit int) []string {
	out := make([]string, 0, min(len(in), maxList+1))
	for i, s := range in {
		if i == maxList-1 && len(in) > maxList {
			out = append(out, omittedMarker(len(in)-maxList), clean(in[len(in)-1], limit))
			break
		}
		out = append(out, clean(s, limit))
	}
	return out
}

// alertID is a stable identifier of the alert: the same group in the same window always
// gets the same id, so subscribers can deduplicate the rare duplicate delivery.
func alertID(g Group, logGroup string) string {
	h := sha256.New()
	for _, s := range []string{g.Rule.ID, g.Window.UTC().Format(time.RFC3339), g.Key, logGroup} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// maxLogGroupName is CloudWatch Logs' limit on a log group name, in characters.
const maxLogGroupName = 512

// logGroups lists the distinct log groups of the aggregates, sorted. A name longer than
// CloudWatch Logs allows is no log group a query could name, and is left out.
func logGroups(aggs []aggregate.Aggregate) []string {
	var out []string
	for _, ag := range aggs {
		if n := utf8.RuneCountInString(ag.Source.LogGroup); n > 0 && n <= maxLogGroupName && !slices.Contains(out, ag.Source.LogGroup) {
			out = append(out, ag.Source.LogGroup)
		}
	}
	slices.Sort(out)
	return out
}
