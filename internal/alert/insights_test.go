package alert

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// decodeInsightsURL reverses InsightsURL's encoding and returns the console's object
// notation, failing if a value could have produced one of its structural characters.
func decodeInsightsURL(t *testing.T, link string) map[string][]string {
	t.Helper()
	_, frag, ok := strings.Cut(link, "#logsV2:logs-insights")
	if !ok {
		t.Fatalf("no logs-insights fragment in %s", link)
	}
	step1, err := url.PathUnescape(strings.ReplaceAll(frag, "$", "%"))
	if err != nil {
		t.Fatal(err)
	}
	detail, ok := strings.CutPrefix(step1, "?queryDetail=")
	if !ok {
		t.Fatalf("fragment %q does not start with ?queryDetail=", step1)
	}
	obj, err := url.PathUnescape(detail) // JavaScript unescape() for ASCII
	if err != nil {
		t.Fatal(err)
	}
	// ~(key~value~...~source~(~'a~'b))
	body, ok := strings.CutPrefix(obj, "~(")
	if !ok || !strings.HasSuffix(body, "))") {
		t.Fatalf("not an object: %s", obj)
	}
	head, src, ok := strings.Cut(strings.TrimSuffix(body, ")"), "~source~(")
	if !ok {
		t.Fatalf("no source list: %s", obj)
	}
	out := map[string][]string{}
	parts := strings.Split(head, "~")
	if len(parts)%2 != 0 {
		t.Fatalf("odd key/value list: %s", head)
	}
	for i := 0; i < len(parts); i += 2 {
		out[parts[i]] = []string{starDecode(t, parts[i+1])}
	}
	for _, s := range strings.Split(strings.TrimSuffix(src, ")"), "~") {
		if s != "" {
			out["source"] = append(out["source"], starDecode(t, s))
		}
	}
	return out
}

