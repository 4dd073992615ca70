package jsonscan

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
)

// Both string functions read eight bytes at a time (SWAR: bit tricks on a uint64): the
// strings that matter are long (a log message inside the payload, a user agent, a request
// URI) and nearly all their bytes are plain.
const (
	ones     = 0x0101010101010101
	highs    = 0x8080808080808080
	lows7    = 0x7f7f7f7f7f7f7f7f
	quotes   = '"' * ones
	slashes  = '\\' * ones
	controls = (0x80 - ' ') * ones
)

// zeroBytes sets the high bit of exactly the bytes of x that are zero.
func zeroBytes(x uint64) uint64 {
	return ^(((x & lows7) + lows7) | x) & highs
}

// controlBytes sets the high bit of exactly the bytes of x below 0x20 (no carry crosses a
// byte: 0x7f + 0x60 < 0x100).
func controlBytes(x uint64) uint64 {
	return ^(((x & lows7) + controls) | x) & highs
}

// StringEnd returns the index of the quote that ends the string whose content starts at
// b[start], or -1. It looks only for a quote not escaped by a backslash: the content is
// not validated. Testing eight bytes at a time for a quote not preceded by a backslash is
// much cheaper than stopping at each escaped quote (\"), which a log message inside the
// payload is full of.
//
// A string without escaped quotes (the base64 data of a subscription event, hundreds of
// kilobytes) is found by one vectorised search for the first quote: a quote whose previous
// byte is not a backslash is not escaped.
func StringEnd(b []byte, start int) int {
	if start > len(b) {
		return -1
	}
	if k := bytes.IndexByte(b[start:], '"'); k < 0 {
		return -1
	} else if k == 0 || b[start+k-1] != '\\' {
		return start + k
	}
	return StringEndFrom(b, start, start)
}

// StringEndFrom is StringEnd for a string known to have no closing quote before b[from]:
// the search starts there (escape parity is still counted from start).
func StringEndFrom(b []byte, start, from int) int {
	i := from
	var carry uint64 // the backslash flags of the last two bytes before b[i], in bytes 0 and 1
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		q := zeroBytes(x ^ quotes)
		bs := zeroBytes(x ^ slashes)
		prev := bs<<8 | carry>>8 // a backslash one byte before
		prev2 := bs<<16 | carry  // a backslash two bytes before
		// Quotes with no backslash before them end the string; those after a run of two or
		// more need the run's parity; those after a single backslash are escaped.
		for m := q&^prev | q&prev&prev2; m != 0; m &= m - 1 {
			k := i + bits.TrailingZeros64(m)>>3
			if !Escaped(b, start, k) {
				return k
			}
		}
		carry = bs >> 48
	}
	for ; i < len(b); i++ {
		if b[i] == '"' && !Escaped(b, start, i) {
			return i
		}
	}
	return -1
}

// Escaped reports whether the quote at b[k] is preceded by an odd run of backslashes
// within the string whose content starts at b[start].
func Escaped(b []byte, start, k int) bool {
	n := 0
	for k-n-1 >= start && b[k-n-1] == '\\' {
		n++
	}
	return n%2 == 1
}

// String reads the string at b[i] == '"' strictly: every escape is one of JSON's, \u has
// four hex digits, no byte is a control character (invalid UTF-8 is accepted, as
// encoding/json accepts it and decodes it as U+FFFD). end is the index after the closing
// quote; plain reports that the content holds no escape and is valid UTF-8, so that it is
// its own value.
func String(b []byte, i int) (end int, plain, ok bool) {
	j := i + 1
	var high uint64 // the high bits of the plain bytes passed: non-zero when one is not ASCII
	escapes := false
	for j < len(b) {
		// Eight bytes at a time while none is a quote, a backslash or a control character.
		for ; j+8 <= len(b); j += 8 {
			x := binary.LittleEndian.Uint64(b[j:])
			if m := zeroBytes(x^quotes) | zeroBytes(x^slashes) | controlBytes(x); m != 0 {
				t := bits.TrailingZeros64(m) // the high bit of the first such byte
				high |= x & (1<<t - 1)       // the plain bytes before it
				j += t >> 3
				break
			}
			high |= x
		}
		if j >= len(b) {
			break
		}
		switch c := b[j]; {
		case c == '"':
			plain = !escapes && (high&highs == 0 || utf8.Valid(b[i+1:j]))
			return j + 1, plain, true
		case c == '\\':
			escapes = true
			if j+1 >= len(b) {
				return i, false, false
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if j+6 > len(b) || !isHex(b[j+2]) || !isHex(b[j+3]) || !isHex(b[j+4]) || !isHex(b[j+5]) {
					return i, false, false
				}
				j += 6
			default:
				return i, false, false
			}
		case c < ' ':
			return i, false, false
		default:
			high |= uint64(c)
			j++
		}
	}
	return i, false, false
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c|0x20 >= 'a' && c|0x20 <= 'f')
}
