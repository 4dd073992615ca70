package audit_test

import (
	"encoding/json"
	"testing"

	"github.com/eks-unauthorized-access/detector/bench/workload"
	"github.com/eks-unauthorized-access/detector/internal/audit"
)

// candidates returns the lines that reach the parser in the function: the prefilter keeps
// only lines that may be forbidden creates, so these are the generator's forbidden creates
// (about 1 % of the benchmark workload).
func candidates(b *testing.B, n int) [][]byte {
	b.Helper()
	g := workload.New(7)
	var lines [][]byte
	for len(lines) < n {
		if line, kind := g.Line(); kind == workload.KindForbiddenCreate {
			lines = append(lines, line)
		}
	}
	return lines
}

// plainEvent has audit.Event's fields and JSON names but not its UnmarshalJSON, so
// encoding/json decodes it with reflection (and matches keys case-insensitively).
type plainEvent audit.Event

// BenchmarkParseCandidates compares the hand-written parser with encoding/json on the
// lines the parser really sees (issue: keep hand-written parsing only where it pays).
func BenchmarkParseCandidates(b *testing.B) {
	lines := candidates(b, 200)
	size := 0
	for _, l := range lines {
		size += len(l)
	}
	b.Run("audit.Parse", func(b *testing.B) {
		b.SetBytes(int64(size))
		b.ReportAllocs()
		for b.Loop() {
			for _, l := range lines {
				if _, err := audit.Parse(l); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.SetBytes(int64(size))
		b.ReportAllocs()
		for b.Loop() {
			for _, l := range lines {
				var e plainEvent
				if err := json.Unmarshal(l, &e); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
