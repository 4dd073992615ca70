package jsonscan

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestIndexPair compares IndexPair with bytes.Index on inputs of every length up to 200,
// at every offset of a larger buffer, made of the pairs' bytes: each byte everywhere,
// few whole pairs.
func TestIndexPair(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	alphabet := []byte(`{"\ux`)
	buf := make([]byte, 400)
	for n := 0; n <= 200; n++ {
		for round := 0; round < 40; round++ {
			off := r.IntN(64)
			b := buf[off : off+n]
			for i := range b {
				b[i] = alphabet[r.IntN(len(alphabet))]
			}
			if round%2 == 0 {
				// No pair, or one at a random place.
				b = bytes.ReplaceAll(b, []byte(`{"`), []byte(`{x`))
				if round%4 == 2 && n >= 2 {
					copy(b[r.IntN(n-1):], `{"`)
				}
			}
			for _, p := range []string{`{"`, `\u`, `xx`} {
				if got, want := IndexPair(b, p[0], p[1]), bytes.Index(b, []byte(p)); got != want {
					t.Fatalf("IndexPair(%q, %q) = %d, want %d", b, p, got, want)
				}
			}
		}
	}
}

func FuzzIndexPair(f *testing.F) {
	f.Add([]byte(`x{\"id\":\"1\"}"},{"id":"2"`), byte('{'), byte('"'))
	f.Add(bytes.Repeat([]byte(`\u`), 20), byte('\\'), byte('u'))
	f.Fuzz(func(t *testing.T, b []byte, c0, c1 byte) {
		if got, want := IndexPair(b, c0, c1), bytes.Index(b, []byte{c0, c1}); got != want {
			t.Fatalf("IndexPair(%q, %q) = %d, want %d", b, []byte{c0, c1}, got, want)
		}
	})
}
