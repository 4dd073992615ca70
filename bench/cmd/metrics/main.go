// Command metrics prints the figures of make bench that are not Go benchmarks, as
// "name: value" lines: the size of the arm64 bootstrap and what it is made of, the time
// from exec of the host bootstrap to its first call for an event, its peak RSS on a
// maximum-size delivery under the Lambda runtime interface emulator, and the DynamoDB
// requests per batch as the events of a batch grow. It needs the local services of
// infra/local (DynamoDB Local, moto, aws-lambda-rie).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/eks-unauthorized-access/detector/bench/metrics"
	"github.com/eks-unauthorized-access/detector/bench/workload"
	"github.com/eks-unauthorized-access/detector/infra/local"
)

func main() {
	starts := flag.Int("starts", 21, "starts of the bootstrap to time (the median is printed)")
	var env envFlag
	flag.Var(&env, "env", "extra function environment NAME=value for the runs of the bootstrap (repeatable), e.g. GOGC=50")
	inflated := flag.String("inflated", "", "only measure the peak RSS of deliveries that inflate to these sizes in MiB (comma separated, at most 128), e.g. 64,128")
	long := flag.String("long", "", "only measure the peak RSS of a delivery of N denied creates of K KB each (a long request URI before verb): N,K, e.g. 331,200")
	distinct := flag.Int("distinct", 0, "only measure the peak RSS of a delivery of N distinct denied creates by one user (each its own row, as an attacker would send them)")
	flag.Parse()
	run := run
	switch {
	case *inflated != "":
		run = func(ctx context.Context, _ int, extra []string) error {
			return onBootstrap(ctx, func(b string) error { return inflatedRSS(ctx, b, *inflated, extra) })
		}
	case *long != "":
		var n, k int
		if _, err := fmt.Sscanf(*long, "%d,%d", &n, &k); err != nil || n <= 0 || k <= 0 || n*k > 256<<10 {
			fmt.Fprintf(os.Stderr, "metrics: -long: %q is not N,K with N*K KB at most 256 MiB\n", *long)
			os.Exit(2)
		}
		run = func(ctx context.Context, _ int, extra []string) error {
			return onBootstrap(ctx, func(b string) error { return longRSS(ctx, b, n, k, extra) })
		}
	case *distinct > 0:
		run = func(ctx context.Context, _ int, extra []string) error {
			return onBootstrap(ctx, func(b string) error { return distinctRSS(ctx, b, *distinct, extra) })
		}
	}
	if err := run(context.Background(), *starts, env); err != nil {
		fmt.Fprintln(os.Stderr, "metrics:", err)
		os.Exit(1)
	}
}

// envFlag collects repeated -env flags.
type envFlag []string

func (e *envFlag) String() string     { return strings.Join(*e, " ") }
func (e *envFlag) Set(v string) error { *e = append(*e, v); return nil }

