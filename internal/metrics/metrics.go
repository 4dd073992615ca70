// Package metrics writes one CloudWatch Embedded Metric Format (EMF) record per invocation:
// a JSON log line that CloudWatch Logs turns into metrics without any API call, so the
// function needs no cloudwatch:PutMetricData permission.
//
// Only counts are written: never a user name, a URI or any other value taken from an
// audit event, so a record can neither leak request data nor explode metric cardinality.
package metrics

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/eks-unauthorized-access/detector/internal/logsource"
)

// Namespace is the CloudWatch namespace the metrics are published under.
const Namespace = "EKSUnauthorizedAccess"

// DimensionFunctionName is the dimension key carrying the function name.
const DimensionFunctionName = "FunctionName"

// MaxMetrics is the EMF limit on metric definitions in one directive.
const MaxMetrics = 100

// Metric names written in every record.
const (
	LogEventsReceived   = "LogEventsReceived"
	AuditEventsParsed   = "AuditEventsParsed"
	LinesSkipped        = "LinesSkipped"
	Matches             = "Matches"
	Suppressed          = "Suppressed"
	AggregatesWritten   = "AggregatesWritten"
	DuplicateDeliveries = "DuplicateDeliveries"
	AlertsPublished     = "AlertsPublished"
	SuppressionErrors   = "SuppressionErrors"
	// PublishOutcomeUnknown counts publishes that SNS may or may not have accepted;
	// PossibleDuplicates counts alerts published again, flagged, after one.
	PublishOutcomeUnknown = "PublishOutcomeUnknown"
	PossibleDuplicates    = "PossibleDuplicates"
	// LogEventsRejected counts log events from log groups or streams that match none of the
	// accepted patterns (also written per reason: LogEventsRejectedLogGroup, ...);
	// RecordsFailed counts the Kinesis records reported back to Lambda as failed.
	LogEventsRejected = "LogEventsRejected"
	RecordsFailed     = "RecordsFailed"
	// SuppressionsExpired is the number of suppression entries past their expiry (they
	// suppress nothing); SuppressionUpdateRejected is 1 while the latest version of the
	// suppressions' parameter is rejected (it does not compile: the previous set stays in
	// use); SuppressionParameterErrors counts failed reads of that parameter.
	SuppressionsExpired        = "SuppressionsExpired"
	SuppressionUpdateRejected  = "SuppressionUpdateRejected"
	SuppressionParameterErrors = "SuppressionParameterErrors"
)

// Per-suppression metrics, written in one record per entry name with the dimension
// DimensionSuppression (and FunctionName): the matches the entry suppressed, and those a
// dry-run entry would have suppressed.
const (
	DimensionSuppression  = "Suppression"
	SuppressionHits       = "SuppressionHits"
	SuppressionDryRunHits = "SuppressionDryRunHits"
)

// Invocation holds the counts of one Lambda invocation.
type Invocation struct {
	// FunctionName becomes the FunctionName dimension; empty means no dimension.
	FunctionName string

	LogEventsReceived int64 // CloudWatch log events in the delivery
	AuditEventsParsed int64 // lines that parsed as audit events
	// LinesSkipped counts unused lines per reason; LinesSkipped is written as their sum.
	LinesSkipped        map[string]int64
	Matches             int64 // audit events matching the detection
	Suppressed          int64 // matches dropped by the suppression filter
	AggregatesWritten   int64 // aggregates recorded (idempotently) in the table
	DuplicateDeliveries int64 // signs of redelivery: repeated log events, alert groups already sent
	AlertsPublished     int64 // SNS messages published
	SuppressionErrors   int64 // suppression expressions that failed at run time (match kept)
	// PublishOutcomeUnknown counts publishes SNS may have accepted although they failed.
	PublishOutcomeUnknown int64
	// PossibleDuplicates counts alerts published flagged as possible duplicates.
	PossibleDuplicates int64
	// LogEventsRejected counts, per reason, log events whose source was not accepted;
	// LogEventsRejected is written as their sum.
	LogEventsRejected map[logsource.Reason]int64
	// RecordsFailed counts the Kinesis records of the batch reported as failed.
	RecordsFailed int64
	// SuppressionsExpired, SuppressionUpdateRejected and SuppressionParameterErrors: see
	// the metric names.
	SuppressionsExpired        int64
	SuppressionUpdateRejected  int64
	SuppressionParameterErrors int64
	// Outputs count what was sent to each optional output (Security Hub, EventBridge); an
	// output not configured has no entry and writes no metric.
	Outputs []Output
}

