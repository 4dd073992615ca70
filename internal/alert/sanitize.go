package alert

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
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

// hidden reports whether r is invisible or changes how surrounding text is displayed:
// control characters, format characters (Cf: bidi controls, zero-width characters, BOM,
// tags), line and paragraph separators, private use, noncharacters, and every
// Default_Ignorable_Code_Point. That derived Unicode property is Cf, Variation_Selector
// and Other_Default_Ignorable_Code_Point less a few characters (white space, some
// prepended marks), so the three tables below cover all of it, assigned or not
// (U+034F, U+17B4, U+180B–U+180F, U+2065, U+FFF0–U+FFF8, U+E0000–U+E0FFF).
func hidden(r rune) bool {
	switch {
	case unicode.IsControl(r), // C0, DEL, C1
		unicode.Is(unicode.Cf, r),                            // bidi controls, zero-width, BOM, tags
		unicode.Is(unicode.Zl, r), unicode.Is(unicode.Zp, r), // U+2028, U+2029
		unicode.Is(unicode.Co, r),                      // private use: renders as anything
		r >= 0xFDD0 && r <= 0xFDEF, r&0xFFFE == 0xFFFE, // noncharacters
		unicode.Is(unicode.Variation_Selector, r),
		unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r), // Hangul fillers, U+034F, U+FFF0–8, …
		r == 0x2800: // braille blank
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
// and Teams turn into links by themselves).
func chat(s string, limit int) string {
	return defang(chatMarkup.Replace(clean(s, limit)))
}

// email makes an attacker-controlled value safe in the plain-text e-mail, which mail
// clients scan for links: clean, then defang.
func email(s string, limit int) string {
	return defang(clean(s, limit))
}

// defang makes text that looks like a link or a host name visible but not clickable, in
// every channel:
//   - a run of spaces (any space separator) becomes one space, so spaces cannot push
//     text onto what looks like a line of its own;
//   - a host name with a non-ASCII letter is shown in punycode ("xn--"), so a homograph
//     (a Cyrillic "а" in aws.amazon.com) shows as what it is;
//   - every dot-like character (see dotLike) between two characters of a host name label
//     becomes "[.]": "www.evil.example" reads "www[.]evil[.]example". An ASCII full stop
//     between two ASCII digits (an IP address, a version) is kept;
//   - "scheme://" becomes "hxxp://", "hxxps://" or "scheme[:]//".
func defang(s string) string {
	s = collapseSpaces(s)
	s = punycodeHosts(s)
	s = breakHosts(s)
	return schemePattern.ReplaceAllStringFunc(s, defangScheme)
}

// schemePattern matches the scheme of a URL.
var schemePattern = regexp.MustCompile(`(?i)[a-z][a-z0-9+.-]*://`)

func defangScheme(m string) string {
	scheme := strings.TrimSuffix(m, "://")
	switch strings.ToLower(scheme) {
	case "http", "https":
		return scheme[:1] + "xx" + scheme[3:] + "://"
	}
	return scheme + "[:]//"
}

// collapseSpaces replaces every run of space separators (U+0020, U+00A0, U+3000, …) of
// more than one character, or of one that is not U+0020, with one U+0020.
func collapseSpaces(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	run := 0
	for _, r := range s {
		if unicode.Is(unicode.Zs, r) {
			if run == 0 {
				b.WriteByte(' ')
			}
			run++
			continue
		}
		run = 0
		b.WriteRune(r)
	}
	return b.String()
}

// dotLike reports whether r is read as, or looks like, the dot between the labels of a
// host name: the full stop and the label separators of IDNA (UTS #46: ideographic,
// fullwidth and halfwidth ideographic full stops), the characters UTS #46 maps to a full
// stop (one dot leader, small full stop), and look-alikes (middle dots, the Arabic and
// Syriac full stops, dot operators, the hyphenation point).
func dotLike(r rune) bool {
	switch r {
	case '.', '\u3002', '\uFF0E', '\uFF61', // full stop, IDNA label separators
		'\u2024', '\uFE52', // one dot leader, small full stop: mapped to "." by UTS #46
		'\u00B7', '\u0387', '\u06D4', '\u0701', '\u0702', '\u2027', '\u2219', '\u22C5',
		'\u2E31', '\u2E33', '\u30FB', '\uFF65', '\uA4F8', '\u1427', '\u0F0B':
		return true
	}
	return false
}

// labelRune reports whether r can be part of a host name label as a link detector or a
// browser sees it: letters, digits and other numbers, combining marks, symbols (emoji),
// hyphen and underscore.
func labelRune(r rune) bool {
	return r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r) ||
		unicode.Is(unicode.So, r) || unicode.Is(unicode.Sk, r)
}

