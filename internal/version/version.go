// Package version is the detector's release version, printed by replay --version and in
// the function's start-up log line. Release builds may set it with
// -ldflags "-X github.com/eks-unauthorized-access/detector/internal/version.Version=…".
package version

// Version is the release version (CHANGELOG.md).
var Version = "0.1.0"