// SuppressionCounts are one suppression entry's counts in one invocation.
type SuppressionCounts struct {
	Suppressed    int64 // matches it suppressed
	WouldSuppress int64 // matches it would have suppressed (a dry-run entry)
}

// Output counts what one invocation sent to one optional output. Its metrics are named
// after the output: SecurityHubSent, SecurityHubFailures, SecurityHubOutcomeUnknown,
// SecurityHubPossibleDuplicates, and the same for EventBridge.
type Output struct {
	Name               string // the output's name, "securityhub" or "eventbridge"
	Sent               int64  // findings imported, events put
	Failures           int64  // alerts whose copy failed (the delivery is retried)
	OutcomeUnknown     int64  // sends that may or may not have arrived
	PossibleDuplicates int64  // copies sent again, flagged, after such a send
}

// OutputMetric is the name of metric what ("Sent", "Failures", "OutcomeUnknown",
// "PossibleDuplicates") of the output named output.
func OutputMetric(output, what string) string {
	if p, ok := outputPrefixes[output]; ok {
		return p + what
	}
	return "Output" + metricSuffix(output) + what
}

// outputPrefixes are the metric-name prefixes of the known outputs.
var outputPrefixes = map[string]string{"securityhub": "SecurityHub", "eventbridge": "EventBridge"}

type metricDefinition struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

type metricDirective struct {
	Namespace  string             `json:"Namespace"`
	Dimensions [][]string         `json:"Dimensions"`
	Metrics    []metricDefinition `json:"Metrics"`
}

type metadata struct {
	Timestamp         int64             `json:"Timestamp"`
	CloudWatchMetrics []metricDirective `json:"CloudWatchMetrics"`
}

// Record returns the EMF document for m at time now, as a JSON object.
func Record(m Invocation, now time.Time) map[string]any {
	values := []struct {
		name  string
		value int64
	}{
		{LogEventsReceived, m.LogEventsReceived},
		{AuditEventsParsed, m.AuditEventsParsed},
		{LinesSkipped, 0}, // filled below
		{Matches, m.Matches},
		{Suppressed, m.Suppressed},
		{AggregatesWritten, m.AggregatesWritten},
		{DuplicateDeliveries, m.DuplicateDeliveries},
		{AlertsPublished, m.AlertsPublished},
		{SuppressionErrors, m.SuppressionErrors},
		{PublishOutcomeUnknown, m.PublishOutcomeUnknown},
		{PossibleDuplicates, m.PossibleDuplicates},
		{LogEventsRejected, 0}, // filled below
		{RecordsFailed, m.RecordsFailed},
		{SuppressionsExpired, m.SuppressionsExpired},
		{SuppressionUpdateRejected, m.SuppressionUpdateRejected},
		{SuppressionParameterErrors, m.SuppressionParameterErrors},
	}
	doc := map[string]any{}
	var defs []metricDefinition
	add := func(name string, v int64) {
		if _, dup := doc[name]; dup {
			doc[name] = doc[name].(int64) + v
			return
		}
		doc[name] = v
		defs = append(defs, metricDefinition{Name: name, Unit: "Count"})
	}

	var total int64
	reasons := make([]string, 0, len(m.LinesSkipped))
	for r, n := range m.LinesSkipped {
		total += n
		reasons = append(reasons, r)
	}
	values[2].value = total
	var rejected int64
	rejectReasons := make([]logsource.Reason, 0, len(m.LogEventsRejected))
	for r, n := range m.LogEventsRejected {
		rejected += n
		rejectReasons = append(rejectReasons, r)
	}
	values[11].value = rejected
	for _, v := range values {
		add(v.name, v.value)
	}
	for _, o := range m.Outputs {
		add(OutputMetric(o.Name, "Sent"), o.Sent)
		add(OutputMetric(o.Name, "Failures"), o.Failures)
		add(OutputMetric(o.Name, "OutcomeUnknown"), o.OutcomeUnknown)
		add(OutputMetric(o.Name, "PossibleDuplicates"), o.PossibleDuplicates)
	}
	sort.Slice(rejectReasons, func(i, j int) bool { return rejectReasons[i] < rejectReasons[j] })
	for _, r := range rejectReasons {
		add(LogEventsRejected+metricSuffix(string(r)), m.LogEventsRejected[r])
	}
	// Per-reason metrics, in a stable order. A reason that would push the record over the
	// EMF limit is still part of the LinesSkipped total.
	sort.Slice(reasons, func(i, j int) bool { return reasons[i] < reasons[j] })
	for _, r := range reasons {
		name := LinesSkipped + metricSuffix(r)
		if _, seen := doc[name]; !seen && len(defs) >= MaxMetrics {
			continue
		}
		add(name, m.LinesSkipped[r])
	}

	dims := [][]string{{}}
	if m.FunctionName != "" {
		dims = [][]string{{DimensionFunctionName}}
		doc[DimensionFunctionName] = m.FunctionName
	}
	doc["_aws"] = metadata{
		Timestamp: now.UnixMilli(),
		CloudWatchMetrics: []metricDirective{{
			Namespace:  Namespace,
			Dimensions: dims,
			Metrics:    defs,
		}},
	}
	return doc
}

