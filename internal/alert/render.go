package alert

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/eks-unauthorized-access/detector/internal/detect"
)

// MaxPublishBytes is SNS's limit on one Publish: message, subject and attributes.
const MaxPublishBytes = 256 * 1024

// sizeMargin is kept free below MaxPublishBytes for the parts SNS may count that Size
// does not (none are documented; the margin costs a few aggregates at most).
const sizeMargin = 1024

// Limits of the AWS Chatbot custom notification. Slack renders a message section of at
// most 3,000 characters, so the description stays within that whatever the platform.
const (
	MaxSubjectChars      = 99 // SNS: "less than 100 characters"
	maxChatTitle         = 250
	maxChatDescription   = 3000
	maxChatSummary       = 250
	maxChatKeyword       = 50
	maxChatContextValue  = 256
	maxChatValue         = 120 // one value inside a description line
	maxChatLongValue     = 200 // message, URI, user agent inside a description line
	maxChatAggregateRows = 10
	maxChatIdentities    = 2
)

// ErrTooLarge is returned when an alert does not fit in one SNS message even without
// aggregates (it cannot happen with the length limits applied by Build).
var ErrTooLarge = errors.New("alert does not fit in one SNS message")

// Render renders the alert into one SNS Publish input (MessageStructure "json"). When the
// whole message would exceed MaxPublishBytes, aggregates are dropped from the end (the
// oldest) until it fits, and every channel says how many were omitted.
func Render(a Alert) (Message, error) {
	hi := notFitting(a)
	if hi > len(a.Aggregates) {
		msg, err := renderN(a, len(a.Aggregates))
		if err != nil {
			return Message{}, err
		}
		if fits(msg) {
			return msg, nil
		}
		hi = len(a.Aggregates)
	}
	// Binary search for the largest number of aggregates that fits: size grows with n,
	// and renderN(a, hi) is known not to fit.
	lo := 0
	var best Message
	found := false
	for lo < hi {
		mid := (lo + hi) / 2
		m, err := renderN(a, mid)
		if err != nil {
			return Message{}, err
		}
		if fits(m) {
			best, found = m, true
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if !found {
		return Message{}, fmt.Errorf("render alert %s: %w", a.ID, ErrTooLarge)
	}
	return best, nil
}

// notFitting returns a number of aggregates that certainly does not fit (each listed
// aggregate is carried at least twice, in sqs and lambda), or len+1 when all might fit.
// It keeps Render from encoding thousands of aggregates only to drop them.
func notFitting(a Alert) int {
	total := 0
	for i, ag := range a.Aggregates {
		b, err := json.Marshal(ag)
		if err != nil {
			break
		}
		total += 2 * len(b)
		if total > MaxPublishBytes {
			return i + 1
		}
	}
	return len(a.Aggregates) + 1
}

func fits(m Message) bool { return m.Size() <= MaxPublishBytes-sizeMargin }

// renderN renders the alert with its first n aggregates.
func renderN(a Alert, n int) (Message, error) {
	a.AggregatesOmitted += len(a.Aggregates) - n
	a.Aggregates = a.Aggregates[:n]

	structured, err := json.Marshal(a)
	if err != nil {
		return Message{}, fmt.Errorf("encode structured alert: %w", err)
	}
	notification, err := json.Marshal(chatbotNotification(a))
	if err != nil {
		return Message{}, fmt.Errorf("encode chatbot notification: %w", err)
	}
	body, err := json.Marshal(map[string]string{
		"default": string(notification),
		"https":   string(notification),
		"email":   emailText(a),
		"sqs":     string(structured),
		"lambda":  string(structured),
	})
	if err != nil {
		return Message{}, fmt.Errorf("encode message structure: %w", err)
	}
	return Message{
		Subject:           subjectLine(a),
		Message:           string(body),
		MessageStructure:  "json",
		MessageAttributes: attributes(a),
	}, nil
}

// subjectLine is the e-mail subject of a first alert (see alertSubject).
func subjectLine(a Alert) string {
	s := a.Title
	if a.PossibleDuplicate {
		s = "(possible duplicate) " + s
	}
	return alertSubject(a, s)
}

// maxSubjectCluster bounds the cluster name in a subject, in characters.
const maxSubjectCluster = 40

// alertSubject is "[SEVERITY] <cluster>: <text>", fitted by fitSubject: the cluster comes
// first, so a long user name cannot push it out.
func alertSubject(a Alert, text string) string {
	s := "[" + strings.ToUpper(string(a.Severity)) + "] "
	if c := subjectASCII(a.Source.Cluster); c != "" {
		if len(c) > maxSubjectCluster {
			c = c[:maxSubjectCluster-3] + "..."
		}
		s += c + ": "
	}
	return fitSubject(s + subjectASCII(text))
}

// subjectMentions replaces Slack's control sequences and mentions (<!channel>, <@U123>,
// @here) with printable ASCII that has no meaning: a subject can reach a chat channel too.
var subjectMentions = strings.NewReplacer("<", "(", ">", ")", "@", "(at)")

// subjectASCII makes s printable ASCII with no link, host name or mention: defanged before
// the ASCII filter, so a non-ASCII host name shows as punycode, not "?".
func subjectASCII(s string) string { return subject(subjectMentions.Replace(defang(s))) }

// fitSubject cuts an ASCII subject to MaxSubjectChars.
func fitSubject(s string) string {
	if len(s) > MaxSubjectChars {
		s = s[:MaxSubjectChars-3] + "..."
	}
	return s
}

// MaxAttributes is the most message attributes a message carries: SNS discards a message
// with more than 10 attributes for an SQS subscription with raw message delivery.
const MaxAttributes = 10

// attributes are the SNS message attributes subscribers can filter on (9, so that an
// update's threshold attribute still fits within MaxAttributes).
func attributes(a Alert) map[string]Attribute {
	str := func(v string) Attribute {
		if v == "" {
			v = "unknown" // SNS rejects empty attribute values
		}
		return Attribute{DataType: "String", StringValue: v}
	}
	attrs := map[string]Attribute{
		"severity": str(string(a.Severity)),
		"cluster":  str(a.Source.Cluster),
		"account":  str(a.Source.Account),
		"user":     str(a.RiskObject.Value),
		"userKind": str(string(a.UserKind)),
		// alertId and possibleDuplicate let a subscriber drop a repeated alert.
		"alertId":           str(a.ID),
		"possibleDuplicate": str(strconv.FormatBool(a.PossibleDuplicate)),
		// alertKind lets a subscriber filter updates and reports out.
		"alertKind": str(string(a.Kind)),
	}
	// The namespaces as a String.Array: a filter policy value matches when it matches any
	// of them. Cluster-scoped requests only: no attribute (SNS rejects empty values).
	if len(a.Namespaces) > 0 {
		if b, err := json.Marshal(a.Namespaces); err == nil {
			attrs["namespace"] = Attribute{DataType: "String.Array", StringValue: string(b)}
		}
	}
	return attrs
}

// chatbotNotification is an AWS Chatbot (Amazon Q Developer in chat applications)
// custom notification.
type chatbotMessage struct {
	Version  string          `json:"version"`
	Source   string          `json:"source"`
	ID       string          `json:"id"`
	Content  chatbotContent  `json:"content"`
	Metadata chatbotMetadata `json:"metadata"`
}

type chatbotContent struct {
	TextType    string   `json:"textType"`
	Title       string   `json:"title"`
	Description string   `json:"description"`
	NextSteps   []string `json:"nextSteps"`
	Keywords    []string `json:"keywords"`
}

type chatbotMetadata struct {
	ThreadID          string            `json:"threadId"`
	Summary           string            `json:"summary"`
	EventType         string            `json:"eventType"`
	AdditionalContext map[string]string `json:"additionalContext"`
}

// cv formats an already cleaned value for chat markdown, cut to limit characters.
func cv(s string, limit int) string {
	if s == "" {
		return "-"
	}
	return chat(s, limit)
}

func chatbotNotification(a Alert) chatbotMessage {
	user := cv(a.RiskObject.Value, maxChatValue)
	title := ":rotating_light: " + chat(a.Title, maxChatTitle-20)

	var d strings.Builder
	fmt.Fprintf(&d, "*User:* %s (%s)\n", user, a.UserKind)
	if a.Flood != nil {
		fmt.Fprintf(&d, "*Many users:* %s\n", floodText(a.Flood, func(s string) string { return cv(s, maxChatValue) }))
	}
	for i, id := range a.Identities {
		if i == maxChatIdentities {
			fmt.Fprintf(&d, "_%d more identit%s in the e-mail and JSON alert._\n", len(a.Identities)-i+a.IdentitiesOmitted, pluralY(len(a.Identities)-i+a.IdentitiesOmitted))
			break
		}
		for _, kv := range identityLines(id, func(s string) string { return cv(s, maxChatValue) }) {
			fmt.Fprintf(&d, "*%s:* %s\n", kv[0], kv[1])
		}
	}
	fmt.Fprintf(&d, "*Cluster:* %s   *Account:* %s   *Region:* %s\n",
		cv(a.Source.Cluster, maxChatValue), cv(a.Source.Account, maxChatValue), cv(a.Source.Region, maxChatValue))
	fmt.Fprintf(&d, "*Severity:* %s, risk score %d (impact %d, confidence %d)\n", a.Severity, a.RiskScore, a.Impact, a.Confidence)
	fmt.Fprintf(&d, "*MITRE:* %s %s, tactic %s\n", chat(a.MITRE.TechniqueID, 20), chat(a.MITRE.Technique, 60), chat(a.MITRE.Tactic, 60))
	fmt.Fprintf(&d, "*Window:* %s to %s UTC, first seen %s, last seen %s\n",
		a.Window.Start.Format("2006-01-02 15:04"), a.Window.End.Format("15:04"), clock(a.FirstSeen), clock(a.LastSeen))
	if a.Late {
		fmt.Fprintf(&d, "*Late:* %s\n", lateNote(a))
	}
	if a.PossibleDuplicate {
		fmt.Fprintf(&d, "*Possible duplicate:* %s\n", duplicateNote)
	}
	if len(a.WouldSuppressBy) > 0 {
		names := make([]string, len(a.WouldSuppressBy))
		for i, n := range a.WouldSuppressBy {
			names[i] = chat(n, maxChatValue)
		}
		fmt.Fprintf(&d, "*Dry run:* would be suppressed by %s\n", strings.Join(names, ", "))
	}
	fmt.Fprintf(&d, "*Attempts:* %s\n", attemptsText(a))
	fmt.Fprintf(&d, "*Source IPs:* %s\n", chatIPs(a))
	d.WriteString("*Most recent denied requests:*\n")

	listed := 0
	for _, ag := range a.Aggregates {
		line := chatAggregate(ag)
		// Keep room for the closing line.
		if listed == maxChatAggregateRows || utf8.RuneCountInString(d.String())+utf8.RuneCountInString(line)+100 > maxChatDescription {
			break
		}
		d.WriteString(line)
		listed++
	}
	if more := a.AggregatesTotal - listed; more > 0 {
		fmt.Fprintf(&d, "_%d more aggregate%s in the e-mail and JSON alert._\n", more, plural(more))
	}
	if a.AggregatesOmitted > 0 {
		fmt.Fprintf(&d, "_%d aggregate%s omitted from this message to stay under 256 KB._\n", a.AggregatesOmitted, plural(a.AggregatesOmitted))
	}

	return chatbotMessage{
		Version: "1.0",
		Source:  "custom",
		ID:      a.ID,
		Content: chatbotContent{
			TextType:    "client-markdown",
			Title:       title,
			Description: strings.TrimSuffix(d.String(), "\n"),
			NextSteps:   nextSteps(a, chatQuoted, chatCode, a.ConsoleURL),
			Keywords: []string{
				"Kubernetes", chat(a.MITRE.TechniqueID, maxChatKeyword), string(a.Severity),
				cv(a.Source.Cluster, maxChatKeyword),
			},
		},
		Metadata: chatbotMetadata{
			ThreadID:  threadID(a),
			Summary:   chat(a.Title, maxChatSummary),
			EventType: "KubernetesUnauthorizedAccess",
			AdditionalContext: map[string]string{
				"rule":      chat(a.Rule.ID, maxChatContextValue),
				"severity":  string(a.Severity),
				"riskScore": strconv.Itoa(a.RiskScore),
				"user":      chat(a.RiskObject.Value, maxChatContextValue),
				"cluster":   chat(a.Source.Cluster, maxChatContextValue),
				"account":   chat(a.Source.Account, maxChatContextValue),
				"region":    chat(a.Source.Region, maxChatContextValue),
				"window":    a.Window.Start.Format(time.RFC3339),
				"attempts":  strconv.FormatInt(a.Attempts, 10),
				"requests":  strconv.FormatInt(a.Requests, 10),
				"alertId":   a.ID,
			},
		},
	}
}

// chatQuoted shows an attacker-controlled value in quotes, neutralised as everywhere else
// in chat: Microsoft Teams renders no inline code, so a code span is no protection.
func chatQuoted(s string) string { return `"` + chat(s, maxChatValue) + `"` }

// chatCode shows the suppression example as inline code, verbatim: celString writes it
// with no character that has a meaning in chat (no dot, "@", ":", "<", "*", "`" …), so it
// is inert in Slack and Teams alike and can be copied exactly.
func chatCode(s string) string { return "`" + s + "`" }

// threadID threads the alerts of one user on one cluster together in the chat channel.
func threadID(a Alert) string {
	return alertID(Group{Key: a.RiskObject.Value}, a.Source.Cluster+"\x00"+a.Source.Account)[:16]
}

// chatAggregate is one bullet line of the chat description.
func chatAggregate(ag Aggregate) string {
	f := ag.Fields
	var b strings.Builder
	if ag.Folded {
		fmt.Fprintf(&b, "• %d× %s (last %s)\n", ag.Count, foldedNote, clock(ag.LastSeen))
		return b.String()
	}
	where := "cluster-wide"
	if f.Namespace != detect.FillValue && f.Namespace != "" {
		where = "in " + cv(f.Namespace, 60)
	}
	fmt.Fprintf(&b, "• %d× %s %s %s → %s from %s (last %s)",
		ag.Count, cv(f.Verb, 20), cv(f.Resource, 60), where, cv(f.Code, 10),
		cv(strings.Join(f.SrcIPs, ", "), maxChatValue), clock(ag.LastSeen))
	if f.Message != "" && f.Message != "0" {
		fmt.Fprintf(&b, "\n      %s", cv(f.Message, maxChatLongValue))
	}
	fmt.Fprintf(&b, "\n      URI %s, agent %s\n", cv(f.RequestURI, maxChatLongValue), cv(f.UserAgent, maxChatValue))
	return b.String()
}

func chatIPs(a Alert) string {
	ips := make([]string, 0, len(a.ThreatObjects))
	for i, t := range a.ThreatObjects {
		if i == 10 {
			ips = append(ips, fmt.Sprintf("and %d more", len(a.ThreatObjects)-10+a.ThreatObjectsOmitted))
			break
		}
		ips = append(ips, cv(t.Value, maxIP)+" ("+addressNote(t)+")")
	}
	if len(ips) == 0 {
		return "-"
	}
	return strings.Join(ips, ", ")
}

// attemptsText says how many distinct requests were denied, and how many audit events
// (the Splunk count) and aggregates they make.
func attemptsText(a Alert) string {
	s := fmt.Sprintf("%d distinct request%s", a.Requests, plural(int(a.Requests)))
	if a.Requests != a.Attempts {
		s += fmt.Sprintf(" (%d audit events: the stages of one exec, attach or portforward count once)", a.Attempts)
	}
	return s + fmt.Sprintf(" in %d aggregate%s", a.AggregatesTotal, plural(a.AggregatesTotal))
}

// floodText lists the folded users of a "many users" alert.
func floodText(f *Flood, value func(string) string) string {
	s := fmt.Sprintf("%d or more alert groups in this window, the first %d alerted one by one; folded here, most attempts first:", f.Groups, f.MaxGroups)
	for i, u := range f.Users {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprintf(" %s (%d)", value(u.User), u.Attempts)
	}
	if f.UsersOmitted > 0 {
		s += fmt.Sprintf(" and %d more", f.UsersOmitted)
	}
	return s
}

// addressNote says where an address comes from and what kind it is, in words.
func addressNote(t ThreatObject) string {
	origin := "peer, seen by the API server"
	if t.Origin == OriginClientSupplied {
		origin = "client-supplied"
	}
	return origin + ", " + t.Class
}

// identityLines are the label and value lines of one identity; value formats a value for
// the channel. The links are the renderer's own, built from values of a checked shape.
func identityLines(id Identity, value func(string) string) [][2]string {
	var out [][2]string
	add := func(label, v string) {
		if v != "" {
			out = append(out, [2]string{label, v})
		}
	}
	if id.Kind == IdentityServiceAccount {
		pod := ""
		if id.PodName != "" || id.PodUID != "" {
			pod = value(id.PodName) + " (uid " + value(id.PodUID) + ")"
		}
		add("Token of pod", pod)
		if id.NodeName != "" {
			add("Node", value(id.NodeName))
		}
		if id.CredentialID != "" {
			add("Token id", value(id.CredentialID))
		}
		return out
	}
	if id.CanonicalARN != "" {
		add("IAM identity", value(id.CanonicalARN))
	}
	if id.ARN != "" && id.ARN != id.CanonicalARN {
		add("Caller ARN", value(id.ARN))
	}
	if id.SessionName != "" {
		add("Session", value(id.SessionName)+" (chosen by the caller: not proof of a person)")
	}
	if id.AccessKeyID != "" {
		add("Access key", value(id.AccessKeyID))
	}
	add("CloudTrail", id.CloudTrailURL)
	add("IAM console", id.IAMURL)
	return out
}

// nextSteps are the short instructions of every channel. value formats a value taken
// from the audit log for the channel, code formats an expression to copy; url is the
// console link, never cut.
func nextSteps(a Alert, value, code func(string) string, url string) []string {
	if a.Flood != nil {
		return floodSteps(a.Flood, url)
	}
	uid := "-"
	if len(a.Aggregates) > 0 {
		uid = a.Aggregates[0].Fields.UID
	}
	suppress := "If this activity is known and expected, suppress it by adding a CEL expression to SUPPRESSIONS, for example " + code(a.SuppressExample) + "."
	if a.SuppressExample == "" {
		suppress = "If this activity is known and expected, suppress it by adding a CEL expression to SUPPRESSIONS (this user name starts with bytes that are not UTF-8, so no example is given)."
	}
	who := "Find out who is behind user " + value(a.RiskObject.Value) + " (uid " + value(uid) + "): on EKS the uid names the IAM identity " +
		"(aws-iam-authenticator:ACCOUNT:ID); look it up in CloudTrail and in the cluster's access entries or aws-auth ConfigMap."
	if len(a.Identities) > 0 {
		who = whoStep(a, a.Identities[0], value)
	}
	return []string{
		who,
		"Check the source IPs: the peer address of each request is the one the API server saw; " +
			"client-supplied ones come from X-Forwarded-For or X-Real-Ip and can be forged.",
		"Look for a create by the same user that succeeded (code 201) after the denials: it would mean the user found a way in. " +
			"Query every create by this user in this window in CloudWatch Logs Insights: " + url,
		suppress,
	}
}

// whoStep is the first next step when user.extra named the identity behind the requests.
func whoStep(a Alert, id Identity, value func(string) string) string {
	user := value(a.RiskObject.Value)
	if id.Kind == IdentityServiceAccount {
		return "User " + user + " is a service-account token bound to pod " + value(id.PodName) + " on node " + value(id.NodeName) +
			": check what that pod runs and whether the token was copied out of it (compare the peer address with the pod and node addresses)."
	}
	s := "User " + user + " is the IAM identity " + value(cmp.Or(id.CanonicalARN, id.ARN))
	if id.SessionName != "" {
		s += ", session " + value(id.SessionName) + " (a name the caller chose, not proof of a person)"
	}
	if id.AccessKeyID != "" {
		s += ", access key " + value(id.AccessKeyID)
	}
	s += "."
	if id.CloudTrailURL != "" {
		s += " See what else it did in CloudTrail event history: " + id.CloudTrailURL
	}
	if id.IAMURL != "" {
		s += " Its permissions and who may assume it: " + id.IAMURL
	}
	if more := len(a.Identities) - 1 + a.IdentitiesOmitted; more > 0 {
		s += fmt.Sprintf(" (%d other identit%s in this alert.)", more, pluralY(more))
	}
	return s
}

// maxEmailValue bounds a value in the e-mail above anything Build lets through (a list of
// maxList names joined), so that the e-mail never cuts a value again.
const maxEmailValue = (maxList + 1) * (maxName + 2)

// emailValue neutralises an attacker-controlled value for the e-mail (see email).
func emailValue(s string) string { return email(s, maxEmailValue) }

// emailQuoted is emailValue in quotes, for values inside a sentence.
func emailQuoted(s string) string { return `"` + emailValue(s) + `"` }

// emailText is the plain-text alert for e-mail subscribers. Every value copied from an
// audit event goes through emailValue: mail clients turn URLs, host names and addresses in
// plain text into links.
func emailText(a Alert) string {
	var b strings.Builder
	line := func(label, value string) {
		if value == "" {
			value = "-"
		}
		fmt.Fprintf(&b, "%-13s %s\n", label+":", value)
	}
	ev := emailValue
	b.WriteString(ev(a.Title) + "\n\n")
	line("Rule", ev(a.Rule.Name)+" ("+ev(a.Rule.ID)+")")
	line("Severity", fmt.Sprintf("%s (risk score %d = impact %d x confidence %d / 100)", a.Severity, a.RiskScore, a.Impact, a.Confidence))
	line("MITRE ATT&CK", fmt.Sprintf("%s %s, tactic %s", a.MITRE.TechniqueID, a.MITRE.Technique, a.MITRE.Tactic))
	line("Risk object", a.RiskObject.Field+" = "+ev(a.RiskObject.Value))
	ips := make([]string, len(a.ThreatObjects))
	for i, t := range a.ThreatObjects {
		ips[i] = ev(t.Value) + " (" + addressNote(t) + ")"
	}
	if a.ThreatObjectsOmitted > 0 {
		ips = append(ips, fmt.Sprintf("and %d more", a.ThreatObjectsOmitted))
	}
	line("Source IPs", strings.Join(ips, ", "))
	line("User kind", string(a.UserKind))
	if a.Flood != nil {
		line("Many users", floodText(a.Flood, ev))
	}
	for _, id := range a.Identities {
		b.WriteString("\n")
		for _, kv := range identityLines(id, ev) {
			line(kv[0], kv[1])
		}
	}
	if a.IdentitiesOmitted > 0 {
		line("Identities", fmt.Sprintf("and %d more", a.IdentitiesOmitted))
	}
	b.WriteString("\n")
	line("Cluster", ev(a.Source.Cluster))
	line("Account", ev(a.Source.Account))
	line("Region", ev(a.Source.Region))
	line("Log group", ev(a.Source.LogGroup))
	line("Log stream", ev(a.Source.LogStream))
	b.WriteString("\n")
	line("Window", a.Window.Start.Format(time.RFC3339)+" to "+a.Window.End.Format(time.RFC3339))
	if a.Late {
		line("Late", lateNote(a))
	}
	if a.PossibleDuplicate {
		line("Duplicate", "possible: "+duplicateNote)
	}
	if len(a.WouldSuppressBy) > 0 {
		names := make([]string, len(a.WouldSuppressBy))
		for i, n := range a.WouldSuppressBy {
			names[i] = ev(n)
		}
		line("Dry run", "would be suppressed by "+strings.Join(names, ", "))
	}
	line("First seen", stamp(a.FirstSeen))
	line("Last seen", stamp(a.LastSeen))
	line("Attempts", attemptsText(a))
	b.WriteString("\nNext steps:\n")
	// The example is inert as written (celString); the console link is the renderer's own.
	for i, s := range nextSteps(a, emailQuoted, func(s string) string { return s }, a.ConsoleURL) {
		fmt.Fprintf(&b, "%d. %s\n", i+1, s)
	}
	fmt.Fprintf(&b, "\nDenied requests, most recent first (%d of %d):\n", len(a.Aggregates), a.AggregatesTotal)
	for i, ag := range a.Aggregates {
		f := ag.Fields
		fmt.Fprintf(&b, "\n#%d  count %d, first seen %s, last seen %s\n", i+1, ag.Count, stamp(ag.FirstSeen), stamp(ag.LastSeen))
		if ag.Folded {
			fmt.Fprintf(&b, "    %s\n", foldedNote)
			continue
		}
		for _, kv := range [][2]string{
			{"user", f.User},
			{"user.uid", f.UID},
			{"user.groups{}", strings.Join(f.Groups, ", ")},
			{"src_ip", strings.Join(f.SrcIPs, ", ")},
			{"verb", f.Verb},
			{"objectRef.resource", f.Resource},
			{"objectRef.namespace", f.Namespace},
			{"requestURI", f.RequestURI},
			{"responseStatus.code", f.Code},
			{"responseStatus.message", f.Message},
			{"stage", f.Stage},
			{"requestReceivedTimestamp", f.RequestReceivedTimestamp},
			{"userAgent", f.UserAgent},
		} {
			fmt.Fprintf(&b, "    %-25s %s\n", kv[0]+":", ev(kv[1]))
		}
	}
	if a.AggregatesOmitted > 0 {
		fmt.Fprintf(&b, "\n%d older aggregate%s omitted to keep this message under 256 KB.\n", a.AggregatesOmitted, plural(a.AggregatesOmitted))
	}
	b.WriteString("\nAlert id " + a.ID + ", generated " + a.GeneratedAt.Format(time.RFC3339) + ".\n")
	return b.String()
}

// foldedNote explains the overflow row of a group (Aggregate.Folded).
const foldedNote = "requests of the rows past the bound on rows per alert group and hour (MAX_ROWS_PER_GROUP), counted in one row"

// duplicateNote explains the possible-duplicate flag.
const duplicateNote = "an earlier attempt to send this alert (same alert id) may already have reached you; SNS's answer to it was lost"

// lateNote says how late an alert is, in words.
func lateNote(a Alert) string {
	return "the window ended " + age(time.Duration(a.LateSeconds)*time.Second) +
		" before this alert (a delayed delivery, a redrive from the failure queue or a replay of old logs)"
}

// age is a duration in whole days, hours or minutes, rounded down.
func age(d time.Duration) string {
	n, unit := int64(d/time.Minute), "minute"
	switch {
	case d >= 48*time.Hour:
		n, unit = int64(d/(24*time.Hour)), "day"
	case d >= 2*time.Hour:
		n, unit = int64(d/time.Hour), "hour"
	}
	if n != 1 {
		unit += "s"
	}
	return strconv.FormatInt(n, 10) + " " + unit
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("15:04:05Z")
}

func pluralY(n int) string {
	if n == 1 {
		return "y"
	}
	return "ies"
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// Structured returns the structured alert that m carries for sqs and lambda subscribers:
// the versioned JSON alert (or report part) that the other outputs (EventBridge, Security
// Hub) are built from, so that every destination says the same thing.
func Structured(m Message) (json.RawMessage, error) {
	var body map[string]string
	if err := json.Unmarshal([]byte(m.Message), &body); err != nil {
		return nil, fmt.Errorf("decode message structure: %w", err)
	}
	s, ok := body["sqs"]
	if !ok || !json.Valid([]byte(s)) {
		return nil, errors.New("decode message structure: no structured alert for sqs")
	}
	return json.RawMessage(s), nil
}

// KindOf returns the kind of message m (its alertKind attribute).
func KindOf(m Message) Kind { return Kind(m.MessageAttributes["alertKind"].StringValue) }