func run(ctx context.Context, starts int, extra []string) error {
	root, err := local.RepoRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "bench-metrics-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	if err := sizes(ctx, root, dir); err != nil {
		return err
	}

	bootstrap, err := local.BuildBootstrap(ctx, root, dir)
	if err != nil {
		return err
	}
	env := local.FunctionEnvironment("http://127.0.0.1:9", "http://127.0.0.1:9", "start", "arn:aws:sns:"+local.Region+":"+local.AccountID+":start", extra...)
	ss, err := metrics.StartToReady(ctx, bootstrap, env, starts)
	if err != nil {
		return fmt.Errorf("start to ready: %w", err)
	}
	var ds, rs []time.Duration
	for _, s := range ss {
		ds = append(ds, s.Ready)
		rs = append(rs, time.Duration(s.RSS)) // a byte count, sorted like a duration
	}
	fmt.Printf("start to ready (exec to first GET /next, host build, median of %d): %.1f ms (min %.1f, max %.1f; target <= 30 ms)\n",
		len(ds), ms(metrics.Median(ds)), ms(minOf(ds)), ms(maxOf(ds)))

	fmt.Printf("peak RSS (VmHWM) of the bootstrap when ready, before any event (median): %.1f MiB\n", float64(metrics.Median(rs))/(1<<20))

	d := workload.New(1).Delivery(workload.MaxDeliveryAuditBytes)
	rss, err := metrics.PeakRSS(ctx, bootstrap, d.Event, extra...)
	if err != nil {
		return fmt.Errorf("peak RSS: %w", err)
	}
	fmt.Printf("peak RSS (VmHWM) of the bootstrap after one maximum-size delivery (%d events, %.1f MB audit JSON, %d KB event): %.1f MiB (target <= 64 MiB)\n",
		d.Events, float64(d.AuditBytes)/1e6, len(d.Event)/1024, float64(rss)/(1<<20))
	// The hostile shapes: repeated lines inflating to 64 MiB, long lines, and 10,000
	// distinct denied creates (as many log events as one PutLogEvents batch holds).
	if err := inflatedRSS(ctx, bootstrap, "64", extra); err != nil {
		return err
	}
	if err := longRSS(ctx, bootstrap, 331, 200, extra); err != nil {
		return err
	}
	if err := distinctRSS(ctx, bootstrap, 10000, extra); err != nil {
		return err
	}

	ddb, err := local.StartDynamoDB(ctx)
	if err != nil {
		return err
	}
	defer ddb.Stop()
	sns, err := local.StartMoto(ctx, "alerts")
	if err != nil {
		return err
	}
	defer sns.Stop()
	counts, err := metrics.CountRequests(ctx, ddb, sns, "alerts", metrics.Batches(7, 6, 20, 1, 10, 98, 150))
	if err != nil {
		return fmt.Errorf("DynamoDB requests: %w", err)
	}
	fmt.Println("DynamoDB requests per batch (same 6 matching lines, repeated and among more other traffic):")
	for _, c := range counts {
		fmt.Println("  " + c.String())
	}
	return nil
}

// sizes builds the arm64 bootstrap as the SAM build does and prints its size, then the
// share of each part in an unstripped build of the same.
func sizes(ctx context.Context, root, dir string) error {
	build := func(out string, ldflags ...string) error {
		args := append([]string{"build", "-trimpath", "-tags", "lambda.norpc"}, ldflags...)
		cmd := exec.CommandContext(ctx, "go", append(args, "-o", out, local.FunctionPackage)...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build arm64 bootstrap: %w: %s", err, b)
		}
		return nil
	}
	stripped, full := filepath.Join(dir, "arm64-bootstrap"), filepath.Join(dir, "arm64-bootstrap-symbols")
	if err := build(stripped, "-ldflags", "-s -w"); err != nil {
		return err
	}
	if err := build(full); err != nil {
		return err
	}
	st, err := os.Stat(stripped)
	if err != nil {
		return err
	}
	parts, total, err := metrics.SymbolSizes(full)
	if err != nil {
		return err
	}
	fmt.Printf("arm64 bootstrap size: %d bytes = %.2f MiB (target <= 9 MB)\n", st.Size(), float64(st.Size())/(1<<20))
	fmt.Println("arm64 bootstrap symbol bytes by part (share; estimated MiB of the stripped file):")
	var suppress int64
	for i, p := range parts {
		share := float64(p.Bytes) / float64(total)
		if i < 2 {
			suppress += p.Bytes
		}
		fmt.Printf("  %-52s %5.1f%%  ~%5.2f MiB\n", p.Name, 100*share, share*float64(st.Size())/(1<<20))
	}
	rest := float64(st.Size()) * (1 - float64(suppress)/float64(total))
	fmt.Printf("arm64 bootstrap without the suppression feature (estimate): ~%.1f MiB\n", rest/(1<<20))
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func minOf(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = min(m, d)
	}
	return m
}

