package cwlogs

import (
	"github.com/eks-unauthorized-access/detector/internal/jsonscan"
	"github.com/eks-unauthorized-access/detector/internal/jsonstring"
)

// scanner is a minimal JSON tokenizer over a byte slice, on jsonscan's grammar. It never
// allocates: strings are returned as the raw bytes between their quotes, escapes included.
//
// It is lenient where the value is not kept: a string's content is checked only when it
// is decoded, and a skipped number is a run of number characters (numberEnd).
type scanner struct {
	b []byte
	i int
}

// ws skips insignificant whitespace and returns the next byte, or 0 at the end.
func (s *scanner) ws() byte {
	s.i = jsonscan.Space(s.b, s.i)
	if s.i < len(s.b) {
		return s.b[s.i]
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
	end := jsonscan.StringEnd(s.b, start)
	if end < 0 {
		return nil, false
	}
	s.i = end + 1
	return s.b[start:end], true
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
	n, end, ok := jsonscan.Int(s.b, s.i)
	s.i = end
	return n, ok
}

// skip consumes any JSON value. It follows nested containers with a stack of bits, not
// down the call stack: a payload of a few KiB gzipped can nest millions deep, and
// recursion would follow it until the runtime kills the process.
func (s *scanner) skip() bool {
	var small [4]uint64
	objects := small[:0] // bit d of the stack: the container at depth d is an object
	depth := 0
	for {
		// A value starts here.
		switch c := s.ws(); c {
		case '"':
			if _, ok := s.str(); !ok {
				return false
			}
		case '{', '[':
			s.i++
			closer := byte(']')
			if c == '{' {
				closer = '}'
			}
			if s.ws() == closer {
				s.i++
				break
			}
			if depth/64 == len(objects) {
				objects = append(objects, 0)
			}
			if c == '{' {
				objects[depth/64] |= 1 << (depth % 64)
				if _, ok := s.key(); !ok {
					return false
				}
			} else {
				objects[depth/64] &^= 1 << (depth % 64)
			}
			depth++
			continue
		case 't':
			if !s.literal("true") {
				return false
			}
		case 'f':
			if !s.literal("false") {
				return false
			}
		case 'n':
			if !s.literal("null") {
				return false
			}
		default:
			if c != '-' && (c < '0' || c > '9') {
				return false
			}
			s.i = numberEnd(s.b, s.i)
		}
		// A value ended: close what it ends, up to the next member or element.
		for {
			if depth == 0 {
				return true
			}
			d := depth - 1
			obj := objects[d/64]>>(d%64)&1 == 1
			closer := byte(']')
			if obj {
				closer = '}'
			}
			more, ok := s.next(closer)
			if !ok {
				return false
			}
			if more {
				if obj {
					if _, ok := s.key(); !ok {
						return false
					}
				}
				break
			}
			depth--
		}
	}
}

func (s *scanner) literal(lit string) bool {
	end, ok := jsonscan.Literal(s.b, s.i, lit)
	s.i = end
	return ok
}

// numberEnd returns the end of the run of number characters at b[i]. A skipped number is
// not checked further: its form does not change what is kept.
func numberEnd(b []byte, i int) int {
	for i < len(b) {
		switch c := b[i]; {
		case c >= '0' && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
			i++
		default:
			return i
		}
	}
	return i
}

// end reports whether only whitespace remains.
func (s *scanner) end() bool {
	return s.ws() == 0 && s.i == len(s.b)
}