// Write writes the EMF record for m at time now to w as one line, as CloudWatch Logs
// expects it on the function's standard output.
func Write(w io.Writer, m Invocation, now time.Time) error {
	line, err := json.Marshal(Record(m, now))
	if err != nil {
		return fmt.Errorf("encode metrics record: %w", err)
	}
	line = append(line, '\n')
	if _, err := w.Write(line); err != nil {
		return fmt.Errorf("write metrics record: %w", err)
	}
	return nil
}

// WriteSuppressions writes one EMF record per suppression entry in counts, in name order,
// with the entry's name as the Suppression dimension. Names are the operator's (checked
// by suppress.NamePattern when loaded), never a value from an audit event. An entry
// without a match in the invocation has no record: in CloudWatch, an entry that matches
// nothing any more has no data points.
func WriteSuppressions(w io.Writer, functionName string, counts map[string]SuppressionCounts, now time.Time) error {
	names := make([]string, 0, len(counts))
	for name := range counts {
		names = append(names, name)
	}
	sort.Strings(names)
	dims := []string{DimensionSuppression}
	if functionName != "" {
		dims = []string{DimensionFunctionName, DimensionSuppression}
	}
	for _, name := range names {
		doc := map[string]any{
			DimensionSuppression:  name,
			SuppressionHits:       counts[name].Suppressed,
			SuppressionDryRunHits: counts[name].WouldSuppress,
			"_aws": metadata{
				Timestamp: now.UnixMilli(),
				CloudWatchMetrics: []metricDirective{{
					Namespace:  Namespace,
					Dimensions: [][]string{dims},
					Metrics:    []metricDefinition{{Name: SuppressionHits, Unit: "Count"}, {Name: SuppressionDryRunHits, Unit: "Count"}},
				}},
			},
		}
		if functionName != "" {
			doc[DimensionFunctionName] = functionName
		}
		line, err := json.Marshal(doc)
		if err != nil {
			return fmt.Errorf("encode suppression metrics record: %w", err)
		}
		if _, err := w.Write(append(line, '\n')); err != nil {
			return fmt.Errorf("write suppression metrics record: %w", err)
		}
	}
	return nil
}

// metricSuffix turns a reason into a CamelCase metric-name suffix of letters and digits,
// so free-form reasons cannot produce odd metric names.
func metricSuffix(r string) string {
	var b strings.Builder
	upper := true
	for _, c := range string(r) {
		if !unicode.IsLetter(c) && !unicode.IsDigit(c) || c > unicode.MaxASCII {
			upper = true
			continue
		}
		if upper {
			c = unicode.ToUpper(c)
			upper = false
		}
		b.WriteRune(c)
	}
	if b.Len() == 0 {
		return "Other"
	}
	s := b.String()
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}
