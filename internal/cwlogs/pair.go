package cwlogs

import "bytes"

// indexPair returns the index of the first '{' followed by '"' in b, or -1. In a payload
// these two bytes mark an object's first key and nothing else: inside a string a quote is
// always escaped. So the next record is found with one vector search, where bytes.Index
// of recordStart stops at every brace of the escaped messages, about twelve a line.
// On amd64 the blocks of 16 bytes are searched with SSE2 (pair_amd64.s), the rest here.
func indexPair(b []byte) int {
	if k := indexPairBlocks(b); k >= 0 {
		return k
	}
	from := pairBlocks(len(b))
	if k := bytes.Index(b[from:], []byte(`{"`)); k >= 0 {
		return from + k
	}
	return -1
}

// indexRecordStart is bytes.Index(b, recordStart).
func indexRecordStart(b []byte) int {
	for i := 0; ; {
		k := indexPair(b[i:])
		if k < 0 {
			return -1
		}
		i += k
		if bytes.HasPrefix(b[i:], recordStart) {
			return i
		}
		i++
	}
}
