package alert

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// TestWouldSuppress: the dry-run entries that would have suppressed the alert are a
// structured field of the JSON alert and a line of the e-mail and of the chat message.
func TestWouldSuppress(t *testing.T) {
	g := sampleGroup()
	g.WouldSuppress = []string{"try-scanner", "ci-deployer", "try-scanner"}
	channels, a := rendered(t, g)
	if want := []string{"ci-deployer", "try-scanner"}; !slices.Equal(a.WouldSuppressBy, want) {
		t.Errorf("wouldSuppressBy = %q, want %q", a.WouldSuppressBy, want)
	}
	if !strings.Contains(channels["email"], "Dry run:      would be suppressed by ci-deployer, try-scanner\n") {
		t.Errorf("e-mail lacks the dry-run line:\n%s", channels["email"])
	}
	if !strings.Contains(channels["https"], "*Dry run:* would be suppressed by ci-deployer, try-scanner") {
		t.Errorf("chat message lacks the dry-run line:\n%s", channels["https"])
	}

	// Without dry-run entries the field is absent.
	channels, _ = rendered(t, sampleGroup())
	for ch, text := range channels {
		if strings.Contains(text, "wouldSuppressBy") || strings.Contains(text, "Dry run") {
			t.Errorf("%s message of an alert without dry-run entries mentions them:\n%s", ch, text)
		}
	}
}

// rendered renders g's alert and returns the message of each channel and the structured
// alert.
func rendered(t *testing.T, g Group) (map[string]string, Alert) {
	t.Helper()
	m, err := Render(Build(g, Options{Now: fixedNow}))
	if err != nil {
		t.Fatal(err)
	}
	var channels map[string]string
	if err := json.Unmarshal([]byte(m.Message), &channels); err != nil {
		t.Fatal(err)
	}
	var a Alert
	if err := json.Unmarshal([]byte(channels["sqs"]), &a); err != nil {
		t.Fatal(err)
	}
	return channels, a
}
