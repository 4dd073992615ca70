// Package jsonscan is the byte-level JSON grammar (RFC 8259, as encoding/json reads it) that
// the project's hand-written tokenizers share: the subscription decoder's scanner and
// window (internal/cwlogs) and the audit parser's lexer (internal/audit). Each function
// reads b from index i and returns the index after what it read; none allocates.
//
// The strict functions (String, Number, Value) accept exactly what encoding/json accepts;
// FuzzValue holds them to it. StringEnd is the lenient search for the end of a string
// whose content is validated later, when it is decoded (internal/jsonstring decodes
// string contents).
package jsonscan

import "encoding/binary"

// MaxDepth is the nesting of arrays and objects encoding/json accepts.
const MaxDepth = 10000

// Space returns the index of the first byte at or after i that is not JSON whitespace,
// or len(b).
func Space(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// Literal reads lit (true, false or null) at b[i].
func Literal(b []byte, i int, lit string) (end int, ok bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}

// Number reads a JSON number at b[i]: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func Number(b []byte, i int) (end int, ok bool) {
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case j < len(b) && b[j] >= '1' && b[j] <= '9':
		j = Digits(b, j+1)
	default:
		return i, false
	}
	if j < len(b) && b[j] == '.' {
		k := Digits(b, j+1)
		if k == j+1 {
			return i, false
		}
		j = k
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		k := Digits(b, j)
		if k == j {
			return i, false
		}
		j = k
	}
	return j, true
}

// Digits returns the index of the first byte at or after i that is not a decimal digit.
// It tests eight bytes at a time (a CloudWatch Logs event id has 56 digits): none below
// '0' and none above '9'.
func Digits(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		// As controlBytes: the high bit of each byte below '0', and of each above '9'.
		below := ^(((x & lows7) + (0x80-'0')*ones) | x) & highs
		above := (((x & lows7) + (0x7f-'9')*ones) | x) & highs
		if below|above != 0 {
			break
		}
	}
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// Int reads a JSON integer without fraction or exponent at b[i] (a CloudWatch Logs
// timestamp). It refuses, rather than rounds, an integer of 19 digits or more that may
// not fit in an int64. end is where the reading stopped: after the digits when ok.
func Int(b []byte, i int) (n int64, end int, ok bool) {
	neg := false
	if i < len(b) && b[i] == '-' {
		neg = true
		i++
	}
	start := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		if n > (1<<63-1)/10-1 {
			return 0, i, false
		}
		n = n*10 + int64(b[i]-'0')
		i++
	}
	if i == start || (i-start > 1 && b[start] == '0') {
		return 0, i, false
	}
	if i < len(b) {
		switch b[i] {
		case '.', 'e', 'E':
			return 0, i, false
		}
	}
	if neg {
		n = -n
	}
	return n, i, true
}

// Value reads one JSON value after any whitespace at b[i], validating it strictly. depth
// is the number of nested arrays and objects allowed (MaxDepth as encoding/json); deeper
// values are refused.
func Value(b []byte, i, depth int) (end int, ok bool) {
	i = Space(b, i)
	if i >= len(b) {
		return i, false
	}
	switch c := b[i]; c {
	case '"':
		end, _, ok := String(b, i)
		return end, ok
	case '{', '[':
		if depth <= 0 {
			return i, false
		}
		return container(b, i, depth-1)
	case 't':
		return Literal(b, i, "true")
	case 'f':
		return Literal(b, i, "false")
	case 'n':
		return Literal(b, i, "null")
	default:
		return Number(b, i)
	}
}

// container reads the object or array that opens at b[i]; its values may nest depth more.
func container(b []byte, i, depth int) (int, bool) {
	obj := b[i] == '{'
	closer := byte(']')
	if obj {
		closer = '}'
	}
	i = Space(b, i+1)
	if i < len(b) && b[i] == closer {
		return i + 1, true
	}
	for {
		if obj {
			if i >= len(b) || b[i] != '"' {
				return i, false
			}
			end, _, ok := String(b, i)
			if i = Space(b, end); !ok || i >= len(b) || b[i] != ':' {
				return i, false
			}
			i++
		}
		end, ok := Value(b, i, depth)
		if !ok {
			return end, false
		}
		i = Space(b, end)
		switch {
		case i >= len(b):
			return i, false
		case b[i] == ',':
			i = Space(b, i+1)
		case b[i] == closer:
			return i + 1, true
		default:
			return i, false
		}
	}
}
