// Command mkevents generates the sample Lambda events in events/ from the raw audit lines
// in events/raw, deterministically (fixed ids, timestamps and compression settings):
//
//	go run ./cmd/mkevents           # rewrite events/*.json
//	go run ./cmd/mkevents -check    # exit 1 when the committed events differ
//
// Each event is written as one line of JSON, so that cmd/replay reads it as one document
// and `sam local invoke -e` accepts it.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
)

func main() {
	dir := flag.String("dir", "events", "directory holding raw/ and the generated events")
	check := flag.Bool("check", false, "compare the generated events with the files instead of writing them")
	flag.Parse()
	if err := run(*dir, *check, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mkevents:", err)
		os.Exit(1)
	}
}

func run(dir string, check bool, out io.Writer) error {
	files, err := Generate(os.DirFS(dir))
	if err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	var stale []string
	for _, name := range names {
		path := filepath.Join(dir, name)
		if check {
			have, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(have, files[name]) {
				stale = append(stale, path)
			}
			continue
		}
		if err := os.WriteFile(path, files[name], 0o644); err != nil {
			return fmt.Errorf("write event: %w", err)
		}
		fmt.Fprintln(out, "wrote", path)
	}
	if len(stale) > 0 {
		return fmt.Errorf("events differ from the generator, run `go run ./cmd/mkevents`: %v", stale)
	}
	return nil
}
