//go:build !amd64 || purego

package cwlogs

// indexPairBlocks tests no position: indexPair falls back to its generic search.
func indexPairBlocks([]byte) int { return -1 }

func pairBlocks(int) int { return 0 }
