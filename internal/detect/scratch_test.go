package detect

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"
)

func loadMsgs(b *testing.B) [][]byte {
	m, err := os.ReadFile("/tmp/h9_payload.json")
	if err != nil {
		b.Fatal(err)
	}
	var out [][]byte
	parts := bytes.Split(m, []byte(`"},{"id":"`))
	for _, p := range parts {
		if i := bytes.Index(p, []byte(`"message":"`)); i >= 0 {
			out = append(out, p[i+11:])
		}
	}
	return out
}

func inFixed7(w *foldWord, s []byte) bool {
	const stride = 7
	mul := w.mul
	slots := &w.slots
	q := 0
	for ; q+4+stride <= len(s); q += 2 * stride {
		t1 := binary.LittleEndian.Uint32(s[q:])&0xffffff | 0x202020
		t2 := binary.LittleEndian.Uint32(s[q+stride:])&0xffffff | 0x202020
		e1 := slots[(t1*mul)>>24]
		e2 := slots[(t2*mul)>>24]
		if e1&0xffffff == t1 && w.verify(s, q-int(e1>>24)+1) {
			return true
		}
		if e2&0xffffff == t2 && w.verify(s, q+stride-int(e2>>24)+1) {
			return true
		}
	}
	return w.in(s[max(q-8, 0):])
}

func BenchmarkScratch(b *testing.B) {
	msgs := loadMsgs(b)
	n := 0
	for _, m := range msgs {
		n += len(m)
	}
	b.Run("forbidden", func(b *testing.B) {
		b.SetBytes(int64(n))
		for b.Loop() {
			for _, m := range msgs {
				forbidden.in(m)
			}
		}
	})
	b.Run("forbidden2", func(b *testing.B) {
		b.SetBytes(int64(n))
		for b.Loop() {
			for _, m := range msgs {
				inFixed7(forbidden, m)
			}
		}
	})
	b.Run("u00", func(b *testing.B) {
		b.SetBytes(int64(n))
		for b.Loop() {
			for _, m := range msgs {
				hasLetterEscape(m)
			}
		}
	})
	b.Run("maymatch", func(b *testing.B) {
		b.SetBytes(int64(n))
		for b.Loop() {
			for _, m := range msgs {
				MayMatch(m, ModeSeed)
			}
		}
	})
}
