package aggregate

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/eks-unauthorized-access/detector/internal/audit"
	"github.com/eks-unauthorized-access/detector/internal/detect"
)

// ParseGroupBy parses an ALERT_GROUP_BY value ("" is GroupByUser). Spaces around the
// comma and letter case are ignored.
func ParseGroupBy(s string) (GroupBy, error) {
	norm := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), " ", ""))
	switch g := GroupBy(norm); g {
	case "":
		return GroupByUser, nil
	case GroupByUser, GroupByUserSrcIP, GroupByAggregate:
		return g, nil
	}
	return "", fmt.Errorf("unknown alert grouping %q (want user, user,src_ip or aggregate)", s)
}

// ClusterFromLogGroup returns the cluster name of an EKS control-plane log group
// (/aws/eks/<cluster>/cluster), or "" for any other log group.
func ClusterFromLogGroup(logGroup string) string {
	rest, ok := strings.CutPrefix(logGroup, "/aws/eks/")
	if !ok {
		return ""
	}
	name, ok := strings.CutSuffix(rest, "/cluster")
	if !ok || name == "" || strings.Contains(name, "/") {
		return ""
	}
	return name
}

// WindowOf returns the start of the hourly window (UTC) that holds t.
func WindowOf(t time.Time) time.Time { return t.UTC().Truncate(WindowSize) }

// KeyOf is the aggregate key: a hash of the source's account and log group and the 13
// by-fields, lists whole and in order. Every string is length-prefixed, so no two inputs
// share an encoding. The account is part of it because the same log group name exists in
// every account that sends its logs (the cross-account Kinesis path).
func KeyOf(src Source, f detect.Fields) string {
	h := newHasher("aggregate/v2")
	h.str(src.Owner)
	h.str(src.LogGroup)
	h.str(f.Namespace)
	h.str(f.Resource)
	h.str(f.RequestReceivedTimestamp)
	h.str(f.RequestURI)
	h.str(f.Code)
	h.str(f.Message)
	h.list(f.SrcIPs)
	h.str(f.Stage)
	h.list(f.Groups)
	h.str(f.UID)
	h.str(f.User)
	h.str(f.UserAgent)
	h.str(f.Verb)
	return h.sum()
}

// GroupKey is the alert group key of an aggregate with the given key. It always includes
// the account and log group, so two clusters never share an alert. An unknown GroupBy
// groups per user.
func GroupKey(by GroupBy, src Source, f detect.Fields, aggregateKey string) string {
	switch by {
	case GroupByAggregate:
		return aggregateKey
	case GroupByUserSrcIP:
		// Only the peer address: the entries before it come from X-Forwarded-For and
		// X-Real-Ip, which the client sets, so a client varying them would otherwise get
		// one alert per request.
		h := newHasher("group/user,peer/v3")
		h.str(src.Owner)
		h.str(src.LogGroup)
		h.str(f.User)
		h.str(f.Peer())
		return h.sum()
	default:
		h := newHasher("group/user/v2")
		h.str(src.Owner)
		h.str(src.LogGroup)
		h.str(f.User)
		return h.sum()
	}
}

// hasher builds an unambiguous encoding of strings and lists and hashes it.
type hasher struct{ buf []byte }

func newHasher(domain string) *hasher {
	h := &hasher{}
	h.str(domain)
	return h
}

func (h *hasher) str(s string) {
	h.buf = binary.AppendUvarint(h.buf, uint64(len(s)))
	h.buf = append(h.buf, s...)
}

func (h *hasher) list(l []string) {
	h.buf = binary.AppendUvarint(h.buf, uint64(len(l)))
	for _, s := range l {
		h.str(s)
	}
}

// sum returns the first 128 bits of the SHA-256 digest, in hex.
func (h *hasher) sum() string {
	d := sha256.Sum256(h.buf)
	return hex.EncodeToString(d[:16])
}

// Accumulator builds the aggregates of a set of matches. It is not safe for concurrent use.
type Accumulator struct {
	rule    detect.Rule
	groupBy GroupBy
	aggs    []Aggregate // in the order first added
	index   map[windowKey]int
	// thinAfter, when positive, is how many rows of one alert group keep their values;
	// full counts them per group.
	thinAfter int
	full      map[AlertGroup]int
	seen      map[eventKey]struct{}
}

type windowKey struct {
	window time.Time
	key    string
}

type eventKey struct{ owner, logGroup, id string }

// New returns an empty accumulator for rule, grouping alerts by groupBy.
func New(rule detect.Rule, groupBy GroupBy) *Accumulator {
	return &Accumulator{
		rule:    rule,
		groupBy: groupBy,
		index:   make(map[windowKey]int),
		seen:    make(map[eventKey]struct{}),
	}
}

// ThinAfter makes the accumulator keep the values of at most n rows (aggregates) per
// alert group; the group's later rows are kept thin (Aggregate.Thin): key, count, times,
// ids, and of the fields only the user, uid and groups. The function sets n to the store's
// row bound: the store folds the rows past it into the group's overflow row, which keeps
// no other values, so a delivery of many distinct requests by one user costs memory for
// its ids, not for the values of every request. Zero (the default) keeps every row whole.
func (a *Accumulator) ThinAfter(n int) {
	a.thinAfter = n
	if a.full == nil {
		a.full = map[AlertGroup]int{}
	}
}

