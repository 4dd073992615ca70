package alert

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/suppress"
)

// TestSuppressExampleCanBeCopied checks that the suppression example shown in each channel,
// copied as a reader would, compiles and suppresses exactly the alert's user.
func TestSuppressExampleCanBeCopied(t *testing.T) {
	chatSpan := regexp.MustCompile("for example `([^`]*)`")
	emailSpan := regexp.MustCompile(`(?m)for example (.*)\.$`)
	for _, user := range []string{
		"alice",
		"system:serviceaccount:ci:deployer",
		"aws-iam-authenticator:111122223333:AROAEXAMPLEID",
		"alice@example.com",
		`we"ird\name_with*markup~`,
		"www.evil-login.example/reset https://evil.example/x <!here> @here",
		"admin\u202egpj.exe\nFAKE \u0430\U0001F600",
		strings.Repeat("long.name-", 25), // longer than a chat value (120 characters)
	} {
		g := sampleGroup()
		for i := range g.Aggregates {
			g.Aggregates[i].Fields.User = user
		}
		channels, structured := rendered(t, g)
		var chat chatbotMessage
		if err := json.Unmarshal([]byte(channels["https"]), &chat); err != nil {
			t.Fatal(err)
		}
		examples := map[string]string{"sqs": structured.SuppressExample}
		for _, step := range chat.Content.NextSteps {
			if sm := chatSpan.FindStringSubmatch(step); sm != nil {
				examples["https"] = sm[1]
			}
		}
		if sm := emailSpan.FindStringSubmatch(channels["email"]); sm != nil {
			examples["email"] = sm[1]
		}
		if _, ok := examples["https"]; !ok {
			t.Fatalf("%q: no suppression example in the chat next steps %q", user, chat.Content.NextSteps)
		}
		if len(examples) != 3 {
			t.Fatalf("%q: examples found %q, want sqs, https and email", user, examples)
		}
		for channel, expr := range examples {
			if expr != "user == "+celString(user) {
				t.Errorf("%q: %s example %q is not exact", user, channel, expr)
			}
			f, err := suppress.Compile([]string{expr})
			if err != nil {
				t.Errorf("%q: %s example %q does not compile: %v", user, channel, expr, err)
				continue
			}
			match := func(u string) detect.Match {
				return detect.Match{Fields: detect.Fields{User: u, SrcIPs: []string{"192.0.2.1"}}}
			}
			if !f.Suppress(match(user), aggregate.Source{}) {
				t.Errorf("%q: %s example %q does not suppress the user", user, channel, expr)
			}
			if f.Suppress(match(user+"x"), aggregate.Source{}) || f.Suppress(match(strings.ToUpper(user)+"Y"), aggregate.Source{}) {
				t.Errorf("%q: %s example %q suppresses another user", user, channel, expr)
			}
		}
	}
}
