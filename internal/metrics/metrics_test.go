package metrics_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/xeipuuv/gojsonschema"

	"github.com/eks-unauthorized-access/detector/internal/golden"
	"github.com/eks-unauthorized-access/detector/internal/logsource"
	"github.com/eks-unauthorized-access/detector/internal/metrics"
)

// now is a fixed invocation time with sub-millisecond digits, to check truncation to ms.
var now = time.Date(2025, 11, 25, 20, 15, 30, 123456789, time.UTC)

// emfSchema compiles testdata/emf.schema.json, written from the EMF specification.
func emfSchema(t *testing.T) *gojsonschema.Schema {
	t.Helper()
	abs, err := filepath.Abs("testdata/emf.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	s, err := gojsonschema.NewSchema(gojsonschema.NewReferenceLoader("file://" + abs))
	if err != nil {
		t.Fatalf("compile EMF schema: %v", err)
	}
	return s
}

// checkEMF checks one record against the parts of the specification a JSON schema cannot
// express: every metric and dimension named by a directive is a root member of the right
// type, names are unique, and nothing but counts sits at the root.
func checkEMF(t *testing.T, schema *gojsonschema.Schema, line []byte) map[string]any {
	t.Helper()
	res, err := schema.Validate(gojsonschema.NewBytesLoader(line))
	if err != nil {
		t.Fatalf("validate: %v", err)
	}
	for _, e := range res.Errors() {
		t.Errorf("EMF schema: %s", e)
	}
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("record is not one JSON object: %v", err)
	}
	if dec.More() {
		t.Fatal("extra data after the JSON object")
	}
	meta := doc["_aws"].(map[string]any)
	named := map[string]bool{"_aws": true}
	for _, d := range meta["CloudWatchMetrics"].([]any) {
		dir := d.(map[string]any)
		seen := map[string]bool{}
		for _, m := range dir["Metrics"].([]any) {
			name := m.(map[string]any)["Name"].(string)
			if seen[name] {
				t.Errorf("metric %s defined twice", name)
			}
			seen[name] = true
			named[name] = true
			if _, ok := doc[name].(json.Number); !ok {
				t.Errorf("metric %s: root value %v is not a number", name, doc[name])
			}
		}
		for _, set := range dir["Dimensions"].([]any) {
			for _, k := range set.([]any) {
				key := k.(string)
				named[key] = true
				v, ok := doc[key].(string)
				if !ok || v == "" || len(v) > 1024 {
					t.Errorf("dimension %s: root value %v is not a 1-1024 character string", key, doc[key])
				}
			}
		}
	}
	for k := range doc {
		if !named[k] {
			t.Errorf("root member %s is not a declared metric or dimension", k)
		}
	}
	return doc
}