// Add counts one match from src into the aggregate of its window. logEventID is the
// CloudWatch log event id: an id already added for the same account and log group is a redelivery,
// not counted again, and Add reports it as a duplicate. Raw lines pass "" and each counts.
func (a *Accumulator) Add(src Source, m detect.Match, logEventID string) (duplicate bool) {
	return a.AddTagged(src, m, logEventID, nil)
}

// AddTagged is Add, also recording in the aggregate's WouldSuppress the names of the
// dry-run suppressions that would have suppressed the match.
func (a *Accumulator) AddTagged(src Source, m detect.Match, logEventID string, wouldSuppress []string) (duplicate bool) {
	return a.AddEntry(NewEntry(a.groupBy, src, m), logEventID, wouldSuppress)
}

// Entry is one match made ready to count: its aggregate and alert group keys are computed
// from the whole values, and its fields are bounded (bound.go). A delivery's matches wait
// as entries until the delivery has decoded whole, so what they hold does not grow with
// the length of the values an attacker sends.
type Entry struct {
	Source     Source
	Match      detect.Match // Fields within the bounds of bound.go
	Key, Group string
}

// NewEntry prepares m, from src, to be counted by the AddEntry of an accumulator grouping
// alerts by groupBy.
func NewEntry(groupBy GroupBy, src Source, m detect.Match) Entry {
	key := KeyOf(src, m.Fields)
	group := GroupKey(groupBy, src, m.Fields, key)
	m.Fields = bound(m.Fields)
	return Entry{Source: src, Match: m, Key: key, Group: group}
}

// AddEntry is AddTagged for a match prepared by NewEntry.
func (a *Accumulator) AddEntry(e Entry, logEventID string, wouldSuppress []string) (duplicate bool) {
	src, m := e.Source, e.Match
	if logEventID != "" {
		ek := eventKey{src.Owner, src.LogGroup, logEventID}
		if _, ok := a.seen[ek]; ok {
			return true
		}
		a.seen[ek] = struct{}{}
	}
	wk := windowKey{WindowOf(m.Time), e.Key}
	i, ok := a.index[wk]
	thin := false
	if !ok && a.thinAfter > 0 {
		g := AlertGroup{Rule: a.rule.ID, Window: wk.window, Group: e.Group}
		if thin = a.full[g] >= a.thinAfter; thin {
			m.Fields = detect.Fields{User: m.Fields.User, UID: m.Fields.UID, Groups: m.Fields.Groups}
			m.Identity = audit.Identity{}
		} else {
			a.full[g]++
		}
	}
	if !ok {
		i = len(a.aggs)
		a.index[wk] = i
		a.aggs = append(a.aggs, Aggregate{
			Thin:      thin,
			Rule:      a.rule.ID,
			Window:    wk.window,
			Key:       e.Key,
			Group:     e.Group,
			Source:    src,
			Fields:    m.Fields,
			FirstSeen: m.Time.UTC(),
			LastSeen:  m.Time.UTC(),
		})
	}
	agg := &a.aggs[i]
	agg.Count++
	if !agg.Thin && agg.Identity.IsZero() {
		agg.Identity = m.Identity
	}
	if src.LogStream != "" {
		agg.Source.LogStream = src.LogStream
	}
	if t := m.Time.UTC(); t.Before(agg.FirstSeen) {
		agg.FirstSeen = t
	} else if t.After(agg.LastSeen) {
		agg.LastSeen = t
	}
	if logEventID != "" {
		agg.EventIDs = append(agg.EventIDs, logEventID)
	}
	for _, name := range wouldSuppress {
		if !slices.Contains(agg.WouldSuppress, name) {
			agg.WouldSuppress = append(agg.WouldSuppress, name)
		}
	}
	return false
}

// Len returns the number of aggregates.
func (a *Accumulator) Len() int { return len(a.aggs) }

// Aggregates returns copies of the aggregates ordered by window, first seen and key, with
// EventIDs sorted.
func (a *Accumulator) Aggregates() []Aggregate {
	out := make([]Aggregate, len(a.aggs))
	for i, agg := range a.aggs {
		out[i] = agg
		out[i].EventIDs = slices.Clone(agg.EventIDs)
		out[i].WouldSuppress = slices.Clone(agg.WouldSuppress)
	}
	return order(out)
}

// Take returns the aggregates as Aggregates does, without copying them, and empties the
// accumulator (its duplicate detection too).
func (a *Accumulator) Take() []Aggregate {
	out, n := a.aggs, a.thinAfter
	*a = Accumulator{rule: a.rule, groupBy: a.groupBy, index: map[windowKey]int{}, seen: map[eventKey]struct{}{}}
	if n > 0 {
		a.ThinAfter(n)
	}
	return order(out)
}

// order sorts aggs by window, first seen and key, and each one's EventIDs and
// WouldSuppress.
func order(aggs []Aggregate) []Aggregate {
	for i := range aggs {
		slices.Sort(aggs[i].EventIDs)
		slices.Sort(aggs[i].WouldSuppress)
	}
	slices.SortFunc(aggs, func(x, y Aggregate) int {
		return cmp.Or(x.Window.Compare(y.Window), x.FirstSeen.Compare(y.FirstSeen), cmp.Compare(x.Key, y.Key))
	})
	return aggs
}
