// Package jsonstring decodes the content of JSON strings exactly as encoding/json does,
// without reflection or a second validation pass. The subscription decoder (the message
// of each log event) and the audit parser (escaped values) share it; FuzzUnescape holds it
// to encoding/json.
package jsonstring

import (
	"errors"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrBadString is returned for the content of a JSON string that encoding/json would reject.
var ErrBadString = errors.New("invalid JSON string")

// Unescape decodes the content of a JSON string (the bytes between the quotes) exactly as
// encoding/json does: invalid UTF-8 and unpaired surrogates become U+FFFD, raw control
// characters and unknown escapes are errors. Input that needs no change is returned as is.
func Unescape(raw []byte) ([]byte, error) {
	i := 0
	for i < len(raw) {
		c := raw[i]
		if c == '\\' || c < ' ' || c == '"' {
			break
		}
		if c < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(raw[i:])
		if r == utf8.RuneError && size == 1 {
			break
		}
		i += size
	}
	if i == len(raw) {
		return raw, nil
	}
	out := make([]byte, i, len(raw)+2*utf8.UTFMax)
	copy(out, raw[:i])
	for i < len(raw) {
		c := raw[i]
		switch {
		case c == '\\':
			if i+1 >= len(raw) {
				return nil, ErrBadString
			}
			switch raw[i+1] {
			case '"', '\\', '/':
				out = append(out, raw[i+1])
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := hex4(raw[i+2:])
				if !ok {
					return nil, ErrBadString
				}
				i += 6
				if utf16.IsSurrogate(r) {
					r2, ok2 := rune(-1), false
					if i+1 < len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
						r2, ok2 = hex4(raw[i+2:])
					}
					if dec := utf16.DecodeRune(r, r2); ok2 && dec != utf8.RuneError {
						r = dec
						i += 6
					} else {
						r = utf8.RuneError
					}
				}
				out = utf8.AppendRune(out, r)
				continue
			default:
				return nil, ErrBadString
			}
			i += 2
		case c == '"' || c < ' ':
			return nil, ErrBadString
		case c < utf8.RuneSelf:
			// A run of plain ASCII (a log line has a few bytes between escaped quotes) is
			// appended at once.
			j := i + 1
			for j < len(raw) && raw[j] != '\\' && raw[j] != '"' && raw[j] >= ' ' && raw[j] < utf8.RuneSelf {
				j++
			}
			out = append(out, raw[i:j]...)
			i = j
		default:
			r, size := utf8.DecodeRune(raw[i:])
			i += size
			out = utf8.AppendRune(out, r)
		}
	}
	return out, nil
}

// hex4 decodes the four hex digits of a \u escape.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r*16 + rune(c)
	}
	return r, true
}
