// Command payloads writes the benchmark's Lambda events (workload.BenchmarkDeliveries) as
// event-N.json files into a directory, for the Node.js comparison of make bench.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/eks-unauthorized-access/detector/bench/workload"
)

func main() {
	dir := flag.String("dir", "", "directory to write the events into")
	n := flag.Int("n", 3, "number of deliveries (the Go benchmarks use 3)")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "usage: payloads -dir DIR [-n N]")
		os.Exit(2)
	}
	for i, d := range workload.BenchmarkDeliveries(*n) {
		name := filepath.Join(*dir, fmt.Sprintf("event-%d.json", i))
		if err := os.WriteFile(name, d.Event, 0o600); err != nil {
			fmt.Fprintln(os.Stderr, "payloads:", err)
			os.Exit(1)
		}
	}
}
