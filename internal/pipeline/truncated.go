package pipeline

import (
	"bytes"
	"errors"

	"github.com/eks-unauthorized-access/detector/internal/audit"
)

// truncatedSuffix ends a log event that CloudWatch Logs cut at its size limit.
var truncatedSuffix = []byte("[Truncated...]")

// parseCut reads a line that was cut: by CloudWatch Logs (audit.Parse answered
// audit.ErrTruncated) or by the decoder at MaxLineBytes (cut). An attacker can push the
// end of a forbidden create past the size limit with a long request URI or many
// X-Forwarded-For values; the members before the cut are still what the API server wrote.
// The line is read from its last complete top-level member, closed; it is used only when
// that part holds the verb and the response status reason, the fields the rule needs.
// By-fields after the cut take the fill value, and the window falls back to the log
// event's time when requestReceivedTimestamp is cut off.
func parseCut(text []byte, cut bool, err error) (audit.Event, bool) {
	if !cut && !errors.Is(err, audit.ErrTruncated) {
		return audit.Event{}, false
	}
	line := bytes.TrimSuffix(bytes.TrimSpace(text), truncatedSuffix)
	head := completeMembers(line)
	if head == nil {
		return audit.Event{}, false
	}
	ev, perr := audit.Parse(head)
	if perr != nil || !ev.Has(audit.FieldVerb) || !ev.Has(audit.FieldStatusReason) {
		return audit.Event{}, false
	}
	return ev, true
}

// completeMembers returns the JSON object that line starts, closed after its last complete
// top-level member, or nil when it has none. It only finds the members' ends; audit.Parse
// validates what it returns.
func completeMembers(line []byte) []byte {
	i := skipWS(line, 0)
	if i >= len(line) || line[i] != '{' {
		return nil
	}
	last := -1 // the end of the last complete member
	i++
	for {
		i = skipWS(line, i)
		if i < len(line) && line[i] == '}' && last < 0 {
			return nil
		}
		// A member: key, colon, value.
		k := skipValue(line, i)
		if k < 0 || line[i] != '"' {
			break
		}
		i = skipWS(line, k)
		if i >= len(line) || line[i] != ':' {
			break
		}
		v := skipValue(line, skipWS(line, i+1))
		if v < 0 {
			break
		}
		last = v
		i = skipWS(line, v)
		if i >= len(line) || line[i] != ',' {
			break
		}
		i++
	}
	if last < 0 {
		return nil
	}
	out := make([]byte, 0, last+1)
	return append(append(out, line[:last]...), '}')
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the index just past the JSON value at b[i], or -1 when it is not
// complete within b.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	depth := 0
	for ; i < len(b); i++ {
		switch c := b[i]; c {
		case '"':
			i++
			for i < len(b) && b[i] != '"' {
				if b[i] == '\\' {
					i++
				}
				i++
			}
			if i >= len(b) {
				return -1
			}
		case '{', '[':
			depth++
			continue
		case '}', ']':
			depth--
			if depth < 0 {
				return -1
			}
		default:
			if depth > 0 {
				continue
			}
			// A literal or number: it ends at a delimiter, which must be there.
			j := i
			for j < len(b) && bytes.IndexByte([]byte(",}] \t\r\n"), b[j]) < 0 {
				j++
			}
			if j == len(b) {
				return -1
			}
			return j
		}
		if depth == 0 {
			return i + 1
		}
	}
	return -1
}