func starDecode(t *testing.T, v string) string {
	t.Helper()
	v, ok := strings.CutPrefix(v, "'")
	if !ok {
		t.Fatalf("value %q is not a string", v)
	}
	if strings.ContainsAny(v, "~()'") {
		t.Fatalf("value %q contains a structural character", v)
	}
	s, err := url.PathUnescape(strings.ReplaceAll(v, "*", "%"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestInsightsURL(t *testing.T) {
	start, end := window, window.Add(3600e9)
	for _, user := range append([]string{"alice", "system:serviceaccount:kube-system:default", "ünï"}, hostile...) {
		link := InsightsURL("eu-west-1", []string{"/aws/eks/prod/cluster", "/aws/eks/dev/cluster"}, user, start, end)
		if !strings.HasPrefix(link, "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:logs-insights$3FqueryDetail$3D$257E$2528") {
			t.Errorf("unexpected prefix: %s", link)
		}
		if _, err := url.Parse(link); err != nil || strings.ContainsAny(link, " <>\"'`\\|^{}\n") {
			t.Errorf("link is not a clean URL (%v): %s", err, link)
		}
		got := decodeInsightsURL(t, link)
		want := map[string]string{
			"start": "2026-05-04T10:00:00.000Z", "end": "2026-05-04T11:00:00.000Z",
			"timeType": "ABSOLUTE", "tz": "UTC", "editorString": InsightsQuery(user),
		}
		for k, v := range want {
			if len(got[k]) != 1 || got[k][0] != v {
				t.Errorf("user %q: %s = %q, want %q", user, k, got[k], v)
			}
		}
		if s := got["source"]; len(s) != 2 || s[0] != "/aws/eks/prod/cluster" || s[1] != "/aws/eks/dev/cluster" {
			t.Errorf("source = %q", s)
		}
	}
}

func TestInsightsQueryEscapesUser(t *testing.T) {
	for _, user := range append([]string{"alice", `a"b`, `a\`, `\"`, "ünï", "a\nb", "a\u202eb", "a\u2066b", "\u034fa", "a\xffb"}, hostile...) {
		q := InsightsQuery(user)
		// No control or format character reaches the query: its only newlines are its own.
		if n := strings.Count(q, "\n"); n != 3 {
			t.Errorf("user %q: query has %d newlines, want 3: %q", user, n, q)
		}
		for _, r := range strings.ReplaceAll(q, "\n", "") {
			if unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector) {
				t.Errorf("user %q: query keeps %U: %q", user, r, q)
			}
		}
		if !utf8.ValidString(q) {
			t.Errorf("user %q: query is not valid UTF-8: %q", user, q)
		}
		exact := true
		_, rest, ok := strings.Cut(q, "user.username = \"")
		if !ok {
			// Matched by prefix: substr(user.username, 0, N) = "prefix".
			if _, rest, ok = strings.Cut(q, "substr(user.username, 0, "); !ok {
				t.Fatalf("no user condition in %q", q)
			}
			var n string
			n, rest, _ = strings.Cut(rest, ") = \"")
			exact = false
			if n == "" {
				t.Errorf("user %q: no prefix length in %q", user, q)
			}
		}
		// Read the literal the way Logs Insights does: backslash escapes one character.
		var lit strings.Builder
		i := 0
		for ; i < len(rest) && rest[i] != '"'; i++ {
			if rest[i] == '\\' {
				i++
			}
			lit.WriteByte(rest[i])
		}
		switch {
		case exact && lit.String() != user:
			t.Errorf("literal reads %q, want %q", lit.String(), user)
		case !exact && !strings.HasPrefix(user, lit.String()):
			t.Errorf("literal %q is not a prefix of %q", lit.String(), user)
		case !exact && !strings.Contains(q, "substr(user.username, 0, "+strconv.Itoa(utf8.RuneCountInString(lit.String()))+") = "):
			t.Errorf("user %q: prefix length does not count the literal's characters: %q", user, q)
		}
		if after := rest[i+1:]; !strings.HasPrefix(after, "\n| sort @timestamp desc\n| limit 1000") {
			t.Errorf("user %q changed the query structure: %q", user, q)
		}
	}
	for user, prefix := range map[string]string{
		"alice\nFAKE":         "alice",
		"admin\u202egpj":      "admin",
		"ab\u200bcd":          "ab",
		"ok\xffno":            "ok",
		"x\U000E0041y":        "x",
		"plain user@x.y":      "",
		"\u2066isolate\u2069": `""`,
	} {
		q := InsightsQuery(user)
		want := "substr(user.username, 0, " + strconv.Itoa(utf8.RuneCountInString(prefix)) + `) = "` + prefix + `"`
		switch prefix {
		case "":
			want = `user.username = "` + user + `"`
		case `""`:
			want = `substr(user.username, 0, 0) = ""`
		}
		if !strings.Contains(q, want) {
			t.Errorf("user %q: query %q, want it to contain %s", user, q, want)
		}
	}
	long := strings.Repeat("é", 400)
	if q := InsightsQuery(long); !strings.Contains(q, "substr(user.username, 0, 256) = \""+strings.Repeat("é", 256)+"\"") {
		t.Errorf("long user query = %q", q)
	}
}

func TestInsightsURLRegions(t *testing.T) {
	for region, prefix := range map[string]string{
		"us-east-1":           "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#",
		"cn-north-1":          "https://cn-north-1.console.amazonaws.cn/cloudwatch/home?region=cn-north-1#",
		"us-gov-west-1":       "https://console.amazonaws-us-gov.com/cloudwatch/home?region=us-gov-west-1#",
		"":                    "https://console.aws.amazon.com/cloudwatch/home#",
		"evil.example/x?y=1#": "https://console.aws.amazon.com/cloudwatch/home#",
	} {
		if got := InsightsURL(region, nil, "alice", window, window); !strings.HasPrefix(got, prefix) {
			t.Errorf("region %q: %s, want prefix %s", region, got, prefix)
		}
	}
}
