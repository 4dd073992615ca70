package cwlogs

import (
	"bytes"

	"github.com/eks-unauthorized-access/detector/internal/jsonscan"
)

// recordStart opens every log event CloudWatch Logs writes. In compact JSON it can only
// occur at a structural position: inside a string every quote is escaped, and the quote
// after "{" here has no backslash before it.
var recordStart = []byte(`{"id":"`)

const (
	timestampKey = `","timestamp":`
	messageKey   = `,"message":"`
)

// split reads the logEvents array at b[i] when it has exactly the layout CloudWatch Logs
// writes: compact records {"id":"<digits>","timestamp":<integer>,"message":"…"} joined by
// commas. It finds each record with a vectorised search for the next recordStart instead
// of walking the bytes of the message: the message then ends at the quote just before
// "},{" (or before "}]" for the last record). Any other layout (another key order,
// whitespace, escaped keys, other keys) makes it return ok=false, and the caller walks the
// array with the general scanner instead.
//
// One deviation cannot be told from the layout without reading the message: a writer that
// appends keys after "message". The message would then run past its real end; Text cuts
// it at its first unescaped quote, so the decoded line is still exact (see LogEvent.Text).
func (ps *payloadScanner) split(b []byte, i int) (next int, ok bool) {
	start := len(ps.events)
	ps.ids, ps.idEnds = ps.ids[:0], ps.idEnds[:0]
	fail := func() (int, bool) {
		ps.events = ps.events[:start]
		ps.ids, ps.idEnds = ps.ids[:0], ps.idEnds[:0]
		return 0, false
	}
	if i >= len(b) || b[i] != '[' {
		return fail()
	}
	i++
	if i < len(b) && b[i] == ']' {
		return i + 1, true
	}
	if !bytes.HasPrefix(b[i:], recordStart) {
		return fail()
	}
	for {
		// b[i:] starts with recordStart.
		i += len(recordStart)
		idStart := i
		i = jsonscan.Digits(b, i)
		if i == idStart || !bytes.HasPrefix(b[i:], []byte(timestampKey)) {
			return fail()
		}
		ps.ids = append(ps.ids, b[idStart:i]...)
		i += len(timestampKey)
		var e LogEvent
		s := scanner{b: b, i: i}
		ts, ok := s.int()
		if !ok || !bytes.HasPrefix(b[s.i:], []byte(messageKey)) {
			return fail()
		}
		e.Timestamp = ts
		i = s.i + len(messageKey)
		e.Escaped, e.split = true, true
		k := indexRecordStart(b[i:])
		last := k < 0
		var end int
		if last {
			// The last record: its message ends at its first unescaped quote, which must
			// close the record and the array. Keys may follow logEvents (policyLevel), so
			// no later `"}]` can be trusted; one message is walked, not every one.
			end = jsonscan.StringEnd(b, i)
			if end < 0 || !bytes.HasPrefix(b[end:], []byte(`"}]`)) {
				return fail()
			}
		} else {
			end = i + k - len(`"},`)
			if end < i || !bytes.Equal(b[end:i+k], []byte(`"},`)) {
				return fail()
			}
		}
		if jsonscan.Escaped(b, i, end) {
			return fail()
		}
		e.Message = b[i : end : end+1] // the closing quote is kept in capacity for Text
		ps.events = append(ps.events, e)
		ps.idEnds = append(ps.idEnds, len(ps.ids))
		if last {
			return end + len(`"}]`), true
		}
		i += k
	}
}
