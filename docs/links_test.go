// Package docs_test checks the documentation: every relative link and anchor resolves, and
// the README stays an index.
package docs_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// markdownFiles are the documents checked, relative to the repository root.
func markdownFiles(t *testing.T) []string {
	t.Helper()
	files := []string{"README.md", "SECURITY.md", "CHANGELOG.md", "bench/README.md"}
	more, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range more {
		files = append(files, strings.TrimPrefix(f, "../"))
	}
	return files
}

var (
	linkRE    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	headingRE = regexp.MustCompile(`(?m)^#{1,6} (.+)$`)
	fenceRE   = regexp.MustCompile("(?ms)^```.*?^```")
)

// anchors returns the GitHub anchors of a document's headings.
func anchors(text string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	for _, m := range headingRE.FindAllStringSubmatch(fenceRE.ReplaceAllString(text, ""), -1) {
		var b strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(m[1])) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || ('a' <= r && r <= 'z') || ('0' <= r && r <= '9') || r > 127 && isWordRune(r):
				b.WriteRune(r)
			}
		}
		s := b.String()
		if n := seen[s]; n > 0 {
			out[s+"-"+strconv.Itoa(n)] = true
		} else {
			out[s] = true
		}
		seen[s]++
	}
	return out
}

func isWordRune(r rune) bool { return r != '→' && r != '…' && r != '—' && r != '–' }

func TestLinks(t *testing.T) {
	for _, file := range markdownFiles(t) {
		b, err := os.ReadFile(filepath.Join("..", file))
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		for _, m := range linkRE.FindAllStringSubmatch(fenceRE.ReplaceAllString(text, ""), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, anchor, _ := strings.Cut(target, "#")
			doc := text
			if path != "" {
				full := filepath.Join("..", filepath.Dir(file), path)
				got, err := os.ReadFile(full)
				if err != nil {
					if fi, serr := os.Stat(full); serr == nil && fi.IsDir() {
						continue
					}
					t.Errorf("%s: link %q: %v", file, target, err)
					continue
				}
				doc = string(got)
			}
			if anchor != "" && strings.HasSuffix(path+file, ".md") && !anchors(doc)[anchor] {
				t.Errorf("%s: link %q: no heading with that anchor", file, target)
			}
		}
	}
}

// TestReadmeIsAnIndex: the README stays short; the chapters live in docs/.
func TestReadmeIsAnIndex(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n > 300 {
		t.Errorf("README.md has %d lines, want at most 300: move the detail to docs/", n)
	}
}