func TestWriteFollowsEMF(t *testing.T) {
	schema := emfSchema(t)
	manyReasons := map[string]int64{}
	for i := range 150 {
		manyReasons[(fmt.Sprintf("reason %03d", i))] = 1
	}
	tests := []struct {
		name      string
		in        metrics.Invocation
		want      map[string]int64 // expected root values (a subset)
		dimension string           // expected FunctionName, "" for none
		nMetrics  int
	}{
		{
			name: "empty invocation, no dimension",
			in:   metrics.Invocation{},
			want: map[string]int64{
				"LogEventsReceived": 0, "AuditEventsParsed": 0, "LinesSkipped": 0, "Matches": 0,
				"Suppressed": 0, "AggregatesWritten": 0, "DuplicateDeliveries": 0, "AlertsPublished": 0,
				"SuppressionErrors": 0,
			},
			nMetrics: 16,
		},
		{
			name: "full invocation with function name and skip reasons",
			in: metrics.Invocation{
				FunctionName:      "detector-UnauthorizedAccessFunction-abc",
				LogEventsReceived: 120, AuditEventsParsed: 110,
				LinesSkipped: map[string]int64{
					"NotJSON": 4, "Truncated": 5, "NotAudit": 1,
				},
				Matches: 9, Suppressed: 2, AggregatesWritten: 3, DuplicateDeliveries: 1, AlertsPublished: 2,
				SuppressionErrors:   1,
				LogEventsRejected:   map[logsource.Reason]int64{logsource.RejectLogGroup: 7, logsource.RejectLogStream: 2},
				RecordsFailed:       1,
				SuppressionsExpired: 2, SuppressionUpdateRejected: 1, SuppressionParameterErrors: 1,
			},
			want: map[string]int64{
				"LogEventsReceived": 120, "AuditEventsParsed": 110, "LinesSkipped": 10,
				"LinesSkippedNotJSON": 4, "LinesSkippedTruncated": 5, "LinesSkippedNotAudit": 1,
				"Matches": 9, "Suppressed": 2, "AggregatesWritten": 3, "DuplicateDeliveries": 1,
				"AlertsPublished": 2, "SuppressionErrors": 1,
				"LogEventsRejected": 9, "LogEventsRejectedLogGroup": 7, "LogEventsRejectedLogStream": 2, "RecordsFailed": 1,
				"SuppressionsExpired": 2, "SuppressionUpdateRejected": 1, "SuppressionParameterErrors": 1,
			},
			dimension: "detector-UnauthorizedAccessFunction-abc",
			nMetrics:  21,
		},
		{
			name: "free-form reasons become clean names and merge",
			in: metrics.Invocation{LinesSkipped: map[string]int64{
				"too large": 2, "Too-Large": 3, "": 1, "<@here>": 4,
			}},
			want:     map[string]int64{"LinesSkipped": 10, "LinesSkippedTooLarge": 5, "LinesSkippedOther": 1, "LinesSkippedHere": 4},
			nMetrics: 19,
		},
		{
			name:     "more reasons than EMF allows: capped at 100 metrics, total kept",
			in:       metrics.Invocation{LinesSkipped: manyReasons},
			want:     map[string]int64{"LinesSkipped": 150, "LinesSkippedReason000": 1, "LinesSkippedReason083": 1},
			nMetrics: metrics.MaxMetrics,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := metrics.Write(&buf, tt.in, now); err != nil {
				t.Fatalf("Write: %v", err)
			}
			out := buf.Bytes()
			if bytes.Count(out, []byte("\n")) != 1 || out[len(out)-1] != '\n' {
				t.Fatalf("want exactly one line, got %q", out)
			}
			doc := checkEMF(t, schema, out)
			meta := doc["_aws"].(map[string]any)
			if ts, _ := meta["Timestamp"].(json.Number).Int64(); ts != now.UnixMilli() {
				t.Errorf("Timestamp = %d, want %d", ts, now.UnixMilli())
			}
			dir := meta["CloudWatchMetrics"].([]any)[0].(map[string]any)
			if dir["Namespace"] != metrics.Namespace {
				t.Errorf("Namespace = %v", dir["Namespace"])
			}
			if n := len(dir["Metrics"].([]any)); n != tt.nMetrics {
				t.Errorf("%d metrics, want %d", n, tt.nMetrics)
			}
			for _, m := range dir["Metrics"].([]any) {
				if u := m.(map[string]any)["Unit"]; u != "Count" {
					t.Errorf("unit %v, want Count", u)
				}
			}
			dims := dir["Dimensions"].([]any)
			if len(dims) != 1 {
				t.Fatalf("dimension sets = %v", dims)
			}
			if tt.dimension == "" {
				if len(dims[0].([]any)) != 0 || doc["FunctionName"] != nil {
					t.Errorf("want no dimension, got %v", dims)
				}
			} else if doc["FunctionName"] != tt.dimension {
				t.Errorf("FunctionName = %v, want %s", doc["FunctionName"], tt.dimension)
			}
			for name, want := range tt.want {
				got, ok := doc[name].(json.Number)
				if !ok {
					t.Errorf("%s missing", name)
					continue
				}
				if n, _ := got.Int64(); n != want {
					t.Errorf("%s = %d, want %d", name, n, want)
				}
			}
		})
	}
}

