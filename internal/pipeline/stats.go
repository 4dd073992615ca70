package pipeline

import "github.com/eks-unauthorized-access/detector/internal/logsource"

// Add adds the counts of o to s, so that the runs of several events (one per Kinesis
// record, say) report as one.
func (s *Stats) Add(o Stats) {
	s.Payloads += o.Payloads
	s.ControlMessages += o.ControlMessages
	s.LogEvents += o.LogEvents
	s.Candidates += o.Candidates
	s.AuditEvents += o.AuditEvents
	s.Matches += o.Matches
	s.TruncatedParsed += o.TruncatedParsed
	s.Suppressed += o.Suppressed
	s.DuplicateLogEvents += o.DuplicateLogEvents
	s.SuppressionErrors += o.SuppressionErrors
	if len(o.Skipped) > 0 && s.Skipped == nil {
		s.Skipped = make(map[SkipReason]int, len(o.Skipped))
	}
	for k, v := range o.Skipped {
		s.Skipped[k] += v
	}
	s.SuppressedBy = addCounts(s.SuppressedBy, o.SuppressedBy)
	s.WouldSuppress = addCounts(s.WouldSuppress, o.WouldSuppress)
	if len(o.Rejected) > 0 && s.Rejected == nil {
		s.Rejected = make(map[logsource.Reason]int, len(o.Rejected))
	}
	for k, v := range o.Rejected {
		s.Rejected[k] += v
	}
}

// RejectedTotal returns the number of rejected log events, all reasons together.
func (s Stats) RejectedTotal() int {
	n := 0
	for _, c := range s.Rejected {
		n += c
	}
	return n
}

// addCounts adds the counts of o to s, allocating s when needed, and returns s.
func addCounts(s, o map[string]int) map[string]int {
	if len(o) > 0 && s == nil {
		s = make(map[string]int, len(o))
	}
	for k, v := range o {
		s[k] += v
	}
	return s
}
