package detect

import (
	_ "embed"
	"encoding/binary"
	"strconv"
	"sync"
)

// A screen is MayMatch's first test in the modes that need a reason of "forbidden": it
// rejects most log messages after looking at one 4-byte group in every few bytes, where
// the exact tests of MayMatch (the word, then escapes) each read every byte.
//
// What it rests on. A value that decodes to "forbidden" is written in the message as a
// representation: each letter literally in either case, or as a \u00XX escape of the
// line's level, with each byte of that (and each letter) either literal or a \u00XX escape
// of the payload's level, and a backslash of the line's level as \\ or \u005c. Every
// representation of the word is at least 9 bytes long. In a message that still carries
// the payload's escapes, the value is also a whole JSON string of the line, so its quotes
// are there too, each as \" or \u0022: at least 13 bytes.
//
// A screen's file lists every case-folded 4-byte and 8-byte substring of every
// representation (TestScreenGrams derives the lists from that grammar). A representation
// at [a, a+L), L >= min, contains the 4 bytes at one sample of a grid with a step of
// min-3 (some sample lies in [a, a+min-4]), and those 4 bytes belong to an 8-byte window
// at most 4 bytes to their left that still lies inside it. So a message none of whose
// samples is a listed 4-gram with a listed 8-gram around it holds no representation, and
// no line it encodes can match in those modes.
//
// The lists are kept in Bloom filters, which answer "maybe" for a listed gram and rarely
// for another: a false "maybe" costs a further test, at worst the exact tests of
// MayMatch, never a missed match. Each sample is looked up in a table of one byte per
// hash of the 4-grams; only where that says "maybe" are the 4-gram (two hashes) and the
// 8-byte windows around it (two hashes each) tested.
type screen struct {
	stride int                  // the step between samples: the shortest representation minus 3
	first  [1 << 14]byte        // 4-grams by one hash, a byte each: the test of every sample
	b4     [1 << 16 / 64]uint64 // 4-grams by two hashes: 64 Kibit
	b8     [1 << 17 / 64]uint64 // 8-grams by two hashes: 128 Kibit
}

// The screens, with their shortest representations. They are built on first use (about
// half a millisecond), not before the function is ready for its first event.
var (
	//go:embed forbidden.grams
	forbiddenGrams []byte
	//go:embed forbidden-quoted.grams
	quotedGrams []byte

	// forbiddenScreen finds the word in any message.
	forbiddenScreen = sync.OnceValue(func() *screen { return newScreen(forbiddenGrams, 9) })
	// quotedScreen finds the quoted value in a message that still carries the payload's
	// escapes and holds its whole line.
	quotedScreen = sync.OnceValue(func() *screen { return newScreen(quotedGrams, 13) })
)

// The case fold of MayMatch (bit 0x20 of every byte), four and eight bytes at a time.
const (
	fold4 = 0x20202020
	fold8 = 0x2020202020202020
)

// newScreen builds the filters from grams: a little-endian count n of 4-grams, the n
// 4-grams, then the 8-grams, all little-endian and case-folded. shortest is the length of
// the shortest representation.
func newScreen(grams []byte, shortest int) *screen {
	s := &screen{stride: shortest - 3}
	n := int(binary.LittleEndian.Uint32(grams))
	grams = grams[4:]
	for i := 0; i < n; i++ {
		x := binary.LittleEndian.Uint32(grams[4*i:])
		s.first[firstHash(x)] = 1
		h1, h2 := hash4(x)
		s.b4[h1>>6] |= 1 << (h1 & 63)
		s.b4[h2>>6] |= 1 << (h2 & 63)
	}
	for g := grams[4*n:]; len(g) >= 8; g = g[8:] {
		h1, h2 := hash8(binary.LittleEndian.Uint64(g))
		s.b8[h1>>6] |= 1 << (h1 & 63)
		s.b8[h2>>6] |= 1 << (h2 & 63)
	}
	return s
}

func firstHash(x uint32) uint32 { return x * 0x9e3779b1 >> 18 }

func hash4(x uint32) (uint32, uint32) {
	return x * 0x9e3779b1 >> 16, x * 0x85ebca77 >> 16
}

func hash8(x uint64) (uint64, uint64) {
	return x * 0x9e3779b97f4a7c15 >> 47, x * 0xc2b2ae3d27d4eb4f >> 47
}

// keep reports whether msg may hold a representation: false only when it holds none.
func (s *screen) keep(msg []byte) bool {
	switch s.stride {
	case 10:
		return keepEvery[[10]byte](s, msg)
	case 6:
		return keepEvery[[6]byte](s, msg)
	}
	panic("screen: no sampling loop for a step of " + strconv.Itoa(s.stride))
}

// stride is the step between samples as an array type: len of the type parameter is then a
// constant in each instantiation, so that the loads of the loop need no bounds checks.
type stride interface {
	[4]byte | [6]byte | [7]byte | [10]byte
}

// keepEvery is keep with the step len(S), which must be s.stride.
func keepEvery[S stride](s *screen, msg []byte) bool {
	var z S
	const lanes = 3
	st := len(z)
	t := &s.first
	i := 0
	// Three samples per iteration, with one bounds check: their loads and lookups
	// overlap, and one branch is taken for the three (measured 1.6 times as fast as two
	// samples per iteration tested against a bitset).
	for ; i+lanes*st <= len(msg); i += lanes * st {
		w := msg[i : i+lanes*st : i+lanes*st]
		x1 := binary.LittleEndian.Uint32(w) | fold4
		x2 := binary.LittleEndian.Uint32(w[st:]) | fold4
		x3 := binary.LittleEndian.Uint32(w[2*st:]) | fold4
		if e1, e2, e3 := t[firstHash(x1)], t[firstHash(x2)], t[firstHash(x3)]; e1|e2|e3 != 0 &&
			(e1 != 0 && s.sample(msg, i, x1) || e2 != 0 && s.sample(msg, i+st, x2) || e3 != 0 && s.sample(msg, i+2*st, x3)) {
			return true
		}
	}
	for ; i+4 <= len(msg); i += st {
		if s.sample(msg, i, binary.LittleEndian.Uint32(msg[i:])|fold4) {
			return true
		}
	}
	return false
}

// sample reports whether the 4-gram x at msg[p] is listed and an 8-byte window of msg
// around it too.
func (s *screen) sample(msg []byte, p int, x uint32) bool {
	h1, h2 := hash4(x)
	if s.b4[h1>>6]>>(h1&63)&1 == 0 || s.b4[h2>>6]>>(h2&63)&1 == 0 {
		return false
	}
	for w := max(p-4, 0); w <= p && w+8 <= len(msg); w++ {
		g1, g2 := hash8(binary.LittleEndian.Uint64(msg[w:]) | fold8)
		if s.b8[g1>>6]>>(g1&63)&1 != 0 && s.b8[g2>>6]>>(g2&63)&1 != 0 {
			return true
		}
	}
	return false
}
