package detect

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

// naiveContainsFold is the byte-by-byte definition foldWord.in must agree with.
func naiveContainsFold(s []byte, word string) bool {
	for p := 0; p+len(word) <= len(s); p++ {
		if equalFoldAt(s[p:], word) {
			return true
		}
	}
	return false
}

// TestFoldWordEveryOffset places each word, in random case, at every offset of fillers of
// every length up to 40, so that every position relative to the sampling grid and to the
// end of the input is tried, and checks the sampled search against the naive one.
func TestFoldWordEveryOffset(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, w := range []*foldWord{forbidden, create} {
		for n := 0; n <= 40; n++ {
			for p := 0; p+len(w.word) <= n; p++ {
				for range 4 {
					s := bytes.Repeat([]byte("x"), n)
					for j := range w.word {
						c := w.word[j]
						if rng.IntN(2) == 0 {
							c -= 'a' - 'A'
						}
						s[p+j] = c
					}
					if !w.in(s) {
						t.Fatalf("%s not found in %q", w.word, s)
					}
				}
			}
			s := bytes.Repeat([]byte(w.word[:len(w.word)-1]+"_"), 10)[:n]
			if got := w.in(s); got != naiveContainsFold(s, w.word) {
				t.Fatalf("in(%q) = %v", s, got)
			}
		}
	}
}

// TestFoldWordRandom compares the sampled search with the naive one on random text made
// of the words' letters, where trigrams of the word are frequent.
func TestFoldWordRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const alphabet = "fForRbBiIdDeEnNcCaAtT\\\"x"
	for _, w := range []*foldWord{forbidden, create} {
		found := 0
		for range 20000 {
			s := make([]byte, rng.IntN(60))
			for i := range s {
				s[i] = alphabet[rng.IntN(len(alphabet))]
			}
			if rng.IntN(4) == 0 && len(s) >= len(w.word) {
				copy(s[rng.IntN(len(s)-len(w.word)+1):], strings.ToUpper(w.word[:3])+w.word[3:])
			}
			want := naiveContainsFold(s, w.word)
			if got := w.in(s); got != want {
				t.Fatalf("in(%q) = %v, want %v", s, got, want)
			}
			if want {
				found++
			}
		}
		if found < 200 {
			t.Fatalf("%s: only %d inputs held the word", w.word, found)
		}
	}
}

func TestHasLetterEscape(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{`plain text, no escapes`, false},
		{`\u0046orbidden`, true},
		{`\\u0046orbidden`, true}, // two levels
		{`\u005cu0046`, true},     // inner backslash escaped at the outer level
		{`\\\u0075`, true},        // inner escape whose "u" is escaped at the outer level
		{`x\u0075`, true},
		{`\u0030`, true},         // digit
		{`\u003c \u0026`, false}, // < and &, as Go's encoder writes them
		{`\u00e9t\u00e9`, false}, // é: not ASCII
		{`\u0100`, false},
		{`u0046 without backslash`, false},
		{`ends in \u00`, true},  // truncated: suspect
		{`ends in \u004`, true}, // truncated: suspect
		{`\u00zz`, true},
		{`\u00`, true},
	}
	for _, tt := range tests {
		if got := hasLetterEscape([]byte(tt.in)); got != tt.want {
			t.Errorf("hasLetterEscape(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// naiveLetterEscape is the byte-by-byte definition hasLetterEscape must agree with.
func naiveLetterEscape(msg []byte) bool {
	for i := 1; i+3 <= len(msg); i++ {
		if msg[i-1] != '\\' || string(msg[i:i+3]) != "u00" {
			continue
		}
		if i+5 > len(msg) || !isHex(msg[i+3]) || !isHex(msg[i+4]) {
			return true
		}
		c := unhex(msg[i+3])<<4 | unhex(msg[i+4])
		if c == '\\' || (c >= '0' && c <= '9') || (c|0x20 >= 'a' && c|0x20 <= 'z') {
			return true
		}
	}
	return false
}

// TestHasLetterEscapeRandom compares the search with the naive one on random text made of
// the bytes of escapes, at every length up to 40, and places escapes at every offset.
func TestHasLetterEscapeRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const alphabet = "\\u00466cCgG2x\""
	found := 0
	for range 200000 {
		s := make([]byte, rng.IntN(41))
		for i := range s {
			s[i] = alphabet[rng.IntN(len(alphabet))]
		}
		want := naiveLetterEscape(s)
		if got := hasLetterEscape(s); got != want {
			t.Fatalf("hasLetterEscape(%q) = %v, want %v", s, got, want)
		}
		if want {
			found++
		}
	}
	if found < 200 {
		t.Fatalf("only %d inputs held an escape: the test does not exercise the search", found)
	}
	// Each escape at every offset of a longer filler.
	for _, esc := range []string{`\u0046`, `\u005c`, `\u0030`, `\u00`, `\u00zz`} {
		for n := len(esc); n <= 40; n++ {
			for p := 0; p+len(esc) <= n; p++ {
				s := []byte(strings.Repeat("u", n))
				copy(s[p:], esc)
				if !hasLetterEscape(s) {
					t.Fatalf("%s not found in %q", esc, s)
				}
			}
		}
	}
	for _, s := range []string{`\u003c`, `\u0026\u003e`, `u00`, `\u0`, `\\u003c`, `xu0046`} {
		if hasLetterEscape([]byte(s)) {
			t.Errorf("hasLetterEscape(%q) = true", s)
		}
	}
}
