package main

import (
	"os"
	"testing"
	"time"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/pipeline"
)

// TestWrap: the wrapped lines decode as a subscription event whose forbidden creates fall
// in windows age before now, shifted by whole hours, and wrapping again gives the same
// event (so delivering it twice is a redelivery).
func TestWrap(t *testing.T) {
	lines, err := os.ReadFile("../../events/raw/iam-user-forbidden.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	newestOf := func(ev []byte) (time.Time, pipeline.Result) {
		t.Helper()
		res, err := pipeline.New(pipeline.Options{Rule: detect.UnauthorizedAccess, Mode: detect.ModeSeed, GroupBy: aggregate.GroupByUser}).Process(ev)
		if err != nil {
			t.Fatal(err)
		}
		var newest time.Time
		for _, a := range res.Aggregates {
			if a.LastSeen.After(newest) {
				newest = a.LastSeen
			}
		}
		return newest, res
	}
	sample, err := os.ReadFile("../../events/cloudwatch-iam-user.json")
	if err != nil {
		t.Fatal(err)
	}
	original, _ := newestOf(sample)
	now := time.Date(2031, 7, 9, 14, 25, 0, 0, time.UTC) // any date: nothing here reads the clock
	for _, age := range []time.Duration{2 * time.Hour, 720 * time.Hour, 400 * 24 * time.Hour, -3 * time.Hour} {
		ev, err := wrap(lines, now, age)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := wrap(lines, now, age)
		if string(again) != string(ev) {
			t.Errorf("age %s: wrapping twice gave two events", age)
		}
		newest, res := newestOf(ev)
		if res.Stats.Matches != 4 || res.Stats.SkippedTotal() != 0 {
			t.Errorf("age %s: %d matches, %d skipped; want the sample's 4 and none", age, res.Stats.Matches, res.Stats.SkippedTotal())
		}
		windows := map[time.Time]bool{}
		for _, a := range res.Aggregates {
			windows[a.Window] = true
		}
		if len(windows) != 2 {
			t.Errorf("age %s: %d windows, want the sample's 2", age, len(windows))
		}
		if target := now.Add(-age); newest.After(target) || newest.Before(target.Add(-time.Hour)) {
			t.Errorf("age %s: newest event at %s, want within the hour before %s", age, newest, target)
		}
		if shift := newest.Sub(original); shift%time.Hour != 0 {
			t.Errorf("age %s: shift %s is not whole hours", age, shift)
		}
	}
	if _, err := wrap([]byte("not an audit line\n"), now, 0); err == nil {
		t.Error("wrap accepted lines without timestamps")
	}
}
