package alert

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestRenderEscalation: an update keeps every channel of the first alert, says it is an
// update in the subject, the chat title and the e-mail, carries what grew in the
// structured JSON, has its own stable id, and neutralises the new attacker-controlled
// values like any other.
func TestRenderEscalation(t *testing.T) {
	a := Build(sampleGroup(), Options{Now: fixedNow})
	e := Escalation{
		Threshold: 100, From: 12, To: 130,
		NewSrcIPs:     []string{"198.51.100.7"},
		NewResources:  []string{"secrets"},
		NewUserAgents: []string{"evil\u202e <!here> agent"},
	}
	m, err := RenderEscalation(a, e)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.Subject, "Update: 100+ attempts") || len(m.Subject) > MaxSubjectChars {
		t.Errorf("subject %q", m.Subject)
	}
	if got := m.MessageAttributes["alertKind"].StringValue; got != "escalation" {
		t.Errorf("alertKind = %q", got)
	}
	if got := m.MessageAttributes["threshold"]; got.DataType != "Number" || got.StringValue != "100" {
		t.Errorf("threshold attribute = %+v", got)
	}
	var body map[string]string
	if err := json.Unmarshal([]byte(m.Message), &body); err != nil {
		t.Fatal(err)
	}
	var s Alert
	if err := json.Unmarshal([]byte(body["sqs"]), &s); err != nil {
		t.Fatal(err)
	}
	if s.Kind != KindEscalation || s.Escalation == nil || s.Escalation.From != 12 || s.Escalation.To != 130 ||
		s.Escalation.FirstAlertID != a.ID || s.ID != EscalationID(a.ID, 100) || s.ID == a.ID {
		t.Errorf("structured update = kind %q, id %q, escalation %+v", s.Kind, s.ID, s.Escalation)
	}
	if s.RiskScore != 49 || s.RiskObject.Field != "user" || s.RiskMessage == "" || len(s.ThreatObjects) == 0 {
		t.Errorf("risk fields missing: %+v", s)
	}
	if !strings.HasPrefix(body["email"], "UPDATE to alert "+a.ID) || !strings.Contains(body["email"], "12 -> 130") {
		t.Errorf("e-mail does not start with the update:\n%.300s", body["email"])
	}
	if strings.Contains(body["email"], "\u202e") || strings.Contains(body["default"], "<!here>") {
		t.Error("an attacker-controlled value reached a channel unneutralised")
	}
	var cm chatbotMessage
	if err := json.Unmarshal([]byte(body["default"]), &cm); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(cm.Content.Title, ":arrow_up: Update: ") || !strings.HasPrefix(cm.Content.Description, "*Attempts crossed 100:*") {
		t.Errorf("chat title %q, description %.80q", cm.Content.Title, cm.Content.Description)
	}
	if !fits(m) {
		t.Error("update larger than one SNS message")
	}
}
