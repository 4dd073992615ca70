package bench

import (
	"testing"

	"github.com/eks-unauthorized-access/detector/internal/audit"
	"github.com/eks-unauthorized-access/detector/internal/cwlogs"
	"github.com/eks-unauthorized-access/detector/internal/detect"
)

func BenchmarkProbeH12Parse(b *testing.B) {
	var lines [][]byte
	n := 0
	for _, d := range loadPayloads() {
		p, _ := cwlogs.ParseMessage(d.Message)
		for _, le := range p.LogEvents {
			if detect.MayMatch(le.Message, detect.ModeSeed) {
				t, _ := le.Text()
				lines = append(lines, append([]byte(nil), t...))
				n += len(t)
			}
		}
	}
	b.Logf("%d lines %d bytes", len(lines), n)
	for b.Loop() {
		for _, l := range lines {
			audit.Parse(l)
		}
	}
}
