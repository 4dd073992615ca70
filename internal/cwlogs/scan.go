package cwlogs

import (
	"bytes"
	"encoding/binary"
	"math/bits"

	"github.com/eks-unauthorized-access/detector/internal/jsonstring"
)

// scanner is a minimal JSON tokenizer over a byte slice. It never allocates: strings are
// returned as the raw bytes between their quotes, escapes included.
type scanner struct {
	b []byte
	i int
}

// ws skips insignificant whitespace and returns the next byte, or 0 at the end.
func (s *scanner) ws() byte {
	for s.i < len(s.b) {
		switch c := s.b[s.i]; c {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return c
		}
	}
	return 0
}

// consume skips whitespace and one expected byte.
func (s *scanner) consume(c byte) bool {
	if s.ws() != c {
		return false
	}
	s.i++
	return true
}

// str reads a string at the current position (after whitespace) and returns its raw
// content, escapes included.
func (s *scanner) str() (raw []byte, ok bool) {
	if s.ws() != '"' {
		return nil, false
	}
	s.i++
	start := s.i
	end := stringEnd(s.b, start)
	if end < 0 {
		return nil, false
	}
	s.i = end + 1
	return s.b[start:end], true
}

const (
	ones   = 0x0101010101010101
	highs  = 0x8080808080808080
	lows7  = 0x7f7f7f7f7f7f7f7f
	quotes = '"' * ones
	slashs = '\\' * ones
)

// zeroBytes sets the high bit of exactly the bytes of t that are zero.
func zeroBytes(t uint64) uint64 {
	return ^(((t & lows7) + lows7) | t) & highs
}

// stringEnd returns the index of the quote that ends the string whose content starts at
// b[start], or -1. It reads eight bytes at a time: the quotes of a log message inside the
// payload are nearly all escaped (\"), and testing for a quote not preceded by a
// backslash word-wise is much cheaper than stopping at each quote.
func stringEnd(b []byte, start int) int {
	return stringEndFrom(b, start, start)
}

// stringEndFrom is stringEnd for a string known to have no closing quote before b[from]:
// the search starts there (escape parity is still counted from start).
func stringEndFrom(b []byte, start, from int) int {
	i := from
	var carry uint64 // the backslash flags of the last two bytes before b[i], in bytes 0 and 1
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		q := zeroBytes(x ^ quotes)
		bs := zeroBytes(x ^ slashs)
		prev := bs<<8 | carry>>8 // a backslash one byte before
		prev2 := bs<<16 | carry  // a backslash two bytes before
		// Quotes with no backslash before them end the string; those after a run of two or
		// more need the run's parity; those after a single backslash are escaped.
		for m := q&^prev | q&prev&prev2; m != 0; m &= m - 1 {
			k := i + bits.TrailingZeros64(m)>>3
			if !escaped(b, start, k) {
				return k
			}
		}
		carry = bs >> 48
	}
	for ; i < len(b); i++ {
		if b[i] == '"' && !escaped(b, start, i) {
			return i
		}
	}
	return -1
}

// escaped reports whether the quote at b[k] is preceded by an odd run of backslashes
// within the string that starts at b[start].
func escaped(b []byte, start, k int) bool {
	n := 0
	for k-n-1 >= start && b[k-n-1] == '\\' {
		n++
	}
	return n%2 == 1
}

// text reads a string and returns its decoded value, aliasing the input when decoding
// changes nothing.
func (s *scanner) text() ([]byte, bool) {
	raw, ok := s.str()
	if !ok {
		return nil, false
	}
	u, err := jsonstring.Unescape(raw)
	return u, err == nil
}

// key reads an object key and the colon after it. Keys with escapes are unescaped.
func (s *scanner) key() ([]byte, bool) {
	k, ok := s.text()
	if !ok || !s.consume(':') {
		return nil, false
	}
	return k, true
}

// next reads the separator after a member or element: it reports whether another follows
// (a comma) or the container closed with the given byte.
func (s *scanner) next(closer byte) (more bool, ok bool) {
	switch s.ws() {
	case ',':
		s.i++
		return true, true
	case closer:
		s.i++
		return false, true
	}
	return false, false
}

// object walks the members of an object, calling fn with the scanner positioned on each
// value; fn must consume the value.
func (s *scanner) object(fn func(key []byte) bool) bool {
	if !s.consume('{') {
		return false
	}
	if s.ws() == '}' {
		s.i++
		return true
	}
	for {
		k, ok := s.key()
		if !ok || !fn(k) {
			return false
		}
		more, ok := s.next('}')
		if !ok {
			return false
		}
		if !more {
			return true
		}
	}
}

// array walks the elements of an array, calling fn with the scanner positioned on each.
func (s *scanner) array(fn func() bool) bool {
	if !s.consume('[') {
		return false
	}
	if s.ws() == ']' {
		s.i++
		return true
	}
	for {
		if !fn() {
			return false
		}
		more, ok := s.next(']')
		if !ok {
			return false
		}
		if !more {
			return true
		}
	}
}

// int reads a JSON integer without fraction or exponent.
func (s *scanner) int() (int64, bool) {
	s.ws()
	neg := false
	if s.i < len(s.b) && s.b[s.i] == '-' {
		neg = true
		s.i++
	}
	start := s.i
	var n int64
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		if n > (1<<63-1)/10-1 {
			return 0, false
		}
		n = n*10 + int64(s.b[s.i]-'0')
		s.i++
	}
	if s.i == start || (s.i-start > 1 && s.b[start] == '0') {
		return 0, false
	}
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	if neg {
		n = -n
	}
	return n, true
}

// skip consumes any JSON value.
func (s *scanner) skip() bool {
	switch c := s.ws(); c {
	case '"':
		_, ok := s.str()
		return ok
	case '{':
		return s.object(func([]byte) bool { return s.skip() })
	case '[':
		return s.array(s.skip)
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			for s.i < len(s.b) {
				switch c := s.b[s.i]; {
				case c >= '0' && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
					s.i++
				default:
					return true
				}
			}
			return true
		}
		return false
	}
}

func (s *scanner) literal(lit string) bool {
	if !bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		return false
	}
	s.i += len(lit)
	return true
}

// end reports whether only whitespace remains.
func (s *scanner) end() bool {
	return s.ws() == 0 && s.i == len(s.b)
}
