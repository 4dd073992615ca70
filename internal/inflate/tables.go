package inflate

import "sync"

// A table entry describes what the next bits of the input decode to, in one uint32:
//
//	bits 0-7    bits of the code to consume (a link: unused)
//	bits 8-11   extra bits that follow the code (length or distance); a link: its subtable's index bits
//	bits 12-15  kind flags (none for a length or a distance)
//	bits 16-31  the literal byte, the base length or distance, or a link's subtable offset
//
// A code no longer than the primary index is found with one lookup of the next bits; a
// longer one with a second lookup in the subtable its primary entry links to, whose
// entries hold the whole code's length.
const (
	flagLit  = 1 << 12 // a literal byte
	flagEOB  = 1 << 13 // the end of the block
	flagLink = 1 << 14 // a link to a subtable
	flagBad  = 1 << 15 // a code that no symbol may use here
)

const (
	litBits  = 10 // primary index bits of the literal/length table
	distBits = 8  // primary index bits of the distance table
	maxBits  = 15 // the longest code DEFLATE allows

	numLitLen = 288 // literal/length symbols of the fixed code (286 and 287 are invalid)
	numDist   = 32  // distance symbols of the fixed code (30 and 31 are invalid)

	// Table sizes: the primary table, then room for subtables of up to maxBits-primary
	// index bits, one for each code longer than the primary index at most.
	litTableSize  = 1<<litBits + numLitLen<<(maxBits-litBits)
	distTableSize = 1<<distBits + numDist<<(maxBits-distBits)
)

// lengthBase and lengthExtra are the base lengths and extra bits of the length symbols
// 257 to 285 (RFC 1951, section 3.2.5).
var (
	lengthBase = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
		35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
		3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193,
		257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6,
		7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
)

// litTemplate and distTemplate are the entries of each symbol, without the code length.
var litTemplate, distTemplate = func() (l [numLitLen]uint32, d [numDist]uint32) {
	for s := range l {
		switch {
		case s < 256:
			l[s] = flagLit | uint32(s)<<16
		case s == 256:
			l[s] = flagEOB
		case s < 286:
			l[s] = uint32(lengthBase[s-257])<<16 | uint32(lengthExtra[s-257])<<8
		default:
			l[s] = flagBad
		}
	}
	for s := range d {
		if s < 30 {
			d[s] = uint32(distBase[s])<<16 | uint32(distExtra[s])<<8
		} else {
			d[s] = flagBad
		}
	}
	return l, d
}()

// build fills table with the decoding entries of the canonical Huffman code whose code
// lengths are lengths (RFC 1951, section 3.2.2), symbol s taking templates[s]. It
// reports false for a code that is over-subscribed, or incomplete other than a single
// code of one bit (what compress/flate accepts too). A code with no symbols is valid:
// every lookup in its table finds flagBad.
func build(table []uint32, lengths []uint8, templates []uint32, primary uint) bool {
	var count [maxBits + 1]int
	maxLen := 0
	for _, l := range lengths {
		count[l]++
		maxLen = max(maxLen, int(l))
	}
	size := 1 << primary
	if maxLen == 0 {
		for i := range table[:size] {
			table[i] = flagBad
		}
		return true
	}
	left := 1
	for l := 1; l <= maxBits; l++ {
		left = left<<1 - count[l]
		if left < 0 {
			return false // over-subscribed
		}
	}
	if left > 0 && (maxLen != 1 || count[1] != 1) {
		return false // incomplete
	}
	var next [maxBits + 1]int
	count[0] = 0
	code := 0
	for l := 1; l <= maxBits; l++ {
		code = (code + count[l-1]) << 1
		next[l] = code
	}
	for i := range table[:size] {
		table[i] = flagBad
	}
	subBits := uint(0)
	if uint(maxLen) > primary {
		subBits = uint(maxLen) - primary
	}
	free := size
	for s, l := range lengths {
		if l == 0 {
			continue
		}
		c := next[l]
		next[l]++
		rev := reverse(uint(c), uint(l))
		e := templates[s] | uint32(l)
		if uint(l) <= primary {
			for j := rev; j < uint(size); j += 1 << l {
				table[j] = e
			}
			continue
		}
		p := rev & (uint(size) - 1)
		link := table[p]
		if link&flagLink == 0 {
			link = flagLink | uint32(free)<<16 | uint32(subBits)<<8
			table[p] = link
			for i := range table[free : free+1<<subBits] {
				table[free+i] = flagBad
			}
			free += 1 << subBits
		}
		off := uint(link >> 16)
		for j := rev >> primary; j < 1<<subBits; j += 1 << (uint(l) - primary) {
			table[off+j] = e
		}
	}
	return true
}

// reverse returns the n low bits of c in reverse order: DEFLATE sends Huffman codes
// starting with their most significant bit, and the bit buffer holds the first bit lowest.
func reverse(c, n uint) uint {
	r := uint(0)
	for range n {
		r = r<<1 | c&1
		c >>= 1
	}
	return r
}

// fixedTables are the tables of the fixed Huffman code (RFC 1951, section 3.2.6).
var fixedTables = sync.OnceValues(func() ([]uint32, []uint32) {
	var lengths [numLitLen]uint8
	for s := range lengths {
		switch {
		case s < 144:
			lengths[s] = 8
		case s < 256:
			lengths[s] = 9
		case s < 280:
			lengths[s] = 7
		default:
			lengths[s] = 8
		}
	}
	lit := make([]uint32, litTableSize)
	if !build(lit, lengths[:], litTemplate[:], litBits) {
		panic("inflate: the fixed literal/length code does not build")
	}
	var dl [numDist]uint8
	for s := range dl {
		dl[s] = 5
	}
	dist := make([]uint32, distTableSize)
	if !build(dist, dl[:], distTemplate[:], distBits) {
		panic("inflate: the fixed distance code does not build")
	}
	return lit, dist
})
