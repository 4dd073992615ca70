package cwlogs

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestIndexRecordStart compares indexRecordStart with bytes.Index on inputs
// of every length up to 200, at every offset of a larger buffer, made of the bytes of
// recordStart and escapes: braces and quotes everywhere, few whole pairs.
func TestIndexRecordStart(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	alphabet := []byte(`{"id:\x`)
	buf := make([]byte, 400)
	for n := 0; n <= 200; n++ {
		for round := 0; round < 40; round++ {
			off := r.IntN(64)
			b := buf[off : off+n]
			for i := range b {
				b[i] = alphabet[r.IntN(len(alphabet))]
			}
			// Half the inputs hold no pair at all; some a recordStart at a random place.
			if round%2 == 0 {
				b = bytes.ReplaceAll(b, []byte(`{"`), []byte(`{\`))
			}
			if round%4 == 1 && n >= len(recordStart) {
				copy(b[r.IntN(n-len(recordStart)+1):], recordStart)
			}
			if got, want := indexRecordStart(b), bytes.Index(b, recordStart); got != want {
				t.Fatalf("indexRecordStart(%q) = %d, want %d", b, got, want)
			}
		}
	}
}

func FuzzIndexRecordStart(f *testing.F) {
	f.Add([]byte(`x{\"id\":\"1\"}"},{"id":"2"`))
	f.Add(bytes.Repeat([]byte(`{"`), 20))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := indexRecordStart(b), bytes.Index(b, recordStart); got != want {
			t.Fatalf("indexRecordStart = %d, want %d", got, want)
		}
	})
}

func BenchmarkIndexRecordStart(b *testing.B) {
	// A record's message as CloudWatch Logs writes an audit event: escaped quotes, a
	// dozen braces, then the next record.
	msg := bytes.Repeat([]byte(`\"user\":{\"username\":\"system:serviceaccount:kube-system:x\",\"groups\":[\"a\"]},`), 16)
	rec := append(append([]byte(nil), msg...), `"},{"id":"123","timestamp":1,"message":"`...)
	b.SetBytes(int64(len(rec)))
	b.Run("bytes.Index", func(b *testing.B) {
		for b.Loop() {
			if !bytes.Contains(rec, recordStart) {
				b.Fatal("no record")
			}
		}
	})
	b.Run("indexRecordStart", func(b *testing.B) {
		for b.Loop() {
			if indexRecordStart(rec) < 0 {
				b.Fatal("no record")
			}
		}
	})
}
