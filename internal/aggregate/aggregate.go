// Package aggregate implements the stats clause of the detection over hourly tumbling
// windows of event time, and groups aggregates into alert groups.
package aggregate

import (
	"time"

	"github.com/eks-unauthorized-access/detector/internal/detect"
)

// WindowSize is the length of a tumbling window.
const WindowSize = time.Hour

// Source says where matched events came from (one CloudWatch Logs log group).
type Source struct {
	Owner     string // AWS account id
	LogGroup  string // /aws/eks/<cluster>/cluster
	LogStream string // last stream seen
	Cluster   string // parsed from LogGroup, "" when the group is not an EKS one
	Region    string // from the function's environment, "" in replay
}

// Aggregate is one row of `stats count by <13 fields>` within one window and source.
type Aggregate struct {
	Rule   string    // detect.Rule.ID
	Window time.Time // start of the hour, UTC
	// Key identifies the aggregate within its window: a hash of Source.LogGroup and Fields.
	Key    string
	Group  string // alert group key within the window (see GroupBy)
	Source Source
	Fields detect.Fields
	Count  int64
	FirstSeen, LastSeen time.Time
	// EventIDs are the CloudWatch log event ids counted here, sorted and unique (empty for
	// raw lines, which have no ids). They make storage idempotent across redeliveries.
	EventIDs []string
}

// GroupBy decides which aggregates share one alert.
type GroupBy string

// Alert grouping options (ALERT_GROUP_BY).
const (
	GroupByUser      GroupBy = "user"       // one alert per user per window and log group
	GroupByUserSrcIP GroupBy = "user,src_ip" // per user and source IP list
	GroupByAggregate GroupBy = "aggregate"  // one alert per Splunk row
)
