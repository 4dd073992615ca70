package cwlogs

import (
	"errors"
	"io"

	"github.com/eks-unauthorized-access/detector/internal/inflate"
	"github.com/eks-unauthorized-access/detector/internal/jsonscan"
	"github.com/eks-unauthorized-access/detector/internal/jsonstring"
)

// window is a JSON tokenizer over an inflating reader: the inflated bytes pass through one
// reused buffer that starts small (cache-resident) and grows only while a single token that
// must be seen whole (a log message, a key, a header string) does not fit, up to max bytes.
// Strings are returned as the raw bytes between their quotes, valid until the next read.
type window struct {
	r io.Reader
	// z, when set, is the inflater whose own buffer is the window (r is not read): the
	// bytes are tokenized where they were decoded, never copied (resetInflater).
	z    *inflate.Reader
	own  []byte // the window's buffer when it reads r
	buf  []byte
	i, n int   // next byte to read, end of the valid bytes
	off  int64 // inflated offset of buf[0]
	max  int   // the buffer never grows past max bytes
	eof  bool
	full bool  // the last more could not read: the buffer holds max bytes from keep
	err  error // a read error other than io.EOF
	key0 []byte
}

// windowStart is the initial buffer size: a few dozen log events, well inside L2.
const windowStart = 64 << 10

// reset starts reading r with a buffer of start bytes that may grow to maxBytes.
func (w *window) reset(r io.Reader, start, maxBytes int) {
	maxBytes = max(maxBytes, start)
	if cap(w.own) < start || cap(w.own) > 4*start {
		// A buffer grown for an earlier long line is released down to the start size.
		w.own = make([]byte, start)
	}
	*w = window{r: r, own: w.own, buf: w.own[:cap(w.own)], max: maxBytes, key0: w.key0}
}

// fillRoom is how many bytes the window asks the inflater to make room for at a time.
const fillRoom = 64 << 10

// resetInflater starts reading the inflater z in place: the window is z's buffer, which
// holds the history of the stream before the bytes the window keeps. A message may be
// up to maxBytes long, as with reset.
func (w *window) resetInflater(z *inflate.Reader, maxBytes int) {
	*w = window{z: z, own: w.own, max: max(maxBytes, windowStart), key0: w.key0}
}

// more reads at least one byte, first moving the bytes from keep on (keep <= w.i) to the
// front of the buffer. It returns the new index of keep, and false at the end of the
// input, on a read error, or when the buffer already holds max bytes from keep (w.full).
func (w *window) more(keep int) (int, bool) {
	w.full = false
	if w.eof || w.err != nil {
		return keep, false
	}
	if w.z != nil {
		return w.moreInPlace(keep)
	}
	if keep > 0 {
		copy(w.buf, w.buf[keep:w.n])
		w.n -= keep
		w.i -= keep
		w.off += int64(keep)
		keep = 0
	}
	if w.n == len(w.buf) {
		if len(w.buf) >= w.max {
			w.full = true
			return keep, false
		}
		nb := make([]byte, min(2*len(w.buf), w.max))
		copy(nb, w.buf[:w.n])
		w.buf = nb
	}
	for {
		m, err := w.r.Read(w.buf[w.n:])
		w.n += m
		if err == io.EOF {
			w.eof = true
		} else if err != nil {
			w.err = err
		}
		if m > 0 {
			return keep, true
		}
		if err != nil {
			return keep, false
		}
	}
}

// moreInPlace is more when the window is the inflater's buffer: the inflater drops the
// bytes before keep but its history, and decodes more after the others.
func (w *window) moreInPlace(keep int) (int, bool) {
	if w.n-keep >= w.max {
		w.full = true
		return keep, false
	}
	shift, err := w.z.Fill(keep, min(fillRoom, w.max-(w.n-keep)))
	n := w.n - shift
	w.off += int64(shift)
	w.i -= shift
	w.buf = w.z.Bytes()
	w.n = len(w.buf)
	if errors.Is(err, io.EOF) {
		w.eof = true
	} else if err != nil {
		w.err = err
	}
	return keep - shift, w.n > n
}

// ensure reads until k bytes from w.i are in the buffer or no more can be read.
func (w *window) ensure(k int) bool {
	for w.n-w.i < k {
		if _, ok := w.more(w.i); !ok {
			return false
		}
	}
	return true
}

// ws skips insignificant whitespace and returns the next byte, or 0 at the end.
func (w *window) ws() byte {
	for {
		if w.i = jsonscan.Space(w.buf[:w.n], w.i); w.i < w.n {
			return w.buf[w.i]
		}
		if _, ok := w.more(w.i); !ok {
			return 0
		}
	}
}

func (w *window) consume(c byte) bool {
	if w.ws() != c {
		return false
	}
	w.i++
	return true
}

// str reads a string that must fit in the buffer and returns its raw content.
func (w *window) str() ([]byte, bool) {
	if w.ws() != '"' {
		return nil, false
	}
	w.i++
	start, from := w.i, w.i
	for {
		if end := jsonscan.StringEndFrom(w.buf[:w.n], start, from); end >= 0 {
			w.i = end + 1
			return w.buf[start:end], true
		}
		from = w.n
		ks, ok := w.more(start)
		if !ok {
			return nil, false
		}
		from -= start - ks
		start = ks
	}
}

