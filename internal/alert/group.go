package alert

import (
	"cmp"
	"slices"
	"time"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/detect"
)

// Groups splits aggregates into alert groups: one per (window, alert group key), ordered by
// window then key, each with its aggregates in input order. The Lambda and cmd/replay both
// use it, so they alert on exactly the same groups.
func Groups(rule detect.Rule, aggs []aggregate.Aggregate) []Group {
	type id struct {
		window time.Time
		key    string
	}
	index := make(map[id]int)
	var groups []Group
	for _, a := range aggs {
		k := id{a.Window.UTC(), a.Group}
		i, ok := index[k]
		if !ok {
			i = len(groups)
			index[k] = i
			groups = append(groups, Group{Rule: rule, Window: k.window, Key: a.Group})
		}
		groups[i].Aggregates = append(groups[i].Aggregates, a)
	}
	slices.SortStableFunc(groups, func(a, b Group) int {
		if c := a.Window.Compare(b.Window); c != 0 {
			return c
		}
		return cmp.Compare(a.Key, b.Key)
	})
	return groups
}
