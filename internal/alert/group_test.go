package alert

import (
	"testing"
	"time"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/detect"
)

func TestGroups(t *testing.T) {
	h8 := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	h9 := h8.Add(time.Hour)
	aggs := []aggregate.Aggregate{
		{Window: h9, Group: "b", Key: "1"},
		{Window: h8, Group: "b", Key: "2"},
		{Window: h8, Group: "a", Key: "3"},
		{Window: h8, Group: "b", Key: "4"},
	}
	got := Groups(detect.UnauthorizedAccess, aggs)
	want := []struct {
		window time.Time
		key    string
		aggs   []string
	}{
		{h8, "a", []string{"3"}},
		{h8, "b", []string{"2", "4"}},
		{h9, "b", []string{"1"}},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d groups, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if !g.Window.Equal(w.window) || g.Key != w.key || g.Rule.ID != detect.UnauthorizedAccess.ID {
			t.Errorf("group %d = %v %q %q, want %v %q", i, g.Window, g.Key, g.Rule.ID, w.window, w.key)
		}
		var keys []string
		for _, a := range g.Aggregates {
			keys = append(keys, a.Key)
		}
		if len(keys) != len(w.aggs) {
			t.Fatalf("group %d aggregates = %v, want %v", i, keys, w.aggs)
		}
		for j := range keys {
			if keys[j] != w.aggs[j] {
				t.Errorf("group %d aggregates = %v, want %v", i, keys, w.aggs)
			}
		}
	}
	if n := len(Groups(detect.UnauthorizedAccess, nil)); n != 0 {
		t.Errorf("Groups(nil) = %d groups, want 0", n)
	}
}
