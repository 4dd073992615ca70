// Package pipeline runs decode → parse → detect → aggregate over one Lambda event or over
// replayed lines. It is pure (no AWS calls) and shared by the Lambda handler and cmd/replay.
package pipeline
