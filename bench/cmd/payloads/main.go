// Command payloads writes the benchmark's Lambda events (workload.BenchmarkDeliveries):
// as event-N.json files into a directory, for the Node.js comparison of make bench, or as
// one file with one event per line, the input replay reads (-jsonl). With -inflate it
// reads such a file back and only base64-decodes and inflates each event's data: the floor
// that replay's time is compared with (with the decoder's inflater, internal/inflate, or
// with compress/gzip given -stdlib).
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/eks-unauthorized-access/detector/bench/workload"
	"github.com/eks-unauthorized-access/detector/internal/inflate"
)

func main() {
	dir := flag.String("dir", "", "directory to write the events into, one file each")
	jsonl := flag.String("jsonl", "", "file to write the events into, one per line")
	inflateName := flag.String("inflate", "", "read this file of events, one per line, and only base64-decode and inflate each")
	stdlib := flag.Bool("stdlib", false, "with -inflate: inflate with compress/gzip instead of the decoder's inflater")
	n := flag.Int("n", 3, "number of deliveries (the Go benchmarks use 3; about 5.2 MB of audit JSON each)")
	flag.Parse()
	var err error
	switch {
	case *inflateName != "":
		var size int64
		if size, err = inflateFile(*inflateName, *stdlib); err == nil {
			fmt.Fprintf(os.Stderr, "inflated %d bytes\n", size)
		}
	case *dir != "":
		for i, d := range workload.BenchmarkDeliveries(*n) {
			name := filepath.Join(*dir, fmt.Sprintf("event-%d.json", i))
			if err = os.WriteFile(name, d.Event, 0o600); err != nil {
				break
			}
		}
	case *jsonl != "":
		var buf bytes.Buffer
		for _, d := range workload.BenchmarkDeliveries(*n) {
			buf.Write(d.Event)
			buf.WriteByte('\n')
		}
		err = os.WriteFile(*jsonl, buf.Bytes(), 0o600)
	default:
		fmt.Fprintln(os.Stderr, "usage: payloads -dir DIR | -jsonl FILE [-n N] | -inflate FILE [-stdlib]")
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "payloads:", err)
		os.Exit(1)
	}
}

// dataKey precedes the base64 data in a subscription event as the generator writes it.
var dataKey = []byte(`"data":"`)

// inflateFile base64-decodes and inflates the data of each event line of name into a
// reused buffer, as the decoder's floor benchmark does, and returns the inflated size.
// It inflates with the decoder's inflater, or with compress/gzip if stdlib is set.
func inflateFile(name string, stdlib bool) (int64, error) {
	f, err := os.Open(name)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var total int64
	var comp []byte
	var src bytes.Reader
	var fast inflate.Reader // the decoder's inflater
	var std *gzip.Reader
	out := make([]byte, 64<<10)
	for {
		line, err := r.ReadBytes('\n')
		if i := bytes.Index(line, dataKey); i >= 0 {
			data := line[i+len(dataKey):]
			data = data[:bytes.IndexByte(data, '"')]
			if cap(comp) < base64.StdEncoding.DecodedLen(len(data)) {
				comp = make([]byte, base64.StdEncoding.DecodedLen(len(data)))
			}
			n, derr := base64.StdEncoding.Decode(comp[:cap(comp)], data)
			if derr != nil {
				return total, fmt.Errorf("decode data: %w", derr)
			}
			var zr io.Reader = &fast
			if stdlib {
				src.Reset(comp[:n])
				if std == nil {
					std, derr = gzip.NewReader(&src)
				} else {
					derr = std.Reset(&src)
				}
				zr = std
			} else {
				derr = fast.Reset(comp[:n])
			}
			if derr != nil {
				return total, fmt.Errorf("open gzip: %w", derr)
			}
			for {
				m, rerr := zr.Read(out)
				total += int64(m)
				if rerr == io.EOF {
					break
				}
				if rerr != nil {
					return total, fmt.Errorf("inflate: %w", rerr)
				}
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}
