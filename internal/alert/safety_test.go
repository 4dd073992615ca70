package alert

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// hostile values an attacker can place in audit events (user names come from the
// authenticator, but user agents, URIs, forwarded IPs and the echoed names in response
// messages are the client's choice).
var hostile = []string{
	"<!channel> <!here> <!everyone> <@U012AB3CD> <#C0123|general> <!subteam^S123>",
	"<http://evil.example/login|Open the AWS console> <https://evil.example>",
	"@channel @here @everyone @alice",
	"`rm -rf /` ```block``` *bold* _italic_ ~strike~ > quote [click](http://evil.example)",
	"line1\r\nSeverity: informational\nFAKE: ignore this alert",
	"\x00\x07\x1b[31mred\x1b[0m\x7f\u0085",
	"admin\u202egpj.exe \u2066isolate\u2069 \u200bzero\u200dwidth\ufeff \u2028sep\u2029",
	"tag\U000E0041\U000E0042 filler\u3164\u115f pua\ue000",
	"bad utf8 \xff\xfe\xc0\xaf end",
	`quote" | filter 1=1 | display @message \`,
	"tilde~paren(')~'",
}

// groupWith places v in every attacker-influenced field of the sample group.
func groupWith(v string) Group {
	g := sampleGroup()
	for i := range g.Aggregates {
		ag := &g.Aggregates[i]
		f := &ag.Fields
		f.User, f.UID, f.Namespace, f.Resource, f.Verb, f.Stage = v, v, v, v, v, v
		f.UserAgent, f.RequestURI, f.Message, f.RequestReceivedTimestamp, f.Code = v, v, v, v, v
		f.SrcIPs = []string{v, "10.0.0.1"}
		f.Groups = []string{v}
		ag.Source.Cluster, ag.Source.Owner, ag.Source.LogGroup, ag.Source.LogStream = v, v, v, v
	}
	return g
}

func TestHostileValuesAreNeutralised(t *testing.T) {
	long := strings.Repeat("Mozilla/5.0 <!channel> ", 450) // 10 KB user agent
	for _, v := range append(hostile, long) {
		name := v
		if len(name) > 30 {
			name = name[:30]
		}
		t.Run(name, func(t *testing.T) {
			g := groupWith(v)
			g.Aggregates[0].Fields.UserAgent = long
			m, err := Render(Build(g, Options{Now: fixedNow}))
			if err != nil {
				t.Fatal(err)
			}
			checkSafe(t, m)
			if strings.Contains(m.Message, strings.Repeat("Mozilla/5.0 <!channel> ", 50)) {
				t.Error("the 10 KB user agent was not cut")
			}
			if !strings.Contains(channels(t, m)["email"], "more]") {
				t.Error("cut values carry no visible marker")
			}
		})
	}
}

// checkSafe asserts the invariants every rendered alert holds, whatever its input.
func checkSafe(t testing.TB, m Message) {
	t.Helper()
	if m.Size() > MaxPublishBytes {
		t.Errorf("message size %d exceeds %d", m.Size(), MaxPublishBytes)
	}
	if n := len(m.Subject); n == 0 || n > MaxSubjectChars {
		t.Errorf("subject length %d, want 1..%d", n, MaxSubjectChars)
	}
	for _, c := range []byte(m.Subject) {
		if c < 0x20 || c > 0x7e {
			t.Errorf("subject has non-printable or non-ASCII byte %#x: %q", c, m.Subject)
		}
	}
	for name, a := range m.MessageAttributes {
		if a.StringValue == "" || (a.DataType != "String" && a.DataType != "Number") {
			t.Errorf("attribute %s = %+v is not a valid SNS attribute", name, a)
		}
		checkText(t, "attribute "+name, a.StringValue, false)
	}
	ch := channels(t, m)
	checkText(t, "email", ch["email"], true)
	for _, name := range []string{"sqs", "https"} {
		var v any
		if err := json.Unmarshal([]byte(ch[name]), &v); err != nil {
			t.Fatalf("%s channel is not JSON: %v", name, err)
		}
		for _, s := range stringsIn(v) {
			checkText(t, name, s, name == "https")
			if name == "https" {
				checkChat(t, s)
			}
		}
	}
}

// checkText fails on invalid UTF-8 and on hidden characters (newlines allowed in
// multi-line texts, which are the renderer's own).
func checkText(t testing.TB, where, s string, multiline bool) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Errorf("%s: invalid UTF-8 in %q", where, s)
	}
	for _, r := range s {
		if r == '\n' && multiline {
			continue
		}
		if hidden(r) {
			t.Errorf("%s: hidden character %U survives in %q", where, r, s)
			return
		}
	}
	if multiline && strings.Contains(s, "\nFAKE") {
		t.Errorf("%s: a value forged a line: %q", where, s)
	}
}

// consoleLink matches the CloudWatch console links the renderer writes.
var consoleLink = regexp.MustCompile(`https://[a-z0-9.-]*console\.(aws\.amazon\.com|amazonaws\.cn|amazonaws-us-gov\.com)/\S*`)

// checkChat fails on anything Slack or Teams would interpret in a value: control
// sequences, mentions, entities, links and the markup of the hostile inputs. Inside the
// renderer's inline code spans (values are never allowed a backtick, so the spans are
// exactly the odd segments between backticks) Slack interprets no markup and no links,
// so only what could end the span, open a control sequence or notify a channel counts.
func checkChat(t testing.TB, s string) {
	t.Helper()
	for i, seg := range strings.Split(s, "`") {
		if i%2 == 1 {
			for _, bad := range []string{"<", ">", "&", "\n"} {
				if strings.Contains(seg, bad) {
					t.Errorf("chat code span keeps %q: %q", bad, s)
				}
			}
			if broadcastMention.MatchString(seg) {
				t.Errorf("chat code span keeps a broadcast mention: %q", s)
			}
			continue
		}
		// The console link is the renderer's own; a value only appears in its fragment.
		seg = consoleLink.ReplaceAllString(seg, "CONSOLE-LINK")
		for _, bad := range []string{"<", ">", "@", "&", "](", "*bold*", "_italic_", "~strike~", "```", "evil.example"} {
			if strings.Contains(seg, bad) {
				t.Errorf("chat text keeps %q: %q", bad, s)
			}
		}
	}
	if strings.Count(s, "`")%2 != 0 {
		t.Errorf("chat text has an unbalanced code span: %q", s)
	}
}

func stringsIn(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			out = append(out, stringsIn(e)...)
		}
		return out
	case map[string]any:
		var out []string
		for k, e := range v {
			out = append(out, k)
			out = append(out, stringsIn(e)...)
		}
		return out
	}
	return nil
}

