package detect

import (
	"bytes"
	"encoding/binary"
	"strconv"

	"github.com/eks-unauthorized-access/detector/internal/jsonscan"
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
// through a \u00XX escape (an ASCII character is always \u00 and two hex digits), at one or
// two escaping levels. A two-level escape still puts a backslash directly before "u00" in
// the bytes ("\\u0046" holds "\u0046"); a backslash, "u" or digit of an inner escape that
// is itself written as an escape of the outer level ("\u005cu0046", "\\\u0075") shows a
// \u00XX naming a backslash, a letter or a digit. So either the bytes contain a \u00XX
// escape naming an ASCII letter, digit or backslash (or a \u00 not followed by two hex
// digits) - then MayMatch answers true - or every letter of the value appears literally
// and contiguously, and the case-insensitive search for the word finds it. Any other
// malformed escape (\u followed by something else than four hex digits) cannot be part of
// a match: the payload's string or the audit line's JSON would not decode.
//
// ModeAuthz matches a subset of ModeSeed and shares its filter. ModeBroad also accepts a
// create answered 403 without a reason; the code may be written in many numeric forms
// (403, 403.0, 4.03e2, a string), so in that mode only the verb is required.
func MayMatch(msg []byte, mode Mode) bool {
	if mode == ModeBroad {
		return create.in(msg) || hasLetterEscape(msg)
	}
	if !forbiddenScreen().keep(msg) {
		return false // no representation of "forbidden": see screen.go
	}
	return mayMatchExact(msg)
}

// MayMatchEscaped is MayMatch for a message as a CloudWatch Logs payload carries it: msg is
// the content of the payload's JSON string, still escaped, and holds the whole line (not
// a line cut short), so that every quote of the line is written \" or \u0022 in it. msg
// may run on past the string's end (a record whose writer added keys after "message"):
// what follows does not hide what the string holds.
//
// In the modes that need a reason of "forbidden" the value is then a whole quoted string,
// at least 13 bytes long in msg, and the screen samples one 4-byte group in ten instead
// of one in six (see screen.go).
func MayMatchEscaped(msg []byte, mode Mode) bool {
	if mode == ModeBroad {
		return MayMatch(msg, mode)
	}
	if !quotedScreen().keep(msg) {
		return false
	}
	return mayMatchExact(msg)
}

// mayMatchExact is the test of the seed and authz modes after a screen: the two words in
// any case, or an escape that could write a letter of one.
func mayMatchExact(msg []byte) bool {
	if forbidden.in(msg) && create.in(msg) {
		return true
	}
	return hasLetterEscape(msg)
}

// hasLetterEscape reports whether msg holds a \u00XX escape naming an ASCII letter, digit
// or backslash, or a \u00 not followed by two hex digits.
//
// It searches for a backslash followed by 'u' (jsonscan.IndexPair) and checks the bytes
// after each hit. bytes.Index of `\u00`, stopping at every "u" with bytes.IndexByte, and
// word-wise tests of every position were measured slower.
func hasLetterEscape(msg []byte) bool {
	for i := 0; ; {
		// A backslash followed by 'u' is rare in an escaped message, where backslashes
		// are frequent: one vector search finds it without stopping at each of them.
		k := jsonscan.IndexPair(msg[i:], '\\', 'u')
		if k < 0 {
			return false
		}
		i += k + 1 // the 'u'
		if bytes.HasPrefix(msg[i:], escapeU00[1:]) && letterEscapeAt(msg, i) {
			return true
		}
	}
}

// escapeU00 opens every escape hasLetterEscape looks for.
var escapeU00 = []byte(`\u00`)

// letterEscapeAt reports whether the "u0" at msg[i] (i >= 1) is part of an escape hasLetterEscape
// looks for.
func letterEscapeAt(msg []byte, i int) bool {
	if msg[i-1] != '\\' || i+2 >= len(msg) || msg[i+2] != '0' {
		return false
	}
	if i+5 > len(msg) || !isHex(msg[i+3]) || !isHex(msg[i+4]) {
		return true
	}
	c := unhex(msg[i+3])<<4 | unhex(msg[i+4])
	return c == '\\' || (c >= '0' && c <= '9') || (c|0x20 >= 'a' && c|0x20 <= 'z')
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

// The words the prefilter looks for.
var (
	forbidden = newFoldWord("forbidden")
	create    = newFoldWord("create")
)

// foldWord finds a word of lower-case ASCII letters in any case without looking at every
// byte. Any occurrence of an n-letter word covers n consecutive positions, so it contains
// one of the positions sampled every n-2 bytes together with the two bytes after it: a
// trigram of the word at a known offset. in therefore reads one trigram every n-2 bytes
// (case-folded by setting bit 0x20), looks it up in a 256-slot table of the word's
// trigrams by a multiplicative hash, and checks the whole word only where a trigram of
// the word is found. For "forbidden" that is one lookup per 7 bytes.
type foldWord struct {
	word  string
	mul   uint32
	slots [256]uint32 // trigram | (offset+1)<<24; 0 for an empty slot
}

// newFoldWord builds the table for word (at least three lower-case ASCII letters whose
// trigrams are distinct), choosing a hash multiplier under which no two trigrams collide.
func newFoldWord(word string) *foldWord {
	for mul := uint32(0x9e3779b1); ; mul += 2 {
		w := &foldWord{word: word, mul: mul}
		ok := true
		for j := 0; j+3 <= len(word) && ok; j++ {
			t := uint32(word[j]) | uint32(word[j+1])<<8 | uint32(word[j+2])<<16
			h := (t * mul) >> 24
			ok = w.slots[h] == 0
			w.slots[h] = t | uint32(j+1)<<24
		}
		if ok {
			return w
		}
	}
}

// in reports whether s contains the word in any case.
func (w *foldWord) in(s []byte) bool {
	switch len(w.word) {
	case len("forbidden"):
		return inEvery[[len("forbidden") - 2]byte](w, s)
	case len("create"):
		return inEvery[[len("create") - 2]byte](w, s)
	}
	panic("foldWord: no sampling step for a word of " + strconv.Itoa(len(w.word)) + " letters")
}

// inEvery is in with the step len(S), which must be len(w.word)-2 (see stride).
func inEvery[S stride](w *foldWord, s []byte) bool {
	var z S
	st := len(z)
	mul, slots := w.mul, &w.slots
	q := 0
	// Two samples per iteration: their loads and lookups overlap.
	for ; q+st+4 <= len(s); q += 2 * st {
		b := s[q : q+st+4 : q+st+4]
		t1 := binary.LittleEndian.Uint32(b)&0xffffff | 0x202020
		t2 := binary.LittleEndian.Uint32(b[st:])&0xffffff | 0x202020
		e1, e2 := slots[(t1*mul)>>24], slots[(t2*mul)>>24]
		if e1&0xffffff == t1 && w.verify(s, q-int(e1>>24)+1) {
			return true
		}
		if e2&0xffffff == t2 && w.verify(s, q+st-int(e2>>24)+1) {
			return true
		}
	}
	for ; q+3 <= len(s); q += st {
		t := (uint32(s[q]) | uint32(s[q+1])<<8 | uint32(s[q+2])<<16) | 0x202020
		if e := slots[(t*mul)>>24]; e&0xffffff == t && w.verify(s, q-int(e>>24)+1) {
			return true
		}
	}
	return false
}

// verify reports whether the word starts at s[p].
func (w *foldWord) verify(s []byte, p int) bool {
	return p >= 0 && equalFoldAt(s[p:], w.word)
}
