package alert

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kind is what an SNS message of this project is: the message attribute alertKind and the
// structured field of the same name.
type Kind string

// Kinds of message.
const (
	KindFirst      Kind = "first"      // the first alert of a group in a window
	KindEscalation Kind = "escalation" // an update: the group's attempts crossed a threshold
	KindReport     Kind = "report"     // a part of the hourly report
)

// maxEscalationValues bounds each list of new values in an update.
const maxEscalationValues = 20

// Escalation is what an update says grew since the previous alert of its group (the first
// alert, or the update of the highest lower threshold).
type Escalation struct {
	// Threshold is the number of attempts crossed.
	Threshold int64 `json:"threshold"`
	// From is the attempts the previous alert reported; To those counted now.
	From int64 `json:"from"`
	To   int64 `json:"to"`
	// New source IPs, resources and user agents, not in the previous alert (cleaned, at
	// most 20 each; the Omitted counts say how many more).
	NewSrcIPs            []string `json:"newSrcIps"`
	NewSrcIPsOmitted     int      `json:"newSrcIpsOmitted"`
	NewResources         []string `json:"newResources"`
	NewResourcesOmitted  int      `json:"newResourcesOmitted"`
	NewUserAgents        []string `json:"newUserAgents"`
	NewUserAgentsOmitted int      `json:"newUserAgentsOmitted"`
	// FirstAlertID is the id of the group's first alert in the window.
	FirstAlertID string `json:"firstAlertId"`
}

// EscalationID is the stable id of the update of the alert firstID at threshold: distinct
// from the first alert's, so subscribers that drop repeated ids keep it.
func EscalationID(firstID string, threshold int64) string {
	sum := sha256.Sum256([]byte(firstID + "\x00escalation\x00" + strconv.FormatInt(threshold, 10)))
	return hex.EncodeToString(sum[:])[:32]
}

// boundList cleans the first maxEscalationValues values and counts the rest.
func boundList(in []string, limit int) ([]string, int) {
	out := make([]string, 0, min(len(in), maxEscalationValues))
	for i, v := range in {
		if i == maxEscalationValues {
			return out, len(in) - i
		}
		out = append(out, clean(v, limit))
	}
	return out, 0
}

// RenderEscalation renders an update of alert a (as Build made it for the group now): the
// same channels and safety as the first alert, a subject and title that say it is an
// update, what grew at the top of every channel, and alertKind "escalation".
func RenderEscalation(a Alert, e Escalation) (Message, error) {
	e.NewSrcIPs, e.NewSrcIPsOmitted = boundList(e.NewSrcIPs, maxIP)
	e.NewResources, e.NewResourcesOmitted = boundList(e.NewResources, maxName)
	e.NewUserAgents, e.NewUserAgentsOmitted = boundList(e.NewUserAgents, maxLong)
	e.FirstAlertID = a.ID
	a.Kind = KindEscalation
	a.ID = EscalationID(a.ID, e.Threshold)
	a.Escalation = &e
	for {
		m, err := Render(a)
		if err != nil {
			return Message{}, err
		}
		m, err = asEscalation(m, a, e)
		if err != nil {
			return Message{}, err
		}
		if fits(m) || len(a.Aggregates) == 0 {
			return m, nil
		}
		// The update's text pushed the message over the limit: list fewer aggregates.
		n := len(a.Aggregates) / 2
		a.AggregatesOmitted += len(a.Aggregates) - n
		a.Aggregates = a.Aggregates[:n]
	}
}

// growth is the update's summary, one line per item, for e-mail and chat.
func growth(e Escalation, value func(string) string) []string {
	lines := []string{fmt.Sprintf("Attempts crossed %d: %d -> %d since the previous alert", e.Threshold, e.From, e.To)}
	for _, l := range []struct {
		label   string
		values  []string
		omitted int
	}{
		{"New source IPs", e.NewSrcIPs, e.NewSrcIPsOmitted},
		{"New resources", e.NewResources, e.NewResourcesOmitted},
		{"New user agents", e.NewUserAgents, e.NewUserAgentsOmitted},
	} {
		vs := make([]string, len(l.values))
		for i, v := range l.values {
			vs[i] = value(v)
		}
		if l.omitted > 0 {
			vs = append(vs, fmt.Sprintf("and %d more", l.omitted))
		}
		if len(vs) == 0 {
			vs = []string{"none"}
		}
		lines = append(lines, l.label+": "+strings.Join(vs, ", "))
	}
	return lines
}

// asEscalation turns the rendered first-alert form of a into its update.
func asEscalation(m Message, a Alert, e Escalation) (Message, error) {
	var body map[string]string
	if err := json.Unmarshal([]byte(m.Message), &body); err != nil {
		return Message{}, fmt.Errorf("decode rendered alert: %w", err)
	}
	var note strings.Builder
	note.WriteString("UPDATE to alert " + e.FirstAlertID + "\n")
	for _, l := range growth(e, func(s string) string { return s }) {
		note.WriteString(l + "\n")
	}
	body["email"] = note.String() + "\n" + body["email"]

	var cm chatbotMessage
	if err := json.Unmarshal([]byte(body["default"]), &cm); err != nil {
		return Message{}, fmt.Errorf("decode chatbot notification: %w", err)
	}
	cm.Content.Title = ":arrow_up: Update: " + strings.TrimPrefix(cm.Content.Title, ":rotating_light: ")
	var d strings.Builder
	for _, l := range growth(e, func(s string) string { return cv(s, maxChatValue) }) {
		d.WriteString("*" + strings.Replace(l, ":", ":*", 1) + "\n")
	}
	desc := d.String() + cm.Content.Description
	if utf8.RuneCountInString(desc) > maxChatDescription {
		desc = string([]rune(desc)[:maxChatDescription-1]) + "…"
	}
	cm.Content.Description = desc
	cm.Metadata.AdditionalContext["alertKind"] = string(KindEscalation)
	cm.Metadata.AdditionalContext["threshold"] = strconv.FormatInt(e.Threshold, 10)
	chatJSON, err := json.Marshal(cm)
	if err != nil {
		return Message{}, fmt.Errorf("encode chatbot notification: %w", err)
	}
	body["default"], body["https"] = string(chatJSON), string(chatJSON)
	out, err := json.Marshal(body)
	if err != nil {
		return Message{}, fmt.Errorf("encode message structure: %w", err)
	}
	m.Message = string(out)
	m.Subject = escalationSubject(a, e)
	m.MessageAttributes["threshold"] = Attribute{DataType: "Number", StringValue: strconv.FormatInt(e.Threshold, 10)}
	return m, nil
}

// escalationSubject is the update's e-mail subject: printable ASCII, at most MaxSubjectChars.
func escalationSubject(a Alert, e Escalation) string {
	s := "Update: " + strconv.FormatInt(e.Threshold, 10) + "+ attempts"
	if a.PossibleDuplicate {
		s += " (possible duplicate)"
	}
	return alertSubject(a, s+" - "+a.Title)
}
