// Package aggregate implements the stats clause of the detection over hourly tumbling
// windows of event time, and groups aggregates into alert groups.
package aggregate

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"github.com/eks-unauthorized-access/detector/internal/audit"
	"github.com/eks-unauthorized-access/detector/internal/detect"
)

// WindowSize is the length of a tumbling window.
const WindowSize = time.Hour

// Source says where matched events came from (one CloudWatch Logs log group).
type Source struct {
	Owner     string `json:"owner"`     // AWS account id
	LogGroup  string `json:"logGroup"`  // /aws/eks/<cluster>/cluster
	LogStream string `json:"logStream"` // last stream seen
	Cluster   string `json:"cluster"`   // parsed from LogGroup, "" when the group is not an EKS one
	Region    string `json:"region"`    // from the function's environment, "" in replay
}

// Aggregate is one row of `stats count by <13 fields>` within one window and source.
type Aggregate struct {
	Rule   string    `json:"rule"`   // detect.Rule.ID
	Window time.Time `json:"window"` // start of the hour, UTC
	// Key identifies the aggregate within its window: a hash of Source.LogGroup and Fields.
	Key    string        `json:"key"`
	Group  string        `json:"group"` // alert group key within the window (see GroupBy)
	Source Source        `json:"source"`
	Fields detect.Fields `json:"fields"`
	Count  int64         `json:"count"`
	// FirstSeen and LastSeen are the earliest and latest event times counted.
	FirstSeen time.Time `json:"firstSeen"`
	LastSeen  time.Time `json:"lastSeen"`
	// Identity is who was behind the first request counted here (user.extra identifiers;
	// the by-fields make an aggregate one request, or a few alike). Not a by-field: the
	// Splunk rows do not show it.
	Identity audit.Identity `json:"identity,omitzero"`
	// EventIDs are the CloudWatch log event ids counted here, sorted and unique (empty for
	// raw lines, which have no ids). They make storage idempotent across redeliveries.
	EventIDs []string `json:"eventIds,omitempty"`
	// WouldSuppress names the dry-run suppressions that would have suppressed some of the
	// events counted here by this run (sorted). It is not stored: an alert carries the
	// names found in the delivery that raised it.
	WouldSuppress []string `json:"wouldSuppress,omitempty"`
	// Thin is set on a row the accumulator kept without its values (Accumulator.ThinAfter):
	// of its fields only the user, uid and groups, and no identity. Its key, count, times
	// and ids are exact. The store never gives it a row of its own unless its key already
	// has one, and then writes only what the row lacks.
	Thin bool `json:"thin,omitempty"`
}

// AlertGroup identifies one alert group: the rule, the hourly window and the group key of
// its aggregates (GroupKey, decided by GroupBy). It is the one definition of an alert
// group: the handler and replay group aggregates with AlertGroupOf and Split, the store
// saves and loads a group's items under its Key, and alerts are built per group.
type AlertGroup struct {
	Rule   string
	Window time.Time // start of the hour, UTC
	Group  string    // Aggregate.Group
}

// MaxGroupKeyBytes is the longest group key used verbatim in AlertGroup.Key.
const MaxGroupKeyBytes = 1024

// AlertGroupOf returns the alert group of an aggregate.
func AlertGroupOf(a Aggregate) AlertGroup {
	return AlertGroup{Rule: a.Rule, Window: a.Window.UTC(), Group: a.Group}
}

// Key is the group's identity as one string, "<rule>#<window start, RFC 3339 UTC>#<group
// key>" (a group key longer than MaxGroupKeyBytes replaced by "sha256:<hex>"): the store's
// partition key of the group's items.
func (g AlertGroup) Key() string {
	group := g.Group
	if len(group) > MaxGroupKeyBytes {
		sum := sha256.Sum256([]byte(group))
		group = "sha256:" + hex.EncodeToString(sum[:])
	}
	return g.Rule + "#" + g.Window.UTC().Format(time.RFC3339) + "#" + group
}

// Split returns the alert groups of aggs with their aggregates, ordered by window, then
// group key. It sorts aggs in place by the same order (stable: each group's aggregates
// keep their input order) and each group's aggregates are a part of aggs, so nothing is
// copied: a delivery of many distinct rows is held once.
func Split(aggs []Aggregate) ([]AlertGroup, map[AlertGroup][]Aggregate) {
	slices.SortStableFunc(aggs, func(x, y Aggregate) int {
		return cmp.Or(x.Window.Compare(y.Window), strings.Compare(x.Group, y.Group), strings.Compare(x.Rule, y.Rule))
	})
	by := map[AlertGroup][]Aggregate{}
	var groups []AlertGroup
	for start := 0; start < len(aggs); {
		g := AlertGroupOf(aggs[start])
		end := start + 1
		for end < len(aggs) && AlertGroupOf(aggs[end]) == g {
			end++
		}
		groups = append(groups, g)
		by[g] = aggs[start:end:end]
		start = end
	}
	return groups, by
}

// OverflowKey is the Key of a group's overflow aggregate: the store folds into it the
// events of the rows past its bound on rows per alert group and window, so that an
// attacker who makes every request a distinct row cannot make the work per delivery grow
// with it. Its count is exact; of its fields only the user and uid are kept.
const OverflowKey = "overflow"

// Folded reports whether a is a group's overflow aggregate (see OverflowKey).
func (a Aggregate) Folded() bool { return a.Key == OverflowKey }

// GroupBy decides which aggregates share one alert.
type GroupBy string

// Alert grouping options (ALERT_GROUP_BY).
const (
	GroupByUser      GroupBy = "user"        // one alert per user per window and log group
	GroupByUserSrcIP GroupBy = "user,src_ip" // per user and peer address (the last source IP)
	GroupByAggregate GroupBy = "aggregate"   // one alert per Splunk row
)
