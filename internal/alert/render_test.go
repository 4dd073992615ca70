package alert

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
)

// channels decodes the MessageStructure=json body into its per-protocol messages.
func channels(t testing.TB, m Message) map[string]string {
	t.Helper()
	var ch map[string]string
	if err := json.Unmarshal([]byte(m.Message), &ch); err != nil {
		t.Fatalf("Message is not a JSON object of strings: %v", err)
	}
	return ch
}

func indent(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := json.Indent(&b, []byte(s), "", "  "); err != nil {
		t.Fatalf("channel is not JSON: %v", err)
	}
	b.WriteByte('\n')
	return b.Bytes()
}

func TestRenderGolden(t *testing.T) {
	m, err := Render(Build(sampleGroup(), Options{Now: fixedNow}))
	if err != nil {
		t.Fatal(err)
	}
	if m.MessageStructure != "json" {
		t.Errorf("MessageStructure = %q, want json", m.MessageStructure)
	}
	ch := channels(t, m)
	if got, want := slices.Sorted(maps.Keys(ch)), []string{"default", "email", "https", "lambda", "sqs"}; !slices.Equal(got, want) {
		t.Fatalf("channels = %v, want %v", got, want)
	}
	if ch["default"] != ch["https"] || ch["sqs"] != ch["lambda"] {
		t.Error("default and https, sqs and lambda must carry the same message")
	}
	checkGolden(t, "subject.golden", []byte(m.Subject+"\n"))
	checkGolden(t, "chatbot.golden", indent(t, ch["https"]))
	checkGolden(t, "email.golden", []byte(ch["email"]))
	checkGolden(t, "structured.golden", indent(t, ch["sqs"]))
	attrs, err := json.MarshalIndent(m.MessageAttributes, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "attributes.golden", append(attrs, '\n'))
}

func TestChatbotNotificationShape(t *testing.T) {
	m, err := Render(Build(sampleGroup(), Options{Now: fixedNow}))
	if err != nil {
		t.Fatal(err)
	}
	var n struct {
		Version string `json:"version"`
		Source  string `json:"source"`
		Content struct {
			TextType    string   `json:"textType"`
			Title       string   `json:"title"`
			Description string   `json:"description"`
			NextSteps   []string `json:"nextSteps"`
			Keywords    []string `json:"keywords"`
		} `json:"content"`
		Metadata struct {
			Summary           string            `json:"summary"`
			EventType         string            `json:"eventType"`
			AdditionalContext map[string]string `json:"additionalContext"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(channels(t, m)["https"]), &n); err != nil {
		t.Fatal(err)
	}
	if n.Version != "1.0" || n.Source != "custom" || n.Content.TextType != "client-markdown" {
		t.Errorf("version/source/textType = %q/%q/%q, want 1.0/custom/client-markdown", n.Version, n.Source, n.Content.TextType)
	}
	if !strings.Contains(n.Content.Title, "Unauthorized access to Kubernetes from user alice") {
		t.Errorf("title = %q", n.Content.Title)
	}
	for _, want := range []string{"12 distinct requests in 3 aggregates", "10.0.12.7 (peer, seen by the API server, private), 203.0.113.9 (client-supplied, public)",
		"*IAM identity:* arn∶aws∶iam∶∶111122223333∶role/Developer", "(chosen by the caller: not proof of a person)", "*Access key:* ASIAQEXAMPLEKEY00001",
		"*CloudTrail:* https://eu-west-1.console.aws.amazon.com/cloudtrailv2/home?region=eu-west-1#/events?AccessKeyId=ASIAQEXAMPLEKEY00001", "risk score 49", "T1204"} {
		if !strings.Contains(n.Content.Description, want) {
			t.Errorf("description lacks %q:\n%s", want, n.Content.Description)
		}
	}
	if len(n.Content.NextSteps) == 0 || len(n.Content.Keywords) == 0 || n.Metadata.Summary == "" || n.Metadata.EventType == "" {
		t.Error("nextSteps, keywords, summary and eventType must be set")
	}
	if n.Metadata.AdditionalContext["user"] != "alice" || n.Metadata.AdditionalContext["cluster"] != "prod" {
		t.Errorf("additionalContext = %v", n.Metadata.AdditionalContext)
	}
}

func TestRenderAttributes(t *testing.T) {
	g := sampleGroup()
	for i := range g.Aggregates {
		g.Aggregates[i].Source.Cluster = ""
		g.Aggregates[i].Fields.User = "eve\n\u202e"
	}
	m, err := Render(Build(g, Options{Now: fixedNow}))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Attribute{
		"severity":          {DataType: "String", StringValue: "medium"},
		"cluster":           {DataType: "String", StringValue: "unknown"},
		"account":           {DataType: "String", StringValue: "111122223333"},
		"namespace":         {DataType: "String.Array", StringValue: `["kube-system"]`},
		"userKind":          {DataType: "String", StringValue: "iam"},
		"user":              {DataType: "String", StringValue: "eve⟨U+000A⟩⟨U+202E⟩"},
		"alertId":           {DataType: "String", StringValue: Build(g, Options{Now: fixedNow}).ID},
		"possibleDuplicate": {DataType: "String", StringValue: "false"},
		"alertKind":         {DataType: "String", StringValue: "first"},
	}
	if !maps.Equal(m.MessageAttributes, want) {
		t.Errorf("attributes = %v, want %v", m.MessageAttributes, want)
	}
}

// TestPossibleDuplicate: a flagged alert keeps its id and says so in the subject, every
// channel and the attributes; an unflagged one says nothing of it.
func TestPossibleDuplicate(t *testing.T) {
	plain := Build(sampleGroup(), Options{Now: fixedNow})
	g := sampleGroup()
	g.PossibleDuplicate = true
	dup := Build(g, Options{Now: fixedNow})
	if dup.ID != plain.ID || !dup.PossibleDuplicate || plain.PossibleDuplicate {
		t.Fatalf("ids %s/%s, flags %v/%v: want the same id, flagged once", plain.ID, dup.ID, plain.PossibleDuplicate, dup.PossibleDuplicate)
	}
	for _, tc := range []struct {
		a    Alert
		want bool
	}{{plain, false}, {dup, true}} {
		m, err := Render(tc.a)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(m.Subject, "(possible duplicate)"); got != tc.want {
			t.Errorf("subject %q: flagged %v, want %v", m.Subject, got, tc.want)
		}
		ch := channels(t, m)
		for _, name := range []string{"email", "https"} {
			if got := strings.Contains(ch[name], "may already have reached you"); got != tc.want {
				t.Errorf("%s channel flagged %v, want %v", name, got, tc.want)
			}
		}
		if got := strings.Contains(ch["sqs"], `"possibleDuplicate":true`); got != tc.want {
			t.Errorf("structured alert flagged %v, want %v", got, tc.want)
		}
		if got := m.MessageAttributes["possibleDuplicate"].StringValue; got != map[bool]string{true: "true", false: "false"}[tc.want] {
			t.Errorf("possibleDuplicate attribute %q, want %v", got, tc.want)
		}
	}
}
