package cwlogs

import (
	"bytes"

	"github.com/eks-unauthorized-access/detector/internal/jsonscan"
)

// indexRecordStart is bytes.Index(b, recordStart). It finds each brace followed by a
// quote with one vector search (jsonscan.IndexPair): in a payload these mark an object's
// first key and nothing else, where bytes.Index of recordStart stops at every brace of
// the escaped messages, about twelve a line.
func indexRecordStart(b []byte) int {
	for i := 0; ; {
		k := jsonscan.IndexPair(b[i:], '{', '"')
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