// strCut reads a string like str, but when its content is longer than the buffer can hold
// it returns the first bytes, cut before any incomplete escape, with cut=true, and skips
// the rest. The result is valid until the next read.
func (w *window) strCut() (raw []byte, cut, ok bool) {
	if w.ws() != '"' {
		return nil, false, false
	}
	w.i++
	start, from := w.i, w.i
	for {
		if end := jsonscan.StringEndFrom(w.buf[:w.n], start, from); end >= 0 && end-start < w.max {
			w.i = end + 1
			return w.buf[start:end], false, true
		} else if end >= 0 {
			// Read in place, the window can hold more than max bytes at once: the string
			// is cut as if the window had filled.
			cut := escapeBoundary(w.buf[start : start+w.max])
			w.i = end + 1
			return w.buf[start : start+cut], true, true
		}
		from = w.n
		ks, more := w.more(start)
		from -= start - ks
		start = ks
		if more {
			continue
		}
		if !w.full {
			return nil, false, false
		}
		// The buffer holds max bytes of this string: keep a prefix that ends on an escape
		// boundary, copied out of the buffer, then skip the rest.
		end := escapeBoundary(w.buf[start:w.n])
		w.i = w.n
		prefix := append([]byte(nil), w.buf[start:start+end]...)
		if !w.skipRest(start) {
			return nil, false, false
		}
		return prefix, true, true
	}
}

// escapeBoundary returns the largest n <= len(b) such that b[:n] ends with no incomplete
// escape.
func escapeBoundary(b []byte) int {
	n := 0
	for i := 0; i < len(b); {
		if b[i] != '\\' {
			i++
			n = i
			continue
		}
		size := 2
		if i+1 < len(b) && b[i+1] == 'u' {
			size = 6
		}
		if i+size > len(b) {
			break
		}
		i += size
		n = i
	}
	return n
}

// skipStr consumes a string of any length without keeping it.
func (w *window) skipStr() bool {
	if w.ws() != '"' {
		return false
	}
	w.i++
	return w.skipRest(w.i)
}

// skipRest consumes the rest of a string whose content starts at buf[start] (start <= w.i),
// keeping only what the escape parity at the buffer's edge needs.
func (w *window) skipRest(start int) bool {
	from := w.i
	for {
		if end := jsonscan.StringEndFrom(w.buf[:w.n], start, from); end >= 0 {
			w.i = end + 1
			return true
		}
		// Only the parity of a trailing run of backslashes matters for what follows.
		run := 0
		for w.n-run-1 >= start && w.buf[w.n-run-1] == '\\' {
			run++
		}
		keep := w.n - run%2
		w.i = w.n
		ks, ok := w.more(keep)
		if !ok {
			return false
		}
		start, from = ks, ks
	}
}

// key reads an object key and the colon after it, unescaped.
func (w *window) key() ([]byte, bool) {
	raw, ok := w.str()
	if !ok {
		return nil, false
	}
	k, err := jsonstring.Unescape(raw)
	if err != nil {
		return nil, false
	}
	// Reading on to the colon may move the buffer: the key is copied first.
	w.key0 = append(w.key0[:0], k...)
	if !w.consume(':') {
		return nil, false
	}
	return w.key0, true
}

func (w *window) next(closer byte) (more, ok bool) {
	switch w.ws() {
	case ',':
		w.i++
		return true, true
	case closer:
		w.i++
		return false, true
	}
	return false, false
}

func (w *window) object(fn func(key []byte) bool) bool {
	if !w.consume('{') {
		return false
	}
	if w.ws() == '}' {
		w.i++
		return true
	}
	for {
		k, ok := w.key()
		if !ok || !fn(k) {
			return false
		}
		more, ok := w.next('}')
		if !ok {
			return false
		}
		if !more {
			return true
		}
	}
}

func (w *window) array(fn func() bool) bool {
	if !w.consume('[') {
		return false
	}
	if w.ws() == ']' {
		w.i++
		return true
	}
	for {
		if !fn() {
			return false
		}
		more, ok := w.next(']')
		if !ok {
			return false
		}
		if !more {
			return true
		}
	}
}

// maxIntLen is the length from which a run of a sign and digits is no integer that
// jsonscan.Int accepts, whatever follows: a sign and 20 digits, or 21 digits.
const maxIntLen = 21

// int reads a JSON integer without fraction or exponent, as scanner.int: the buffer is
// first filled up to the byte after the digits, or to maxIntLen bytes of them (the
// window's bound is far above: windowStart, or the line bound).
func (w *window) int() (int64, bool) {
	w.ws()
	for {
		if _, end, _ := jsonscan.Int(w.buf[:w.n], w.i); end < w.n || end-w.i >= maxIntLen {
			break
		}
		if _, ok := w.more(w.i); !ok {
			break
		}
	}
	n, end, ok := jsonscan.Int(w.buf[:w.n], w.i)
	w.i = end
	return n, ok
}

// skip consumes any JSON value.
func (w *window) skip(depth int) bool {
	if depth > jsonscan.MaxDepth {
		return false
	}
	switch c := w.ws(); c {
	case '"':
		return w.skipStr()
	case '{':
		return w.object(func([]byte) bool { return w.skip(depth + 1) })
	case '[':
		return w.array(func() bool { return w.skip(depth + 1) })
	case 't':
		return w.literal("true")
	case 'f':
		return w.literal("false")
	case 'n':
		return w.literal("null")
	default:
		if c != '-' && (c < '0' || c > '9') {
			return false
		}
		for {
			if w.i = numberEnd(w.buf[:w.n], w.i); w.i < w.n {
				return true
			}
			if _, ok := w.more(w.i); !ok {
				return true
			}
		}
	}
}

func (w *window) literal(lit string) bool {
	if !w.ensure(len(lit)) {
		return false
	}
	end, ok := jsonscan.Literal(w.buf[:w.n], w.i, lit)
	w.i = end
	return ok
}

// end reports whether only whitespace remains, reading the input to its end.
func (w *window) end() bool {
	return w.ws() == 0 && w.i == w.n && w.eof
}
