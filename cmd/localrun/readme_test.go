package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eks-unauthorized-access/detector/infra/local"
	"github.com/eks-unauthorized-access/detector/infra/local/localtest"
)

// varying are the parts of make run's output that change from run to run: ports, timings
// and the build platform.
var varying = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`http://127\.0\.0\.1:\d+`), "http://127.0.0.1:PORT"},
	{regexp.MustCompile(`returned (\S+) in [0-9.]+(ms|s|µs)`), "returned $1 in N"},
	{regexp.MustCompile(`for this machine \([a-z0-9]+/[a-z0-9]+\)`), "for this machine (OS/ARCH)"},
}

func normalize(s string) string {
	for _, v := range varying {
		s = v.re.ReplaceAllString(s, v.with)
	}
	return strings.TrimSpace(s)
}

// readmeRuns returns the make run transcripts shown in the README and docs/local.md
// (console blocks that deliver an event), without their command line.
func readmeRuns(t *testing.T) []string {
	t.Helper()
	root, err := local.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var docs []byte
	for _, name := range []string{"README.md", filepath.Join("docs", "local.md")} {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, b...)
	}
	var runs []string
	for _, block := range regexp.MustCompile("(?s)```console\n(.*?)```").FindAllStringSubmatch(string(docs), -1) {
		text := block[1]
		if !strings.Contains(text, "==> Delivery 1:") {
			continue
		}
		if first, rest, ok := strings.Cut(text, "\n"); ok && (strings.Contains(first, "go run ./cmd/localrun") || strings.Contains(first, "make run")) {
			text = rest
		}
		runs = append(runs, text)
	}
	return runs
}

// TestReadmeRun runs make run's program for real (the local services, the real bootstrap)
// and checks that the README shows exactly its output, ports and timings aside: the
// README's example cannot drift from what a user sees.
func TestReadmeRun(t *testing.T) {
	localtest.MustHaveServices(t)
	runs := readmeRuns(t)
	if len(runs) == 0 {
		t.Fatal("the README shows no make run output")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var out strings.Builder
	if err := run(ctx, optionsFor(defaultEvent, false), &out, io.Discard); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := normalize(out.String())
	for i, shown := range runs {
		if want := normalize(shown); got != want {
			t.Errorf("README transcript %d differs from make run's output:\n%s", i+1, lineDiff(want, got))
		}
	}
}

// lineDiff lists the lines that differ, README first.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + strconv.Itoa(i+1) + "\n  README:   " + wl + "\n  make run: " + gl + "\n")
		}
	}
	return b.String()
}

// TestRunWithIntegrations runs make run with the Security Hub and EventBridge outputs on:
// the excerpt of docs/local.md appears in the real output, in order (each "..." line
// skips output), so the redelivery adding no finding and no event is what a user sees.
func TestRunWithIntegrations(t *testing.T) {
	localtest.MustHaveServices(t)
	root, err := local.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "local.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- integrations transcript -->\n```text\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/local.md shows no integrations transcript")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var out strings.Builder
	opts := optionsFor(defaultEvent, false)
	opts.integrations = true
	if err := run(ctx, opts, &out, io.Discard); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := strings.Split(normalize(out.String()), "\n")
	i := 0
	for _, chunk := range strings.Split(string(m[1]), "...\n") {
		want := strings.Split(strings.TrimRight(chunk, "\n"), "\n")
		for ; i+len(want) <= len(got); i++ {
			if slices.Equal(got[i:i+len(want)], want) {
				break
			}
		}
		if i+len(want) > len(got) {
			t.Fatalf("make run -integrations does not print, in order:\n%s\n\nits output:\n%s", chunk, out.String())
		}
		i += len(want)
	}
	if last := got[len(got)-1]; !strings.HasPrefix(last, "run: 2 alerts published on first delivery, 0 on redelivery") {
		t.Errorf("last line %q", last)
	}
}
