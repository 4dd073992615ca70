//go:build !amd64 || purego

package jsonscan

// indexPairBlocks tests no position: IndexPair falls back to its generic search.
func indexPairBlocks([]byte, byte, byte) int { return -1 }

func pairBlocks(int) int { return 0 }
