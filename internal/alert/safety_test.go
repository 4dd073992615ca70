package alert

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/eks-unauthorized-access/detector/internal/audit"
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
	// Links for Microsoft Teams, which renders no inline code, and for mail clients.
	"www.evil-login.example/reset https://evil.example/x [t](https://evil.example) :emoji: @user",
	"aws.amazon.com evil．com evil。com evil｡com e\u0301.com 😀.example evil\u2024com",
	"\u0430ws.amazon.com http://\u0430ws.amazon.com/console",
	"inv\u034fis\u17b4ib\u180ble\u180f \ufff0\u2065 \U000E0100",
	"x" + strings.Repeat(" ", 60) + "FAKE: spaces push this onto a line of its own",
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
		// Both kinds of identity: an IAM one, and a service-account token's pod and node.
		ag.Identity = audit.Identity{ARN: v, CanonicalARN: v, SessionName: v, AccessKeyID: v, PrincipalID: v}
		if i == 1 {
			ag.Identity = audit.Identity{PodName: v, PodUID: v, NodeName: v, CredentialID: v}
		}
	}
	// Suppression names are the operator's, and checked when loaded; they are still
	// rendered as safely as the rest.
	g.WouldSuppress = []string{v}
	return g
}

// forEachHostile runs test for each hostile value and a 10 KB one (long).
func forEachHostile(t *testing.T, test func(t *testing.T, v, long string)) {
	long := strings.Repeat("Mozilla/5.0 <!channel> ", 450) // 10 KB user agent
	for _, v := range append(hostile, long) {
		name := v
		if len(name) > 30 {
			name = name[:30]
		}
		t.Run(name, func(t *testing.T) { test(t, v, long) })
	}
}

