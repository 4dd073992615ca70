package metrics

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/eks-unauthorized-access/detector/infra/local"
)

// nextPath is the runtime API call with which a Lambda runtime asks for its first event:
// the runtime is ready when it makes it.
const nextPath = "/2018-06-01/runtime/invocation/next"

// Start is one measured start of the bootstrap.
type Start struct {
	// Ready is the time from just before exec to the first call for an event.
	Ready time.Duration
	// RSS is the peak resident set size (VmHWM) at that moment, in bytes.
	RSS int64
}

// StartToReady starts bootstrap runs times with env and measures each start up to its
// first GET of the next invocation on a runtime API served here (the bootstrap is then
// killed: only that call is answered, never an event).
func StartToReady(ctx context.Context, bootstrap string, env []string, runs int) ([]Start, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the runtime API: %w", err)
	}
	ready := make(chan time.Time, 1)
	srv := &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && r.URL.Path == nextPath {
				select {
				case ready <- time.Now():
				default:
				}
				<-r.Context().Done() // hold the call until the runtime is killed
				return
			}
			http.NotFound(w, r)
		}),
	}
	go func() { _ = srv.Serve(ln) }()
	defer func() { _ = srv.Close() }()
	env = append(env[:len(env):len(env)], "AWS_LAMBDA_RUNTIME_API="+ln.Addr().String())
	var out []Start
	for range runs {
		d, err := startOnce(ctx, bootstrap, env, ready)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

func startOnce(ctx context.Context, bootstrap string, env []string, ready <-chan time.Time) (Start, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bootstrap)
	cmd.Env = env
	cmd.Stderr = &stderr
	exited := make(chan error, 1)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Start{}, fmt.Errorf("start bootstrap: %w", err)
	}
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited //nolint:errcheck // the exit status of a killed process says nothing
	}()
	select {
	case t := <-ready:
		rss, err := statusKB(cmd.Process.Pid, "VmHWM")
		return Start{Ready: t.Sub(start), RSS: rss}, err
	case err := <-exited:
		exited <- err
		return Start{}, fmt.Errorf("bootstrap exited before asking for an event: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	case <-time.After(10 * time.Second):
		return Start{}, errors.New("bootstrap did not ask for an event within 10s")
	}
}

// Median returns the median of ds (0 for none).
func Median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// PeakRSS runs bootstrap under the runtime interface emulator against DynamoDB Local and
// moto (local.StartFunctionStack), invokes it once with event, and returns the peak
// resident set size (VmHWM) of the bootstrap process afterwards, in bytes. env is extra
// function environment (NAME=value), e.g. GOGC.
func PeakRSS(ctx context.Context, bootstrap string, event []byte, env ...string) (int64, error) {
	s, err := local.StartFunctionStack(ctx, local.StackOptions{Bootstrap: bootstrap, Table: "rss", Topic: "rss", Env: env})
	if err != nil {
		return 0, err
	}
	defer s.Stop()
	if _, err := s.Emulator.Invoke(ctx, event); err != nil {
		return 0, fmt.Errorf("invoke the bootstrap: %w", err)
	}
	pid, err := local.ProcessOf(bootstrap)
	if err != nil {
		return 0, err
	}
	return statusKB(pid, "VmHWM")
}

// statusKB reads a "kB" field of /proc/<pid>/status, in bytes.
func statusKB(pid int, field string) (int64, error) {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, fmt.Errorf("read process status: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read process status %s: %w", field, err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("read process status: no %s field", field)
}
