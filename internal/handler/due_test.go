package handler_test

import (
	"slices"
	"testing"

	"github.com/eks-unauthorized-access/detector/internal/handler"
)

func TestDue(t *testing.T) {
	th := []int64{10, 100, 1000}
	for _, tc := range []struct {
		first, total int64
		want         []int64
	}{
		{3, 3, nil},
		{3, 9, nil},
		{3, 10, []int64{10}},
		{3, 150, []int64{10, 100}}, // two thresholds crossed at once: one update each
		{15, 150, []int64{100}},    // the first alert already said more than 10
		{3, 5000, []int64{10, 100, 1000}},
		{2000, 5000, nil},
	} {
		if got := handler.Due(th, tc.first, tc.total); !slices.Equal(got, tc.want) {
			t.Errorf("Due(first %d, total %d) = %v, want %v", tc.first, tc.total, got, tc.want)
		}
	}
	if got := handler.Due(nil, 0, 1e6); got != nil {
		t.Errorf("Due without thresholds = %v", got)
	}
}
