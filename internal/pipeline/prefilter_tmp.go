package pipeline

import "github.com/eks-unauthorized-access/detector/internal/detect"

// mayMatch stands in for detect.MayMatch until the prefilter exists: it lets every line
// through, which is always sound.
func mayMatch(msg []byte, mode detect.Mode) bool { return true }