func maxOf(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

// inflatedRSS prints the peak RSS of the bootstrap on one delivery that inflates to each
// size (MiB, the MAX_DECOMPRESSED_BYTES cap at its maximum): the generator's lines repeated,
// so the delivery compresses well, as a gzip bomb or a burst of identical lines would.
// Set AWS_LAMBDA_FUNCTION_MEMORY_SIZE with -env to see the effect of the Go memory limit.
func inflatedRSS(ctx context.Context, bootstrap, sizes string, extra []string) error {
	const maxCap = 128 << 20
	for _, f := range strings.Split(sizes, ",") {
		mib, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || mib <= 0 || mib > maxCap>>20 {
			return fmt.Errorf("-inflated: %q is not a size in MiB up to 128", f)
		}
		d := repeatedDelivery(mib << 20)
		env := append([]string{"MAX_DECOMPRESSED_BYTES=" + strconv.Itoa(maxCap)}, extra...)
		if err := printPeak(ctx, bootstrap, d, fmt.Sprintf("%d events of repeated lines", d.Events), env...); err != nil {
			return err
		}
	}
	return nil
}

// printPeak runs d through the bootstrap and prints its peak RSS; what says what d holds.
func printPeak(ctx context.Context, bootstrap string, d workload.Delivery, what string, env ...string) error {
	rss, err := metrics.PeakRSS(ctx, bootstrap, d.Event, env...)
	if err != nil {
		return fmt.Errorf("peak RSS: %w", err)
	}
	fmt.Printf("peak RSS (VmHWM) of the bootstrap after one delivery of %s (%.1f MiB inflated, %d KB event): %.1f MiB\n",
		what, float64(len(d.Message))/(1<<20), len(d.Event)/1024, float64(rss)/(1<<20))
	return nil
}

// onBootstrap builds the host bootstrap into a temporary folder, runs f on it and removes
// the folder.
func onBootstrap(ctx context.Context, f func(bootstrap string) error) error {
	root, err := local.RepoRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "bench-metrics-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bootstrap, err := local.BuildBootstrap(ctx, root, dir)
	if err != nil {
		return err
	}
	return f(bootstrap)
}

// longRSS measures the peak RSS of the bootstrap on a delivery of n denied creates of
// about k KB each: every line is a candidate, is parsed and makes an aggregate of its own.
func longRSS(ctx context.Context, bootstrap string, n, k int, extra []string) error {
	d := metrics.LongLines(n, k<<10)
	return printPeak(ctx, bootstrap, d, fmt.Sprintf("%d denied creates of %d KB", d.Events, k), extra...)
}

// repeatedDelivery builds a delivery whose inflated message is just under size bytes, from
// 8 generated lines repeated (they fit gzip's window, so the delivery compresses well).
func repeatedDelivery(size int) workload.Delivery {
	g := workload.New(1)
	var base [][]byte
	var baseKinds []workload.Kind
	for range 8 {
		line, kind := g.Line()
		base, baseKinds = append(base, line), append(baseKinds, kind)
	}
	var lines [][]byte
	var kinds []workload.Kind
	// A log event costs its line, JSON-escaped, plus about 90 bytes of id and timestamp.
	for n, i := 0, 0; ; i++ {
		line := base[i%len(base)]
		cost := len(line) + strings.Count(string(line), `"`) + 90
		if n+cost > size*97/100 {
			break
		}
		n += cost
		lines, kinds = append(lines, line), append(kinds, baseKinds[i%len(base)])
	}
	return g.Wrap(lines, kinds)
}

// distinctRSS measures the peak RSS of the bootstrap on a delivery of n distinct denied
// creates by one user (metrics.DistinctRequests): every line makes an aggregate of its own.
func distinctRSS(ctx context.Context, bootstrap string, n int, extra []string) error {
	d := metrics.DistinctRequests(1, n)
	return printPeak(ctx, bootstrap, d, fmt.Sprintf("%d distinct denied creates", d.Events), extra...)
}
