package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/suppress"
)

// maxExamples is how many matches the review shows per suppression entry.
const maxExamples = 3

// review is the pipeline's suppressor in replay: it applies the filter as the function
// does, and records for each entry which matches it would suppress on its own (whatever
// the others, its dry-run mark or its expiry), so that an entry can be reviewed before it
// is deployed.
type review struct {
	filter  *suppress.Filter
	now     time.Time
	matches map[string]int
	// examples keep the user, the source IPs and the time of the first matches: never a
	// request body, a URI or a message.
	examples map[string][]string
}

func newReview(f *suppress.Filter, now time.Time) *review {
	return &review{filter: f, now: now, matches: map[string]int{}, examples: map[string][]string{}}
}

// Check applies the filter and records the entries that suppress m on their own.
func (r *review) Check(m detect.Match, src aggregate.Source) suppress.Verdict {
	for _, name := range r.filter.Alone(m, src) {
		r.matches[name]++
		if len(r.examples[name]) < maxExamples {
			r.examples[name] = append(r.examples[name], fmt.Sprintf("user=%s src_ip=%s time=%s",
				strconv.Quote(m.Fields.User), strconv.Quote(strings.Join(m.Fields.SrcIPs, ",")), m.Time.UTC().Format(time.RFC3339)))
		}
	}
	return r.filter.Check(m, src)
}

// write prints one paragraph per entry, in the file's order.
func (r *review) write(w io.Writer) {
	for _, e := range r.filter.Entries() {
		var state []string
		if e.DryRun {
			state = append(state, "dry run")
		}
		if !e.Expires.IsZero() {
			verb := "expires"
			if !r.now.Before(e.Expires) {
				verb = "expired"
			}
			state = append(state, verb+" "+e.Expires.Format(time.RFC3339))
		}
		if e.Owner != "" {
			state = append(state, "owner "+strconv.Quote(e.Owner))
		}
		about := ""
		if len(state) > 0 {
			about = " (" + strings.Join(state, ", ") + ")"
		}
		fmt.Fprintf(w, "suppression %s%s: would suppress %d matches on its own\n", e.Name, about, r.matches[e.Name])
		for _, ex := range r.examples[e.Name] {
			fmt.Fprintf(w, "  %s\n", ex)
		}
	}
}
