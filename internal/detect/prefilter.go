package detect

import (
	"bytes"
	"encoding/binary"
	"math/bits"
)

// MayMatch is a sound prefilter for Evaluate: it looks at the bytes of a log message (the
// audit JSON line itself, or the line still carrying the JSON string escapes of the
// CloudWatch payload around it) and returns false only when no decoding of those bytes
// can satisfy the rule in the given mode. It may return true for lines that do not match;
// it never returns false for a line that Evaluate would match.
//
// Why it is sound. Evaluate compares decoded values with strings.EqualFold against the
// ASCII words "create" and "forbidden". No non-ASCII rune folds to a letter of those
// words (only K and S have non-ASCII fold partners), so a matching value consists of ASCII
// letters. Each letter of a decoded value is written in the bytes either literally or
// through a \uXXXX escape, at one or two escaping levels. A two-level escape still puts a
// backslash directly before a "u" in the bytes ("\\u0046" holds "\u0046"); a backslash or
// a "u" of an inner escape written as an escape of the outer level ("\u005cu0046",
// "\\\u0075") shows a \uXXXX naming a backslash or a letter. So either the bytes contain
// a \u escape naming an ASCII letter, digit or backslash (or a \u not followed by four hex
// digits) - then MayMatch answers true - or every letter of the value appears literally
// and contiguously, and the case-insensitive search for the word finds it.
//
// ModeAuthz matches a subset of ModeSeed and shares its filter. ModeBroad also accepts a
// create answered 403 without a reason; the code may be written in many numeric forms
// (403, 403.0, 4.03e2, a string), so in that mode only the verb is required.
func MayMatch(msg []byte, mode Mode) bool {
	if hasLetterEscape(msg) {
		return true
	}
	if mode == ModeBroad {
		return containsFold(msg, "create")
	}
	return containsFoldForbidden(msg) && containsFold(msg, "create")
}

// hasLetterEscape reports whether msg holds a backslash followed by "u" whose four next
// bytes are not the hex code of a character outside [0-9A-Za-z\\] (a malformed escape
// counts as suspect).
func hasLetterEscape(msg []byte) bool {
	for {
		i := bytes.Index(msg, []byte(`\u`))
		if i < 0 {
			return false
		}
		msg = msg[i+2:]
		if len(msg) < 4 || !isHex(msg[0]) || !isHex(msg[1]) || !isHex(msg[2]) || !isHex(msg[3]) {
			return true
		}
		if msg[0] != '0' || msg[1] != '0' {
			continue // above U+00FF: not ASCII
		}
		c := unhex(msg[2])<<4 | unhex(msg[3])
		if c == '\\' || (c >= '0' && c <= '9') || (c|0x20 >= 'a' && c|0x20 <= 'z') {
			return true
		}
	}
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c|0x20 >= 'a' && c|0x20 <= 'f')
}

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c | 0x20 - 'a' + 10
}

// containsFold reports whether s contains word (lower-case ASCII letters) in any case.
func containsFold(s []byte, word string) bool {
	for i := 0; i+len(word) <= len(s); i++ {
		if s[i]|0x20 == word[0] && equalFoldAt(s[i:], word) {
			return true
		}
	}
	return false
}

// equalFoldAt reports whether s starts with word (lower-case ASCII letters) in any case.
// Setting bit 0x20 maps exactly the two cases of a letter, and no other byte, to the
// lower-case letter.
func equalFoldAt(s []byte, word string) bool {
	if len(s) < len(word) {
		return false
	}
	for j := 0; j < len(word); j++ {
		if s[j]|0x20 != word[j] {
			return false
		}
	}
	return true
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
	lower = 0x2020202020202020
	bbbb  = 0x6262626262626262 // "bbbbbbbb"
)

// containsFoldForbidden is containsFold(s, "forbidden"), reading eight bytes at a time: it
// looks for the "b" (either case) at offset 3 of the word, and checks the word around
// each one found. It is the hot loop of the prefilter.
func containsFoldForbidden(s []byte) bool {
	const word = "forbidden"
	i := 3 // position of the first possible "b"
	for ; i+8 <= len(s); i += 8 {
		x := binary.LittleEndian.Uint64(s[i:])
		t := (x | lower) ^ bbbb
		// Bytes equal to zero in t are candidates; this test flags every zero byte (and
		// perhaps some bytes next to one), so no "b" is missed.
		m := (t - ones) &^ t & highs
		for m != 0 {
			k := i + trailingByte(m) - 3
			if k+len(word) <= len(s) && equalFoldAt(s[k:], word) {
				return true
			}
			m &= m - 1
		}
	}
	for k := max(i-3, 0); k+len(word) <= len(s); k++ {
		if equalFoldAt(s[k:], word) {
			return true
		}
	}
	return false
}

// trailingByte returns the index of the lowest byte whose high bit is set in m.
func trailingByte(m uint64) int {
	return bits.TrailingZeros64(m) >> 3
}
