package aggregate

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// Row is one row of the seed's SPL output for a window: single values only, with the
// output names of the rename clause, in the order of the stats clause.
type Row struct {
	Window                   string `json:"window"` // RFC 3339 UTC start of the hour
	Namespace                string `json:"objectRef.namespace"`
	Resource                 string `json:"objectRef.resource"`
	RequestReceivedTimestamp string `json:"requestReceivedTimestamp"`
	RequestURI               string `json:"requestURI"`
	Code                     string `json:"responseStatus.code"`
	Message                  string `json:"responseStatus.message"`
	SrcIP                    string `json:"src_ip"`
	Stage                    string `json:"stage"`
	Group                    string `json:"user.groups{}"`
	UID                      string `json:"user.uid"`
	User                     string `json:"user"`
	UserAgent                string `json:"userAgent"`
	Verb                     string `json:"verb"`
	Count                    int64  `json:"count"`
	// Folded marks the row of a group's overflow aggregate: the events of its rows past the
	// store's row bound, with only the user and uid kept. The seed's search has no such row.
	Folded bool `json:"folded,omitempty"`
}

// SplunkRows expands an aggregate as `stats count by … sourceIPs{} … user.groups{} …`
// does: one row per (source IP, group) pair, each with the aggregate's count. A group's
// overflow aggregate is one row marked Folded.
func SplunkRows(a Aggregate) []Row {
	f := a.Fields
	if a.Folded() {
		return []Row{{Window: a.Window.UTC().Format(time.RFC3339), UID: f.UID, User: f.User, Count: a.Count, Folded: true}}
	}
	rows := make([]Row, 0, len(f.SrcIPs)*len(f.Groups))
	for _, ip := range f.SrcIPs {
		for _, g := range f.Groups {
			rows = append(rows, Row{
				Window:                   a.Window.UTC().Format(time.RFC3339),
				Namespace:                f.Namespace,
				Resource:                 f.Resource,
				RequestReceivedTimestamp: f.RequestReceivedTimestamp,
				RequestURI:               f.RequestURI,
				Code:                     f.Code,
				Message:                  f.Message,
				SrcIP:                    ip,
				Stage:                    f.Stage,
				Group:                    g,
				UID:                      f.UID,
				User:                     f.User,
				UserAgent:                f.UserAgent,
				Verb:                     f.Verb,
				Count:                    a.Count,
			})
		}
	}
	return rows
}

// SplunkReport is the whole SPL output for a set of aggregates: the rows of every
// aggregate, rows with equal values merged (their counts added, as one stats run over all
// log groups would), sorted by window and then by the by-fields in stats order.
func SplunkReport(aggs []Aggregate) []Row {
	merged := map[Row]int64{}
	for _, a := range aggs {
		for _, r := range SplunkRows(a) {
			n := r.Count
			r.Count = 0
			merged[r] += n
		}
	}
	rows := make([]Row, 0, len(merged))
	for r, n := range merged {
		r.Count = n
		rows = append(rows, r)
	}
	slices.SortFunc(rows, compareRows)
	return rows
}

func compareRows(x, y Row) int {
	return cmp.Or(
		strings.Compare(x.Window, y.Window),
		strings.Compare(x.Namespace, y.Namespace),
		strings.Compare(x.Resource, y.Resource),
		strings.Compare(x.RequestReceivedTimestamp, y.RequestReceivedTimestamp),
		strings.Compare(x.RequestURI, y.RequestURI),
		strings.Compare(x.Code, y.Code),
		strings.Compare(x.Message, y.Message),
		strings.Compare(x.SrcIP, y.SrcIP),
		strings.Compare(x.Stage, y.Stage),
		strings.Compare(x.Group, y.Group),
		strings.Compare(x.UID, y.UID),
		strings.Compare(x.User, y.User),
		strings.Compare(x.UserAgent, y.UserAgent),
		strings.Compare(x.Verb, y.Verb),
		cmp.Compare(boolInt(x.Folded), boolInt(y.Folded)),
	)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
