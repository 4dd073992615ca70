package alert

import (
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// regionPattern is the shape of an AWS region name; anything else is not put in a URL.
var regionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)

// maxQueryUser bounds the user name placed in the query (longer names match by prefix).
const maxQueryUser = 512

// maxQueryLogGroups is the number of log groups one Logs Insights query can name.
const maxQueryLogGroups = 50

// InsightsQuery is the CloudWatch Logs Insights query for the create requests of user:
// every create, allowed or denied, so a later success stands out next to the denials.
//
// The user name is placed in a string literal, and only the part of it that can be
// written there as itself: a name longer than maxQueryUser bytes, or holding a control or
// format character (a newline, a bidi override, a zero-width or other invisible
// character: see hidden) or an invalid UTF-8 byte, is matched by its prefix up to that
// point. The Logs Insights documentation defines no escape for such characters, so they
// never reach the prefilled query, where they could forge a line or reorder the text.
func InsightsQuery(user string) string {
	cut := insightsPrefix(user)
	cond := "user.username = " + insightsString(user)
	if cut != user {
		cond = "substr(user.username, 0, " + fmt.Sprint(utf8.RuneCountInString(cut)) + ") = " + insightsString(cut)
	}
	return "fields @timestamp, verb, objectRef.resource, objectRef.namespace, responseStatus.code, " +
		"responseStatus.reason, sourceIPs.0, userAgent, requestURI\n" +
		"| filter verb like /(?i)^create$/ and " + cond + "\n" +
		"| sort @timestamp desc\n" +
		"| limit 1000"
}

// insightsPrefix returns user up to its first control, format or invalid character, and
// at most maxQueryUser bytes (cut on a rune boundary).
func insightsPrefix(user string) string {
	for i := 0; i < len(user); {
		r, size := utf8.DecodeRuneInString(user[i:])
		if (r == utf8.RuneError && size == 1) || hidden(r) || i+size > maxQueryUser {
			return user[:i]
		}
		i += size
	}
	return user
}

// insightsString quotes s as a Logs Insights string literal: backslash and double quote
// are escaped, so the value can never end the literal and add query commands.
func insightsString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// InsightsURL is a CloudWatch console link that opens Logs Insights with InsightsQuery(user)
// over [start, end) in the given log groups. region "" (or not a region name) gives a
// link without a region, which opens in the console's current region.
//
// The console keeps the query in the URL fragment as "?queryDetail=" followed by an
// object in its own notation: an object is ~(key~value~key~value), an array ~(~v~v), a
// string is ' followed by its percent-encoding with % replaced by *; that whole string is
// percent-encoded again with JavaScript's escape() (so ~ ( ) ' become %7E %28 %29 %27),
// then "?queryDetail=" plus the result is percent-encoded once more and every % becomes $.
// Strings here are encoded byte by byte, keeping only letters, digits, - and . as they are,
// so no value can produce the notation's own ~ ( ) ' characters.
func InsightsURL(region string, logGroups []string, user string, start, end time.Time) string {
	if len(logGroups) > maxQueryLogGroups {
		logGroups = logGroups[:maxQueryLogGroups]
	}
	var src strings.Builder
	src.WriteString("(")
	for _, g := range logGroups {
		src.WriteString("~'" + starEncode(g))
	}
	src.WriteString(")")

	detail := "~(end~'" + starEncode(end.UTC().Format("2006-01-02T15:04:05.000Z")) +
		"~start~'" + starEncode(start.UTC().Format("2006-01-02T15:04:05.000Z")) +
		"~timeType~'ABSOLUTE~tz~'UTC" +
		"~editorString~'" + starEncode(InsightsQuery(user)) +
		"~source~" + src.String() + ")"
	fragment := "?queryDetail=" + jsEscape(detail)
	fragment = strings.ReplaceAll(encodeURIComponent(fragment), "%", "$")

	base := "https://" + consoleHost(region) + "/cloudwatch/home"
	if regionPattern.MatchString(region) {
		base += "?region=" + region
	}
	return base + "#logsV2:logs-insights" + fragment
}

// starEncode percent-encodes every byte of s except ASCII letters, digits, - and ., with
// * in place of %.
func starEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "*%02X", c)
	}
	return b.String()
}

// jsEscape is JavaScript's escape() for ASCII input: letters, digits and @*_+-./ are kept.
func jsEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("@*_+-./", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// encodeURIComponent is JavaScript's encodeURIComponent for ASCII input: letters, digits
// and -_.!~*'() are kept.
func encodeURIComponent(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.!~*'()", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}
