package pipeline_test

import (
	"os"
	"reflect"
	"testing"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/pipeline"
	"github.com/eks-unauthorized-access/detector/internal/suppress"
)

func event(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../../events/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func options(mode detect.Mode) pipeline.Options {
	return pipeline.Options{Rule: detect.UnauthorizedAccess, Mode: mode, GroupBy: aggregate.GroupByUser, Region: "eu-west-1"}
}

// users lists, per aggregate (ordered by window, first seen, then key: the two exec
// stages share a first seen time, so their order is that of their keys), user/resource/stage/count.
func users(aggs []aggregate.Aggregate) [][4]any {
	var out [][4]any
	for _, a := range aggs {
		out = append(out, [4]any{a.Fields.User, a.Fields.Resource, a.Fields.Stage, a.Count})
	}
	return out
}

func TestProcessSampleEvents(t *testing.T) {
	for _, tc := range []struct {
		file  string
		mode  detect.Mode
		want  [][4]any
		stats func(s pipeline.Stats) bool
	}{
		{"cloudwatch-anonymous.json", detect.ModeSeed,
			[][4]any{{"system:anonymous", "namespaces", "ResponseComplete", int64(1)}, {"system:anonymous", "pods", "ResponseComplete", int64(1)}},
			func(s pipeline.Stats) bool { return s.Payloads == 1 && s.LogEvents == 2 && s.Matches == 2 }},
		{"cloudwatch-zlib.json", detect.ModeSeed,
			[][4]any{{"system:anonymous", "namespaces", "ResponseComplete", int64(1)}, {"system:anonymous", "pods", "ResponseComplete", int64(1)}},
			func(s pipeline.Stats) bool { return s.Payloads == 1 && s.Matches == 2 }},
		{"cloudwatch-iam-user.json", detect.ModeAuthz,
			[][4]any{{"alice", "secrets", "ResponseComplete", int64(1)}, {"alice", "clusterrolebindings", "ResponseComplete", int64(1)},
				{"alice", "pods", "ResponseStarted", int64(1)}, {"alice", "pods", "ResponseComplete", int64(1)}},
			func(s pipeline.Stats) bool { return s.LogEvents == 4 && s.Matches == 4 }},
		{"cloudwatch-mixed-batch.json", detect.ModeSeed,
			[][4]any{{"system:serviceaccount:ci:deployer", "pods", "ResponseComplete", int64(1)}, {"mallory", "serviceaccounts", "ResponseComplete", int64(1)}},
			func(s pipeline.Stats) bool { return s.LogEvents == 9 && s.Matches == 2 }},
		{"cloudwatch-mixed-batch.json", detect.ModeAuthz, // the ResourceQuota 403 (decision allow) is dropped
			[][4]any{{"mallory", "serviceaccounts", "ResponseComplete", int64(1)}},
			func(s pipeline.Stats) bool { return s.Matches == 1 }},
		{"cloudwatch-control-message.json", detect.ModeSeed, nil,
			func(s pipeline.Stats) bool { return s.Payloads == 1 && s.ControlMessages == 1 && s.LogEvents == 0 }},
		{"kinesis-multi-cluster.json", detect.ModeSeed,
			[][4]any{{"alice", "secrets", "ResponseComplete", int64(1)}, {"alice", "clusterrolebindings", "ResponseComplete", int64(1)},
				{"alice", "pods", "ResponseStarted", int64(1)}, {"alice", "pods", "ResponseComplete", int64(1)},
				{"system:anonymous", "namespaces", "ResponseComplete", int64(1)}},
			func(s pipeline.Stats) bool { return s.Payloads == 2 && s.Matches == 5 }},
	} {
		t.Run(tc.file+"/"+string(tc.mode), func(t *testing.T) {
			res, err := pipeline.New(options(tc.mode)).Process(event(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if got := users(res.Aggregates); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("aggregates %v, want %v", got, tc.want)
			}
			if !tc.stats(res.Stats) {
				t.Errorf("stats %+v", res.Stats)
			}
			for _, a := range res.Aggregates {
				if a.Source.Region != "eu-west-1" || a.Source.Cluster == "" || a.Source.Owner == "" || len(a.EventIDs) != int(a.Count) {
					t.Errorf("aggregate source/ids: %+v", a)
				}
			}
		})
	}
}

func TestProcessSkipsBadLinesWithParseAll(t *testing.T) {
	opts := options(detect.ModeSeed)
	opts.ParseAll = true
	res, err := pipeline.New(opts).Process(event(t, "cloudwatch-mixed-batch.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[pipeline.SkipReason]int{pipeline.SkipNotJSON: 1, pipeline.SkipTruncated: 1, pipeline.SkipNotAudit: 1}
	if !reflect.DeepEqual(res.Stats.Skipped, want) || res.Stats.Candidates != 9 || res.Stats.AuditEvents != 6 {
		t.Errorf("stats %+v", res.Stats)
	}
}

func TestProcessBadBatch(t *testing.T) {
	p := pipeline.New(options(detect.ModeSeed))
	for _, ev := range []string{`{"awslogs":{"data":"!!!"}}`, `{"foo":1}`, `not json`} {
		if _, err := p.Process([]byte(ev)); err == nil {
			t.Errorf("%s: no error", ev)
		}
	}
	// Over the bound on work, a delivery is not refused: its lines are counted.
	opts := options(detect.ModeSeed)
	opts.MaxDecompressedBytes = 100
	res, err := pipeline.New(opts).Process(event(t, "cloudwatch-iam-user.json"))
	if err != nil || res.Stats.LogEvents != 4 || res.Stats.Skipped[pipeline.SkipPastWorkBound] != 4 {
		t.Errorf("over the bound on work: %v, %+v", err, res.Stats)
	}
	// The pipeline stays usable after a bad batch.
	if res, err := p.Process(event(t, "cloudwatch-anonymous.json")); err != nil || len(res.Aggregates) != 2 {
		t.Errorf("after a bad batch: %v, %d aggregates", err, len(res.Aggregates))
	}
}

// suppressUser is a Suppressor for one user name.
type suppressUser string

func (u suppressUser) Check(m detect.Match, src aggregate.Source) suppress.Verdict {
	if m.Fields.User == string(u) && src.Cluster == "prod-cluster" {
		return suppress.Verdict{Suppressed: true, By: []string{"user-" + string(u)}}
	}
	return suppress.Verdict{}
}

func TestProcessSuppresses(t *testing.T) {
	opts := options(detect.ModeSeed)
	opts.Suppressor = suppressUser("mallory")
	res, err := pipeline.New(opts).Process(event(t, "cloudwatch-mixed-batch.json"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Stats.Matches != 2 || res.Stats.Suppressed != 1 || len(res.Aggregates) != 1 || res.Aggregates[0].Fields.User == "mallory" {
		t.Errorf("stats %+v, aggregates %v", res.Stats, users(res.Aggregates))
	}
}

func TestBatchCountsRedeliveryOnce(t *testing.T) {
	p := pipeline.New(options(detect.ModeSeed))
	b := p.NewBatch()
	for range 2 {
		if err := b.AddEvent(event(t, "cloudwatch-anonymous.json")); err != nil {
			t.Fatal(err)
		}
	}
	line := `{"kind":"Event","apiVersion":"audit.k8s.io/v1","verb":"create","responseStatus":{"reason":"Forbidden","code":403},"requestReceivedTimestamp":"2026-11-24T08:00:00Z"}`
	for range 2 { // raw lines have no id: each counts
		if err := b.AddAuditLine([]byte(line), aggregate.Source{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.AddAuditLine([]byte("junk"), aggregate.Source{}); err == nil {
		t.Error("junk raw line accepted")
	}
	res := b.Result()
	if res.Stats.DuplicateLogEvents != 2 || res.Stats.Matches != 6 || len(res.Aggregates) != 3 {
		t.Fatalf("stats %+v, %d aggregates", res.Stats, len(res.Aggregates))
	}
	for _, a := range res.Aggregates {
		if a.Count != map[bool]int64{true: 2, false: 1}[a.Source.LogGroup == ""] {
			t.Errorf("aggregate %s/%s count %d", a.Source.LogGroup, a.Fields.Resource, a.Count)
		}
	}
}
