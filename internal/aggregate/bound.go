package aggregate

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/eks-unauthorized-access/detector/internal/detect"
)

// Bounds of the field values an aggregate keeps. Every by-field but the timestamp is
// attacker-controlled and may be as long as an audit line (CloudWatch Logs allows 256 KB),
// so an aggregate keeps a bounded prefix: its memory, its DynamoDB item and its alert do
// not grow with what the attacker sends. The aggregate key is computed from the whole
// values first, so two values that differ only past the bound stay two aggregates.
const (
	// MaxValueBytes is the longest value kept; longer values are cut and end in Truncated.
	MaxValueBytes = 4096
	// MaxListValues is the most entries kept of a multi-value field (src_ip, user.groups{}).
	MaxListValues = 64
	// MaxListBytes bounds the bytes kept of one multi-value field. With the other bounds a
	// stored aggregate stays under about 200 KB, half of DynamoDB's 400 KB item limit.
	MaxListBytes = 16 << 10
	// Truncated ends a value cut at MaxValueBytes.
	Truncated = "…[truncated]"
)

// Cut bounds one value to MaxValueBytes, cutting at a character boundary and marking the
// cut. The result never shares memory with v when v is cut, so a long line it came from
// can be freed.
func Cut(v string) string {
	if len(v) <= MaxValueBytes {
		return v
	}
	end := MaxValueBytes - len(Truncated)
	for end > 0 && !utf8.RuneStart(v[end]) {
		end--
	}
	return strings.Clone(v[:end]) + Truncated
}

// CutList bounds a multi-value field: each entry cut, in order, within MaxListValues
// entries and MaxListBytes bytes; the entries left out are counted in a "…[+N more]"
// entry, followed by the last value, always kept: the last source IP is the peer address,
// the only one the client cannot choose (detect.Fields.Peer).
func CutList(values []string) []string {
	const markerRoom = 32 // bytes kept free for the "…[+N more]" entry
	if len(values) == 0 {
		return []string{}
	}
	tail := Cut(values[len(values)-1])
	out := make([]string, 0, min(len(values), MaxListValues))
	size := len(tail)
	for i, v := range values[:len(values)-1] {
		v = Cut(v)
		if (i == MaxListValues-2 && len(values) > MaxListValues) || size+len(v) > MaxListBytes-markerRoom {
			out = append(out, fmt.Sprintf("…[+%d more]", len(values)-1-i))
			break
		}
		size += len(v)
		out = append(out, v)
	}
	return append(out, tail)
}

// bound returns f with every value within the bounds above. The parser gives each value
// its own copy, and Cut copies the prefix it keeps, so a bounded aggregate never holds a
// long value alive.
func bound(f detect.Fields) detect.Fields {
	c := Cut
	l := func(vs []string) []string {
		if len(vs) == 0 {
			return vs
		}
		return CutList(vs)
	}
	return detect.Fields{
		Namespace: c(f.Namespace), Resource: c(f.Resource), RequestReceivedTimestamp: c(f.RequestReceivedTimestamp),
		RequestURI: c(f.RequestURI), Code: c(f.Code), Message: c(f.Message), SrcIPs: l(f.SrcIPs), Stage: c(f.Stage),
		Groups: l(f.Groups), UID: c(f.UID), User: c(f.User), UserAgent: c(f.UserAgent), Verb: c(f.Verb),
	}
}
