// Command mkevents generates the sample Lambda events in events/ from the raw audit lines
// in events/raw, deterministically (fixed ids, timestamps and compression settings):
//
//	go run ./cmd/mkevents           # rewrite events/*.json
//	go run ./cmd/mkevents -check    # exit 1 when the committed events differ
//
// With -wrap it turns your own audit lines into one CloudWatch Logs subscription event,
// moved in time so that the newest line happened -age ago (whole hours, so windows keep
// their shape), for example to try late data:
//
//	go run ./cmd/mkevents -wrap events/raw/iam-user-forbidden.jsonl -age 720h -o 30-days-old.json
//	go run ./cmd/localrun -event 30-days-old.json
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
	"time"
)

func main() {
	dir := flag.String("dir", "events", "directory holding raw/ and the generated events")
	check := flag.Bool("check", false, "compare the generated events with the files instead of writing them")
	wrapFile := flag.String("wrap", "", "audit lines (JSON, one per line) to wrap into one subscription event instead")
	age := flag.Duration("age", 0, "with -wrap: how long ago the newest line happened")
	outFile := flag.String("o", "", "with -wrap: output file (standard output if empty)")
	flag.Parse()
	if *wrapFile != "" {
		if err := runWrap(*wrapFile, *age, *outFile); err != nil {
			fmt.Fprintln(os.Stderr, "mkevents:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*dir, *check, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mkevents:", err)
		os.Exit(1)
	}
}

// runWrap writes the subscription event wrapping the lines of file (see wrap).
func runWrap(file string, age time.Duration, out string) error {
	lines, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read audit lines: %w", err)
	}
	ev, err := wrap(lines, time.Now(), age)
	if err != nil {
		return fmt.Errorf("wrap %s: %w", file, err)
	}
	if out == "" {
		_, err = os.Stdout.Write(ev)
		return err
	}
	return os.WriteFile(out, ev, 0o644)
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