func TestHostileValuesAreNeutralised(t *testing.T) {
	forEachHostile(t, func(t *testing.T, v, long string) {
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
	if len(m.MessageAttributes) > MaxAttributes {
		t.Errorf("%d message attributes, more than %d", len(m.MessageAttributes), MaxAttributes)
	}
	for name, a := range m.MessageAttributes {
		var values []string
		switch {
		case a.DataType == "String.Array" && json.Unmarshal([]byte(a.StringValue), &values) == nil && len(values) > 0:
			for _, v := range values {
				checkText(t, "attribute "+name, v, false)
			}
		case a.StringValue == "" || (a.DataType != "String" && a.DataType != "Number"):
			t.Errorf("attribute %s = %+v is not a valid SNS attribute", name, a)
		default:
			checkText(t, "attribute "+name, a.StringValue, false)
		}
	}
	ch := channels(t, m)
	checkText(t, "email", ch["email"], true)
	checkLinks(t, "email", ch["email"])
	checkLinks(t, "subject", m.Subject)
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
	if multiline && (strings.Contains(s, "\nFAKE") || strings.Contains(s, "  FAKE")) {
		t.Errorf("%s: a value forged a line: %q", where, s)
	}
}

// consoleLink matches the CloudWatch console links the renderer writes.
var consoleLink = regexp.MustCompile(`https://[a-z0-9.-]*console\.(aws\.amazon\.com|amazonaws\.cn|amazonaws-us-gov\.com)/\S*`)

// exampleSpan is the only inline code the chat holds: the suppression example, written
// with nothing but letters, digits, "-", "_" and escapes inside its string literal.
var exampleSpan = regexp.MustCompile(`^user( == |\.startsWith\()"([A-Za-z0-9_-]|\\x[0-9A-F]{2}|\\u[0-9A-F]{4}|\\U[0-9A-F]{8})*"\)?$`)

// linkLike matches what a chat or mail client could turn into a link: a URL scheme, or a
// dot-like character between two characters of a host name label.
var linkLike = regexp.MustCompile(`(?i)[a-z][a-z0-9+.-]*://|[\p{L}\p{N}\p{M}\p{So}_-][.\x{2024}\x{FE52}\x{FF0E}\x{3002}\x{FF61}][\p{L}\p{M}\p{So}]|[\p{L}\p{M}\p{So}][.\x{2024}\x{FE52}\x{FF0E}\x{3002}\x{FF61}][\p{L}\p{N}\p{M}\p{So}]`)

// ownDotted are the renderer's own dotted words (field labels, CEL and query syntax).
var ownDotted = strings.NewReplacer("user.uid", "", "user.groups", "", "objectRef.resource", "", "objectRef.namespace", "",
	"responseStatus.code", "", "responseStatus.message", "", "user.startsWith", "")

// defanged matches the defanged schemes, which no client links.
var defanged = regexp.MustCompile(`(?i)hxxps?://`)

// checkLinks fails on link-like text outside the renderer's own console links and words.
func checkLinks(t testing.TB, where, s string) {
	t.Helper()
	rest := ownDotted.Replace(consoleLink.ReplaceAllString(s, "CONSOLE-LINK"))
	rest = defanged.ReplaceAllString(rest, "")
	if m := linkLike.FindString(rest); m != "" {
		t.Errorf("%s: link-like %q survives in %q", where, m, s)
	}
}

// checkChat fails on anything Slack or Teams would interpret in a value: control
// sequences, mentions, entities, links and the markup of the hostile inputs. The only
// inline code is the suppression example, which must be inert as written (Teams renders
// no inline code, so a code span protects nothing there).
func checkChat(t testing.TB, s string) {
	t.Helper()
	for i, seg := range strings.Split(s, "`") {
		if i%2 == 1 {
			if !exampleSpan.MatchString(seg) {
				t.Errorf("chat code span %q is not an inert suppression example: %q", seg, s)
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
		checkLinks(t, "chat", seg)
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
		"<http://evil.example|ok>":  "‹http∶//evil[.]example∣ok›",
		"www.evil.example/login":    "www[.]evil[.]example/login",
		"10.0.12.4 kubectl/v1.34.2": "10.0.12.4 kubectl/v1.34.2",
		"*b* _i_ ~s~ `c`":           "∗b∗ ＿i＿ ∼s∼ ˋcˋ",
		"[x](http://e)":             "［x］(http∶//e)",
		"system:serviceaccount:a:b": "system∶serviceaccount∶a∶b",
	} {
		if got := chat(in, 100); got != want {
			t.Errorf("chat(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDefang covers the e-mail and chat defanging: URLs, every dot-like character in a
// host name (after a combining mark or an emoji too), punycode for non-ASCII host names,
// and runs of spaces.
func TestDefang(t *testing.T) {
	for in, want := range map[string]string{
		"https://evil.example/x":                                "hxxps://evil[.]example/x",
		"HTTP://evil.example":                                   "HxxP://evil[.]example",
		"ftp://files.example":                                   "ftp[:]//files[.]example",
		"www.evil-login.example/reset":                          "www[.]evil-login[.]example/reset",
		"alice@corp.example":                                    "alice@corp[.]example",
		"evil．com evil。com evil｡com":                            "evil[.]com evil[.]com evil[.]com",
		"evil\u2024com evil\ufe52com":                           "evil[.]com evil[.]com",
		"e\u0301.com":                                           "xn--e-xbb[.]com", // a dot after a combining mark (not normalised)
		"😀.example":                                             "xn--e28h[.]example",
		"\u0430ws.amazon.com":                                   "xn--ws-6kc[.]amazon[.]com", // Cyrillic а
		"https://\u0430ws.amazon.com/":                          "hxxps://xn--ws-6kc[.]amazon[.]com/",
		"10.0.12.4, kubectl/v1.34.2":                            "10.0.12.4, kubectl/v1.34.2",
		"2026-05-04T10:40:00.000001Z":                           "2026-05-04T10:40:00.000001Z",
		"10．0．0．1":                                              "10[.]0[.]0[.]1",
		"end of sentence. Next":                                 "end of sentence. Next",
		"a     b\u00a0\u00a0c\u3000d":                           "a b c d",
		"Severity:" + strings.Repeat(" ", 80) + "informational": "Severity: informational",
	} {
		if got := email(in, 1000); got != want {
			t.Errorf("email(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestHiddenDefaultIgnorable checks that every Default_Ignorable_Code_Point is shown
// visibly, assigned or not; the list is DerivedCoreProperties.txt's.
func TestHiddenDefaultIgnorable(t *testing.T) {
	ranges := [][2]rune{
		{0x00AD, 0x00AD}, {0x034F, 0x034F}, {0x061C, 0x061C}, {0x115F, 0x1160}, {0x17B4, 0x17B5},
		{0x180B, 0x180F}, {0x200B, 0x200F}, {0x202A, 0x202E}, {0x2060, 0x206F}, {0x3164, 0x3164},
		{0xFE00, 0xFE0F}, {0xFEFF, 0xFEFF}, {0xFFA0, 0xFFA0}, {0xFFF0, 0xFFF8}, {0x1BCA0, 0x1BCA3},
		{0x1D173, 0x1D17A}, {0xE0000, 0xE0FFF},
	}
	for _, rg := range ranges {
		for r := rg[0]; r <= rg[1]; r++ {
			if !hidden(r) {
				t.Errorf("%U is a Default_Ignorable_Code_Point but is not made visible", r)
			}
		}
	}
	for _, r := range "aé日😀 .-" {
		if hidden(r) {
			t.Errorf("%U is visible text but is replaced", r)
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
	if len(m.Subject) != MaxSubjectChars || !strings.HasSuffix(m.Subject, "...") || !strings.HasPrefix(m.Subject, "[MEDIUM] prod: Unauthorized access") {
		t.Errorf("subject = %q (%d chars), want the cluster first and a cut at %d ending in ...", m.Subject, len(m.Subject), MaxSubjectChars)
	}
	checkSafe(t, m)

	// Slack mention syntax is neutralised in the subject as in the chat body, and a long
	// cluster name is cut so that the title still shows.
	for i := range g.Aggregates {
		g.Aggregates[i].Fields.User = "<!channel> <@U012AB3CD> @here"
	}
	for _, m := range []Message{mustRender(t, Build(g, Options{Now: fixedNow})), mustEscalation(t, Build(g, Options{Now: fixedNow}))} {
		if strings.ContainsAny(m.Subject, "<>@") || !strings.Contains(m.Subject, "(!channel) ((a") {
			t.Errorf("subject %q keeps Slack mention syntax", m.Subject)
		}
	}
	for i := range g.Aggregates {
		g.Aggregates[i].Source.Cluster = strings.Repeat("c", 100)
	}
	for _, m := range []Message{mustRender(t, Build(g, Options{Now: fixedNow})), mustEscalation(t, Build(g, Options{Now: fixedNow}))} {
		if !strings.HasPrefix(m.Subject, "[MEDIUM] "+strings.Repeat("c", maxSubjectCluster-3)+"...: ") || !strings.Contains(m.Subject, "Unauthorized") {
			t.Errorf("subject %q: want the cut cluster first, then the title", m.Subject)
		}
	}
}

func mustRender(t *testing.T, a Alert) Message {
	t.Helper()
	m, err := Render(a)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustEscalation(t *testing.T, a Alert) Message {
	t.Helper()
	m, err := RenderEscalation(a, Escalation{Threshold: 10, From: 5, To: 12, FirstAlertID: a.ID})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSuppressExample(t *testing.T) {
	for in, want := range map[string]string{
		"alice":                       `user == "alice"`,
		`x" || true || "`:             `user == "x\x22\x20\x7C\x7C\x20true\x20\x7C\x7C\x20\x22"`,
		"line\nbreak\u202e":           `user == "line\x0Abreak\u202E"`,
		"system:serviceaccount:ns:sa": `user == "system\x3Aserviceaccount\x3Ans\x3Asa"`,
		"www.evil.example @here <!x>": `user == "www\x2Eevil\x2Eexample\x20\x40here\x20\x3C\x21x\x3E"`,
		"😀\u0430":                     `user == "\U0001F600\u0430"`,
		"ok\xffrest":                  `user.startsWith("ok")`,
		"\xffrest":                    "",
	} {
		if got := suppressExample(in); got != want {
			t.Errorf("suppressExample(%q) = %s, want %s", in, got, want)
		}
	}
	long := strings.Repeat("a.", 500)
	got := suppressExample(long)
	if want := `user.startsWith("` + strings.Repeat(`a\x2E`, 79) + `a")`; got != want {
		t.Errorf("long user example = %s, want %s", got, want)
	}
}

// TestLongNonASCIIValuesFit renders values of 10,000 non-ASCII characters in every field,
// the log group included: CloudWatch Logs names have at most 512 characters, so a longer
// one is not put in the console link, and the alert still fits in one SNS message.
func TestLongNonASCIIValuesFit(t *testing.T) {
	var distinct strings.Builder
	for r := rune(0x4E00); r < 0x4E00+10_000; r++ {
		distinct.WriteRune(r)
		if r%7 == 0 {
			distinct.WriteString(".")
		}
	}
	m, err := Render(Build(groupWith(distinct.String()), Options{Now: fixedNow}))
	if err != nil {
		t.Fatal(err)
	}
	checkSafe(t, m)
}

// TestHostileValuesInReports: every part of an hourly report, plain or flagged, holds the
// same invariants as an alert, whatever the attacker placed in the audit events.
func TestHostileValuesInReports(t *testing.T) {
	forEachHostile(t, func(t *testing.T, v, _ string) {
		g := groupWith(v)
		parts, err := ReportParts(g.Rule, g.Window, g.Aggregates, fixedNow(), false)
		if err != nil {
			t.Fatal(err)
		}
		if len(parts) == 0 {
			t.Fatal("no report")
		}
		for _, p := range parts {
			for _, flagged := range []bool{false, true} {
				p.PossibleDuplicate = flagged
				m, err := RenderReportPart(p)
				if err != nil {
					t.Fatal(err)
				}
				checkSafe(t, m)
			}
		}
	})
}
