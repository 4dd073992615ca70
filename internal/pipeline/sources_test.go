package pipeline_test

import (
	"maps"
	"reflect"
	"testing"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/logsource"
	"github.com/eks-unauthorized-access/detector/internal/pipeline"
	"github.com/eks-unauthorized-access/detector/internal/suppress"
)

// TestSources runs the two-cluster Kinesis sample (prod-cluster and staging-cluster) with
// source filters: the log events of a refused log group or stream are counted by reason and
// produce no aggregate; the accepted cluster's are processed as without a filter.
func TestSources(t *testing.T) {
	ev := event(t, "kinesis-multi-cluster.json")
	all, err := pipeline.New(options(detect.ModeSeed)).Process(ev)
	if err != nil {
		t.Fatal(err)
	}
	clusters := func(r pipeline.Result) map[string]int64 {
		out := map[string]int64{}
		for _, a := range r.Aggregates {
			out[a.Source.Cluster] += a.Count
		}
		return out
	}
	if got := clusters(all); got["prod-cluster"] == 0 || got["staging-cluster"] == 0 {
		t.Fatalf("sample without a filter: counts per cluster %v, want both clusters", got)
	}
	for _, c := range []struct {
		name            string
		groups, streams []string
		wantClusters    map[string]int64
		wantRejected    map[logsource.Reason]int
	}{
		{"defaults accept both", logsource.DefaultLogGroupPatterns, logsource.DefaultLogStreamPatterns,
			clusters(all), map[logsource.Reason]int{}},
		{"one log group", []string{"/aws/eks/prod-*/cluster"}, nil,
			map[string]int64{"prod-cluster": clusters(all)["prod-cluster"]}, map[logsource.Reason]int{logsource.RejectLogGroup: 1}},
		{"stream pattern", nil, []string{"kube-apiserver-audit-9*"},
			map[string]int64{"staging-cluster": clusters(all)["staging-cluster"]}, map[logsource.Reason]int{logsource.RejectLogStream: 4}},
		{"nothing", []string{"/aws/eks/*/cluster"}, []string{"authenticator-*"},
			map[string]int64{}, map[logsource.Reason]int{logsource.RejectLogStream: 5}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := logsource.New(c.groups, c.streams)
			if err != nil {
				t.Fatal(err)
			}
			opts := options(detect.ModeSeed)
			opts.Sources = f
			res, err := pipeline.New(opts).Process(ev)
			if err != nil {
				t.Fatal(err)
			}
			if got := clusters(res); !maps.Equal(got, c.wantClusters) {
				t.Errorf("counts per cluster %v, want %v", got, c.wantClusters)
			}
			if !maps.Equal(res.Stats.Rejected, c.wantRejected) {
				t.Errorf("rejected %v, want %v", res.Stats.Rejected, c.wantRejected)
			}
			if res.Stats.LogEvents != all.Stats.LogEvents || res.Stats.Payloads != all.Stats.Payloads {
				t.Errorf("log events %d, payloads %d: want every received one counted (%d, %d)",
					res.Stats.LogEvents, res.Stats.Payloads, all.Stats.LogEvents, all.Stats.Payloads)
			}
		})
	}
}

// TestStatsAdd: adding the stats of two runs gives the stats of one run over both, every
// field included (a field added to Stats and forgotten in Add fails here).
func TestStatsAdd(t *testing.T) {
	opts := options(detect.ModeSeed)
	f, err := logsource.New([]string{"/aws/eks/prod-*/cluster"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	opts.Sources = f
	opts.ParseAll = true // so that the junk lines are counted as skipped
	opts.Suppressor = suppressFunc(func(m detect.Match, _ aggregate.Source) suppress.Verdict {
		if m.Fields.User == "mallory" {
			return suppress.Verdict{Suppressed: true, By: []string{"mallory"}}
		}
		return suppress.Verdict{DryRun: []string{"everyone-else"}}
	})
	p := pipeline.New(opts)
	sum := pipeline.Stats{Skipped: map[pipeline.SkipReason]int{}, Rejected: map[logsource.Reason]int{}}
	for _, name := range []string{"cloudwatch-mixed-batch.json", "kinesis-multi-cluster.json", "cloudwatch-control-message.json"} {
		res, err := p.Process(event(t, name))
		if err != nil {
			t.Fatal(err)
		}
		sum.Add(res.Stats)
	}
	b := p.NewBatch()
	for _, name := range []string{"cloudwatch-mixed-batch.json", "kinesis-multi-cluster.json", "cloudwatch-control-message.json"} {
		if err := b.AddEvent(event(t, name)); err != nil {
			t.Fatal(err)
		}
	}
	want := b.Result().Stats
	if !reflect.DeepEqual(sum, want) {
		t.Errorf("sum of runs\n%+v\nwant one run over all\n%+v", sum, want)
	}
	v := reflect.ValueOf(sum)
	for i := range v.NumField() {
		if v.Field(i).IsZero() && v.Type().Field(i).Name != "DuplicateLogEvents" && v.Type().Field(i).Name != "SuppressionErrors" &&
			v.Type().Field(i).Name != "TruncatedParsed" { // no sample line is cut
			t.Errorf("field %s is zero: the sample events do not exercise it", v.Type().Field(i).Name)
		}
	}
}

// suppressFunc is a Suppressor made of a function.
type suppressFunc func(detect.Match, aggregate.Source) suppress.Verdict

func (f suppressFunc) Check(m detect.Match, src aggregate.Source) suppress.Verdict { return f(m, src) }
