package jsonscan

import "bytes"

// IndexPair returns the index of the first c0 followed by c1 in b, or -1. It is for pairs
// that are rare in JSON text although each byte is common: '{' then '"' starts an
// object's first key and occurs nowhere else (inside a string every quote is escaped),
// '\' then 'u' starts a \u escape. On amd64 the blocks of 16 bytes are searched with SSE2
// (pair_amd64.s), 16 positions at a time, and the rest here; bytes.Index of the pair
// stops at every c0 instead.
func IndexPair(b []byte, c0, c1 byte) int {
	if k := indexPairBlocks(b, c0, c1); k >= 0 {
		return k
	}
	from := pairBlocks(len(b))
	if k := bytes.Index(b[from:], []byte{c0, c1}); k >= 0 {
		return from + k
	}
	return -1
}