func TestClean(t *testing.T) {
	for _, c := range []struct {
		in    string
		limit int
		want  string
	}{
		{"alice", 10, "alice"},
		{"a\nb", 10, "a⟨U+000A⟩b"},
		{"x\u202ey", 10, "x⟨U+202E⟩y"},
		{"z\u200bw", 10, "z⟨U+200B⟩w"},
		{"\xff", 10, "⟨0xFF⟩"},
		{"ünïcödé", 10, "ünïcödé"},
		{"abcdefghij", 4, "abcd…[6 more]"},
		{"ab\ncd", 4, "ab…[3 more]"}, // an escape is never split
	} {
		if got := clean(c.in, c.limit); got != c.want {
			t.Errorf("clean(%q, %d) = %q, want %q", c.in, c.limit, got, c.want)
		}
	}
}

func TestChat(t *testing.T) {
	for in, want := range map[string]string{
		"<!channel>":                "‹!channel›",
		"@here":                     "＠here",
		"<http://evil.example|ok>":  "‹http∶//evil\u2024example∣ok›",
		"www.evil.example/login":    "www\u2024evil\u2024example/login",
		"10.0.12.4 kubectl/v1.34.2": "10.0.12.4 kubectl/v1.34.2",
		"*b* _i_ ~s~ `c`":           "∗b∗ ＿i＿ ∼s∼ ˋcˋ",
		"[x](http://e)":             "［x］(http∶//e)",
		"system:serviceaccount:a:b": "system∶serviceaccount∶a∶b",
	} {
		if got := chat(in, 100); got != want {
			t.Errorf("chat(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		`user == "system:serviceaccount:ci:deployer"`:  `user == "system:serviceaccount:ci:deployer"`,
		"a`b <!here> @here @Channel alice@example.com": "aˋb ‹!here› ＠here ＠Channel alice@example.com",
	} {
		if got := chatCodeValue(in, 100); got != want {
			t.Errorf("chatCodeValue(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSubject(t *testing.T) {
	g := sampleGroup()
	for i := range g.Aggregates {
		g.Aggregates[i].Fields.User = strings.Repeat("é\u202e", 100)
	}
	m, err := Render(Build(g, Options{Now: fixedNow}))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Subject) != MaxSubjectChars || !strings.HasSuffix(m.Subject, "...") || !strings.HasPrefix(m.Subject, "[MEDIUM] Unauthorized access") {
		t.Errorf("subject = %q (%d chars), want a cut at %d ending in ...", m.Subject, len(m.Subject), MaxSubjectChars)
	}
	checkSafe(t, m)
}

func TestSuppressExample(t *testing.T) {
	for in, want := range map[string]string{
		"alice":                       `user == "alice"`,
		`x" || true || "`:             `user == "x\" || true || \""`,
		"line\nbreak\u202e":           `user == "line\nbreak\u202e"`,
		"system:serviceaccount:ns:sa": `user == "system:serviceaccount:ns:sa"`,
	} {
		if got := suppressExample(in); got != want {
			t.Errorf("suppressExample(%q) = %s, want %s", in, got, want)
		}
	}
	if got := suppressExample(strings.Repeat("a", 1000)); got != `user.startsWith("`+strings.Repeat("a", maxName)+`")` {
		t.Errorf("long user example = %s", got)
	}
}
