package alert

import (
	"net/url"
	"strings"
	"testing"
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
	for _, user := range append([]string{"alice", `a"b`, `a\`, `\"`}, hostile...) {
		q := InsightsQuery(user)
		_, rest, ok := strings.Cut(q, "user.username = \"")
		if !ok {
			t.Fatalf("no user condition in %q", q)
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
		if lit.String() != user {
			t.Errorf("literal reads %q, want %q", lit.String(), user)
		}
		if after := rest[i+1:]; !strings.HasPrefix(after, "\n| sort @timestamp desc\n| limit 1000") || strings.Count(q, "\n| ") != 3+strings.Count(user, "\n| ") {
			t.Errorf("user %q changed the query structure: %q", user, q)
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
