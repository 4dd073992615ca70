package alert

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// clean makes an attacker-controlled value safe to place in any channel:
//   - invalid UTF-8 bytes become a visible ⟨0xFF⟩;
//   - control characters (C0, DEL, C1, including newlines and tabs), format characters
//     (bidi overrides and isolates, zero-width spaces and joiners, byte order marks, tag
//     characters), line and paragraph separators, noncharacters and invisible fillers
//     become a visible ⟨U+202E⟩, so nothing can hide, reorder or forge lines;
//   - the result is cut after limit characters with a visible marker saying how many
//     characters were dropped.
//
// It does not touch markup: see chat for values placed in chat markdown.
func clean(s string, limit int) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		var piece string
		switch {
		case r == utf8.RuneError && size == 1:
			piece = fmt.Sprintf("⟨0x%02X⟩", s[i])
		case hidden(r):
			piece = fmt.Sprintf("⟨U+%04X⟩", r)
		default:
			piece = s[i : i+size]
		}
		w := utf8.RuneCountInString(piece)
		if n+w > limit {
			b.WriteString(omittedMarker(utf8.RuneCountInString(s[i:])))
			return b.String()
		}
		b.WriteString(piece)
		n += w
		i += size
	}
	return b.String()
}

// omittedMarker is the visible marker that ends a cut value or list.
func omittedMarker(n int) string {
	return "…[" + strconv.Itoa(n) + " more]"
}

// hidden reports whether r is invisible or changes how surrounding text is displayed.
func hidden(r rune) bool {
	switch {
	case unicode.IsControl(r), // C0, DEL, C1
		unicode.Is(unicode.Cf, r),                            // bidi controls, zero-width, BOM, tags
		unicode.Is(unicode.Zl, r), unicode.Is(unicode.Zp, r), // U+2028, U+2029
		unicode.Is(unicode.Co, r),                      // private use: renders as anything
		r >= 0xFDD0 && r <= 0xFDEF, r&0xFFFE == 0xFFFE, // noncharacters
		r == 0x115F, r == 0x1160, r == 0x3164, r == 0xFFA0, // Hangul fillers: blank letters
		r == 0x2800,                // braille blank
		r >= 0xFE00 && r <= 0xFE0F, // variation selectors
		r >= 0xE0100 && r <= 0xE01EF:
		return true
	}
	return false
}

// chatMarkup maps every character with a meaning in Slack mrkdwn, Microsoft Teams
// markdown or Slack's control sequences to a look-alike without one. Slack has no escape
// character, so replacing is the only way to show such characters literally:
// "<!channel>" becomes "‹!channel›" and "@here" becomes "＠here", which notify nobody;
// "<http://x|y>" and "[y](http://x)" stop being links; `*_~> stop formatting.
var chatMarkup = strings.NewReplacer(
	"<", "‹", // U+2039: Slack control sequences <!here>, <@U123>, <http://x|y>
	">", "›", // U+203A: and block quotes
	"&", "＆", // U+FF06: Slack entities (&lt;)
	"@", "＠", // U+FF20: @channel, @here, @everyone, @user
	"`", "ˋ", // U+02CB: code spans and blocks
	"*", "∗", // U+2217: bold
	"_", "＿", // U+FF3F: italics
	"~", "∼", // U+223C: strikethrough
	"|", "∣", // U+2223: link labels, tables
	"[", "［", // U+FF3B: markdown links
	"]", "］", // U+FF3D
	"\\", "∖", // U+2216: markdown escapes
	"#", "＃", // U+FF03: headings, channel references
	":", "∶", // U+2236: emoji short codes and URL schemes (no auto-linking)
)

// chat makes an attacker-controlled value safe inside a chat markdown message: clean,
// then neutralise markup, mentions and links (including bare host names, which Slack
// turns into links by itself).
func chat(s string, limit int) string {
	return breakHostnames(chatMarkup.Replace(clean(s, limit)))
}

// breakHostnames replaces each dot between two letters or digits, at least one of them a
// letter, with a one-dot leader (U+2024), so that "www.evil.example" is not auto-linked.
// Dotted numbers (IP addresses, versions) are left as they are.
func breakHostnames(s string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	r := []rune(s)
	for i := 1; i+1 < len(r); i++ {
		if r[i] != '.' {
			continue
		}
		prev, next := r[i-1], r[i+1]
		if isAlnum(prev) && isAlnum(next) && (isLetter(prev) || isLetter(next)) {
			r[i] = '\u2024'
		}
	}
	return string(r)
}

func isLetter(r rune) bool { return unicode.IsLetter(r) }
func isAlnum(r rune) bool  { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// codeMarkup neutralises what could end an inline code span or open a Slack control
// sequence inside it. Slack renders nothing else inside code (no formatting, no links), so
// the rest stays verbatim and can be copied, as a suppression expression must be.
var codeMarkup = strings.NewReplacer(
	"`", "ˋ", // U+02CB: would end the span
	"<", "‹", // U+2039: <!here>, <@U123>, <http://x|y>
	">", "›", // U+203A
	"&", "＆", // U+FF06: entities
)

// broadcastMention matches the words that notify a whole channel.
var broadcastMention = regexp.MustCompile(`(?i)@(here|channel|everyone)\b`)

// chatCodeValue makes an attacker-controlled value safe inside an inline code span:
// clean, neutralise the span's end and control sequences, and break broadcast mentions.
func chatCodeValue(s string, limit int) string {
	v := codeMarkup.Replace(clean(s, limit))
	return broadcastMention.ReplaceAllString(v, "＠$1")
}

// subject makes s printable ASCII: other characters become '?'.
func subject(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 0x20 && r <= 0x7E {
			b.WriteRune(r)
		} else {
			b.WriteByte('?')
		}
	}
	return b.String()
}

// celString quotes s as a CEL string literal: Go's ASCII quoting uses only escapes that
// CEL also defines (\", \\, \n, \xHH, \uHHHH, \UHHHHHHHH).
func celString(s string) string {
	return strconv.QuoteToASCII(s)
}

// suppressExample is a SUPPRESSIONS CEL expression matching user; an over-long name is
// matched by its prefix, so the example stays short.
func suppressExample(user string) string {
	if utf8.RuneCountInString(user) <= maxName {
		return "user == " + celString(user)
	}
	return "user.startsWith(" + celString(string([]rune(user)[:maxName])) + ")"
}
