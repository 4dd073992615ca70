package alert

import (
	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/detect"
)

// Groups returns the alert groups of aggs (aggregate.Split: ordered by window, then group
// key), each with its aggregates in input order, ready to build their alerts (cmd/replay).
func Groups(rule detect.Rule, aggs []aggregate.Aggregate) []Group {
	ids, by := aggregate.Split(aggs)
	groups := make([]Group, len(ids))
	for i, g := range ids {
		groups[i] = Group{Rule: rule, Window: g.Window, Key: g.Group, Aggregates: by[g]}
	}
	return groups
}
