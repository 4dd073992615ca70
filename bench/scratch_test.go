package bench

import (
	"bytes"
	"encoding/binary"
	"testing"
)

var sink int

func idx(b *testing.B, m []byte, s string) {
	b.SetBytes(int64(len(m)))
	for b.Loop() {
		n := 0
		for x := m; ; {
			i := bytes.Index(x, []byte(s))
			if i < 0 {
				break
			}
			n++
			x = x[i+1:]
		}
		sink = n
	}
}

var tri [256]uint32

func init() {
	w := "forbidden"
	for j := 0; j+3 <= len(w); j++ {
		k := uint32(w[j]) | uint32(w[j+1])<<8 | uint32(w[j+2])<<16
		tri[hash(k)] = k | uint32(j+1)<<24
	}
}

func hash(k uint32) uint32 { return (k * 0x9E3779B1) >> 24 }

func sampled(m []byte) int {
	n := 0
	for q := 0; q+4 <= len(m); q += 7 {
		k := binary.LittleEndian.Uint32(m[q:])&0xffffff | 0x202020
		e := tri[hash(k)]
		if e&0xffffff == k && e != 0 {
			n++
		}
	}
	return n
}

func BenchmarkScratch(b *testing.B) {
	m := loadPayloads()[0].Message
	for _, s := range []string{`{"id":"`, `\u00`, `,"message":"`} {
		b.Run(s, func(b *testing.B) { idx(b, m, s) })
	}
	b.Run("sampled", func(b *testing.B) {
		b.SetBytes(int64(len(m)))
		for b.Loop() {
			sink = sampled(m)
		}
		b.Log(sampled(m))
	})
}