// breakHosts replaces each dot-like character between two label characters with "[.]",
// except an ASCII full stop between two ASCII digits.
func breakHosts(s string) string {
	r := []rune(s)
	var b strings.Builder
	b.Grow(len(s))
	for i, c := range r {
		if dotLike(c) && i > 0 && i+1 < len(r) && labelRune(r[i-1]) && labelRune(r[i+1]) &&
			!(c == '.' && isASCIIDigit(r[i-1]) && isASCIIDigit(r[i+1])) {
			b.WriteString("[.]")
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func isASCIIDigit(r rune) bool { return '0' <= r && r <= '9' }

// punycodeHosts rewrites every host name (labels of label characters joined by dot-like
// characters) that holds a non-ASCII character: each non-ASCII label becomes its punycode
// form ("xn--…", RFC 3492), and the dots stay for breakHosts to break.
func punycodeHosts(s string) string {
	if isASCII(s) {
		return s
	}
	r := []rune(s)
	var b strings.Builder
	for i := 0; i < len(r); {
		if !labelRune(r[i]) {
			b.WriteRune(r[i])
			i++
			continue
		}
		// A host candidate: label (dot label)*.
		j, dots := i, 0
		for j < len(r) {
			k := j
			for k < len(r) && labelRune(r[k]) {
				k++
			}
			j = k
			if k+1 < len(r) && dotLike(r[k]) && labelRune(r[k+1]) {
				j, dots = k+1, dots+1
				continue
			}
			break
		}
		host := r[i:j]
		if dots == 0 || isASCII(string(host)) {
			b.WriteString(string(host))
			i = j
			continue
		}
		start := 0
		for k := 0; k <= len(host); k++ {
			if k < len(host) && !dotLike(host[k]) {
				continue
			}
			b.WriteString(punycodeLabel(string(host[start:k])))
			if k < len(host) {
				b.WriteRune(host[k])
			}
			start = k + 1
		}
		i = j
	}
	return b.String()
}

// maxLabel is the longest DNS label, in octets (RFC 1035); its punycode form is at most
// that long, so a longer run of characters is no label any resolver would look up.
const maxLabel = 63

// punycodeLabel is the ASCII form of one label: itself when ASCII, else "xn--" and its
// punycode encoding (lower-cased first, as IDNA does for display). A run longer than a DNS
// label is left as it is (its dots are broken all the same), which also bounds the work:
// punycode encoding is quadratic in the label's length.
func punycodeLabel(label string) string {
	if isASCII(label) || len(label) > 4*maxLabel {
		return label
	}
	a, err := idna.Punycode.ToASCII(strings.ToLower(label))
	if err != nil || !isASCII(a) {
		return label
	}
	return a
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
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

// celString quotes s as a CEL string literal in which only ASCII letters, digits, "-"
// and "_" stand for themselves; every other character is an escape (\x2E for ".", \x40
// for "@", \x3C for "<", \x20 for a space, \u0430 for a Cyrillic "а", \U0001F600 …).
// CEL reads the escapes back into exactly s, and no channel sees a dot, a mention, markup
// or a URL in the literal, so the example needs no neutralising and stays exact and
// copyable. s must be valid UTF-8 (an invalid byte has no CEL escape).
func celString(s string) string {
	lit, _ := celPrefix(s, len(s)*10+2)
	return lit
}

// celPrefix quotes the longest prefix of s whose literal fits in limit bytes, and says
// whether that is all of s.
func celPrefix(s string, limit int) (string, bool) {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		var esc string
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '-', r == '_':
			esc = string(r)
		case r < 0x80:
			esc = fmt.Sprintf(`\x%02X`, r)
		case r <= 0xFFFF:
			esc = fmt.Sprintf(`\u%04X`, r)
		default:
			esc = fmt.Sprintf(`\U%08X`, r)
		}
		if b.Len()+len(esc)+1 > limit {
			b.WriteByte('"')
			return b.String(), false
		}
		b.WriteString(esc)
	}
	b.WriteByte('"')
	return b.String(), true
}

// maxExampleLiteral bounds the string literal of the suppression example, in bytes; a
// longer user is matched by the longest prefix that fits.
const maxExampleLiteral = 400

// suppressExample is a SUPPRESSIONS CEL expression matching user: user == "…", or, for a
// user whose literal would be too long or who holds invalid UTF-8, user.startsWith("…")
// with the longest prefix that can be written. It is "" when no prefix can be (an invalid
// byte first): an example matching every user would be a dangerous one.
func suppressExample(user string) string {
	valid := user
	if i := invalidAt(user); i >= 0 {
		valid = user[:i]
	}
	lit, all := celPrefix(valid, maxExampleLiteral)
	switch {
	case all && valid == user:
		return "user == " + lit
	case lit == `""`:
		return ""
	}
	return "user.startsWith(" + lit + ")"
}

// invalidAt returns the index of the first invalid UTF-8 byte of s, or -1.
func invalidAt(s string) int {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return -1
}
