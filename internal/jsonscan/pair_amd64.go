//go:build amd64 && !purego

package jsonscan

// indexPairBlocks is implemented in pair_amd64.s.
//
//go:noescape
func indexPairBlocks(b []byte, c0, c1 byte) int

// pairBlocks is the number of pair positions indexPairBlocks tests in b.
func pairBlocks(n int) int {
	if n < 17 {
		return 0
	}
	return ((n-17)/16 + 1) * 16
}