// TestWriteSuppressions: one valid EMF record per entry, in name order, with the entry's
// name as a dimension beside the function name.
func TestWriteSuppressions(t *testing.T) {
	schema := emfSchema(t)
	var buf bytes.Buffer
	counts := map[string]metrics.SuppressionCounts{"scanner": {Suppressed: 3}, "ci-deployer": {Suppressed: 1}, "try-ns": {WouldSuppress: 2}}
	if err := metrics.WriteSuppressions(&buf, "fn", counts, now); err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	if len(lines) != 3 {
		t.Fatalf("%d records, want 3:\n%s", len(lines), buf.String())
	}
	for i, want := range []struct {
		name          string
		hits, dryRuns int64
	}{{"ci-deployer", 1, 0}, {"scanner", 3, 0}, {"try-ns", 0, 2}} {
		doc := checkEMF(t, schema, append(lines[i], '\n'))
		dir := doc["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)
		if got := fmt.Sprint(dir["Dimensions"]); got != "[[FunctionName Suppression]]" {
			t.Errorf("dimensions %s", got)
		}
		hits, _ := doc[metrics.SuppressionHits].(json.Number).Int64()
		dry, _ := doc[metrics.SuppressionDryRunHits].(json.Number).Int64()
		if doc["Suppression"] != want.name || doc["FunctionName"] != "fn" || hits != want.hits || dry != want.dryRuns {
			t.Errorf("record %d = %v, want %+v", i, doc, want)
		}
	}
}

// TestRecordGolden pins the exact record, field order aside, so a rename of a metric (which
// would break dashboards and alarms) shows up in review. Refresh with -update.
func TestRecordGolden(t *testing.T) {
	in := metrics.Invocation{
		FunctionName:      "detector-UnauthorizedAccessFunction-abc",
		LogEventsReceived: 3, AuditEventsParsed: 2,
		LinesSkipped: map[string]int64{"Truncated": 1},
		Matches:      2, AggregatesWritten: 1, AlertsPublished: 1,
		LogEventsRejected: map[logsource.Reason]int64{logsource.RejectLogGroup: 4},
	}
	got, err := json.MarshalIndent(metrics.Record(in, now), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	golden.Check(t, filepath.Join("testdata", "record.golden.json"), got)
}

// TestSchemaRejectsInvalid makes sure the schema used above is not vacuous: documents that
// break the specification are refused.
func TestSchemaRejectsInvalid(t *testing.T) {
	schema := emfSchema(t)
	var defs []string
	for i := range 101 {
		defs = append(defs, fmt.Sprintf(`{"Name":"m%d"}`, i))
	}
	bad := map[string]string{
		"no _aws":              `{"Matches":1}`,
		"no timestamp":         `{"_aws":{"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[[]],"Metrics":[]}]}}`,
		"timestamp in seconds": `{"_aws":{"Timestamp":"2025-01-01","CloudWatchMetrics":[]}}`,
		"no namespace":         `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Dimensions":[[]],"Metrics":[]}]}}`,
		"bad unit":             `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[[]],"Metrics":[{"Name":"a","Unit":"Things"}]}]}}`,
		"101 metrics":          `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[[]],"Metrics":[` + strings.Join(defs, ",") + `]}]}}`,
		"dimensions not sets":  `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":["FunctionName"],"Metrics":[]}]}}`,
	}
	names := make([]string, 0, len(bad))
	for n := range bad {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		res, err := schema.Validate(gojsonschema.NewStringLoader(bad[n]))
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if res.Valid() {
			t.Errorf("%s: accepted by the EMF schema", n)
		}
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("closed") }

func TestWriteReportsWriterError(t *testing.T) {
	err := metrics.Write(failingWriter{}, metrics.Invocation{}, now)
	if err == nil || !strings.Contains(err.Error(), "write metrics record") {
		t.Fatalf("err = %v, want a wrapped write error", err)
	}
}

// TestOutputMetrics: an output's four counts are written, declared and named after it
// only when the output is configured.
func TestOutputMetrics(t *testing.T) {
	now := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	off := metrics.Record(metrics.Invocation{}, now)
	for name := range off {
		if strings.HasPrefix(name, "SecurityHub") || strings.HasPrefix(name, "EventBridge") {
			t.Errorf("%s written with no output configured", name)
		}
	}
	var buf bytes.Buffer
	if err := metrics.Write(&buf, metrics.Invocation{Outputs: []metrics.Output{
		{Name: "securityhub", Sent: 2, Failures: 1},
		{Name: "eventbridge", Sent: 3, OutcomeUnknown: 1, PossibleDuplicates: 1},
	}}, now); err != nil {
		t.Fatal(err)
	}
	var on map[string]any
	if err := json.Unmarshal(buf.Bytes(), &on); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{
		"SecurityHubSent": 2, "SecurityHubFailures": 1, "SecurityHubOutcomeUnknown": 0, "SecurityHubPossibleDuplicates": 0,
		"EventBridgeSent": 3, "EventBridgeFailures": 0, "EventBridgeOutcomeUnknown": 1, "EventBridgePossibleDuplicates": 1,
	}
	declared := map[string]bool{}
	for _, d := range on["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)["Metrics"].([]any) {
		declared[d.(map[string]any)["Name"].(string)] = true
	}
	for name, v := range want {
		if on[name] != float64(v) || !declared[name] {
			t.Errorf("%s = %v (declared %v), want %d", name, on[name], declared[name], v)
		}
	}
	if got := metrics.OutputMetric("other output", "Sent"); got != "OutputOtherOutputSent" {
		t.Errorf("OutputMetric of an unknown output = %s", got)
	}
}
