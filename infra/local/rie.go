package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// invokePath is the path on which the runtime interface emulator takes invocations, the
// same as the Lambda Invoke API and `sam local start-lambda`.
const invokePath = "/2015-03-31/functions/function/invocations"

// FunctionPackage is the package of the Lambda function, relative to the repository root.
const FunctionPackage = "./functions/unauthorized-access"

// ReportFunctionPackage is the package of the hourly report function, relative to the
// repository root.
const ReportFunctionPackage = "./functions/hourly-report"

// invokeTimeout bounds one invocation, start of the runtime included.
const invokeTimeout = 60 * time.Second

// Emulator is a running AWS Lambda Runtime Interface Emulator hosting the function's
// bootstrap: the part of `sam local invoke` that runs inside its container, run here as a
// plain process.
type Emulator struct {
	// Endpoint is the base URL of the emulator's invoke API.
	Endpoint string
	proc     *process
	http     *http.Client
}

// FunctionError is the error a handler returned, as the runtime reports it: HTTP 200 with
// errorMessage and errorType in the body.
type FunctionError struct {
	Message    string   `json:"errorMessage"`
	Type       string   `json:"errorType"`
	StackTrace []string `json:"stackTrace,omitempty"`
}

// TimeoutErrorType is the Type of the FunctionError for an invocation that timed out.
const TimeoutErrorType = "Sandbox.Timedout"

// Error returns the handler's error type and message.
func (e *FunctionError) Error() string {
	if e.Type == "" {
		return "function error: " + e.Message
	}
	return "function error (" + e.Type + "): " + e.Message
}

// RIEBinary returns the path of aws-lambda-rie installed under .tools/bin.
func RIEBinary() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, ".tools", "bin", "aws-lambda-rie")
	if _, err := os.Stat(bin); err != nil {
		if p, lookErr := exec.LookPath("aws-lambda-rie"); lookErr == nil {
			return p, nil
		}
		return "", fmt.Errorf("aws-lambda-rie not found at %s (run infra/local/install.sh): %w", bin, ErrToolMissing)
	}
	return bin, nil
}

// BuildBootstrap builds the function for the host (CGO off, tag lambda.norpc, as the SAM
// build does for Lambda) into dir/bootstrap and returns its path. root is the repository
// root.
func BuildBootstrap(ctx context.Context, root, dir string) (string, error) {
	return BuildFunction(ctx, root, dir, FunctionPackage)
}

// BuildFunction is BuildBootstrap for the function in package pkg (FunctionPackage or
// ReportFunctionPackage).
func BuildFunction(ctx context.Context, root, dir, pkg string) (string, error) {
	out := filepath.Join(dir, "bootstrap")
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build bootstrap: %w: %s", err, bytes.TrimSpace(b))
	}
	return out, nil
}

// FunctionEnvironment returns the environment of the function under the emulator: the
// local endpoints and dummy credentials (see Environment), the table and topic, and
// nothing from the caller's environment that could reach a real AWS account (profiles,
// credential files, instance metadata). extra (NAME=value) is appended last, so it wins.
func FunctionEnvironment(dynamoDBEndpoint, motoEndpoint, table, topicARN string, extra ...string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"TMPDIR=" + os.TempDir(),
		"AWS_CONFIG_FILE=" + os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_LAMBDA_FUNCTION_NAME=UnauthorizedAccessFunction",
		"AWS_LAMBDA_FUNCTION_TIMEOUT=" + strconv.Itoa(int(invokeTimeout/time.Second)),
		"TABLE_NAME=" + table,
		"TOPIC_ARN=" + topicARN,
	}
	env = append(env, Environment(dynamoDBEndpoint, motoEndpoint)...)
	return append(env, extra...)
}

// StartEmulator starts aws-lambda-rie with bootstrap as the runtime, on free loopback ports,
// with exactly the environment env (see FunctionEnvironment), and waits until it takes
// connections.
func StartEmulator(ctx context.Context, bootstrap string, env []string) (*Emulator, error) {
	bin, err := RIEBinary()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	apiPort, err := freePort()
	if err != nil {
		return nil, err
	}
	if apiPort == port {
		if apiPort, err = freePort(); err != nil {
			return nil, err
		}
	}
	proc, err := startProcessEnv(bin, filepath.Dir(bootstrap), env,
		"--runtime-interface-emulator-address", "127.0.0.1:"+strconv.Itoa(port),
		"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(apiPort),
		bootstrap)
	if err != nil {
		return nil, fmt.Errorf("start the Lambda runtime interface emulator: %w", err)
	}
	e := &Emulator{Endpoint: endpoint(port), proc: proc, http: &http.Client{Timeout: invokeTimeout}}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	err = proc.waitReady(ctx, func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	})
	if err != nil {
		e.Stop()
		return nil, fmt.Errorf("start the Lambda runtime interface emulator: %w", err)
	}
	return e, nil
}

// Invoke delivers one event to the function and returns its response. A handler error
// is returned as a *FunctionError; an emulator or transport failure as another error.
func (e *Emulator) Invoke(ctx context.Context, event []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.Endpoint+invokePath, bytes.NewReader(event))
	if err != nil {
		return nil, fmt.Errorf("invoke function: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("invoke function: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("invoke function: read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("invoke function: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(body))
	}
	if ferr := functionError(resp.Header, body); ferr != nil {
		return nil, ferr
	}
	return body, nil
}

// functionError decodes a handler error from an invocation response, or returns nil. The
// emulator answers a failed invocation with HTTP 200; the body is the runtime's error
// document, {"errorMessage":…,"errorType":…}, and some versions add X-Amz-Function-Error.
//
// A body that is not JSON at all is an error too: a function's response is JSON, and the
// emulator answers a timeout with HTTP 200 and the plain text "Task timed out after N.00
// seconds".
func functionError(h http.Header, body []byte) *FunctionError {
	if !json.Valid(body) {
		msg := string(bytes.TrimSpace(body))
		if strings.HasPrefix(msg, "Task timed out") {
			return &FunctionError{Message: msg, Type: TimeoutErrorType}
		}
		return &FunctionError{Message: msg}
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		if h.Get("X-Amz-Function-Error") != "" {
			return &FunctionError{Message: string(bytes.TrimSpace(body))}
		}
		return nil
	}
	_, hasMessage := doc["errorMessage"]
	_, hasType := doc["errorType"]
	if !hasMessage && !hasType && h.Get("X-Amz-Function-Error") == "" {
		return nil
	}
	var fe FunctionError
	if err := json.Unmarshal(body, &fe); err != nil || (fe.Message == "" && fe.Type == "") {
		fe = FunctionError{Message: string(bytes.TrimSpace(body))}
	}
	return &fe
}

// Logs returns the tail of what the emulator and the function printed (the function's
// JSON log lines and metric records among them).
func (e *Emulator) Logs() string { return e.proc.output() }

// Output returns everything the emulator and the function printed so far, for tests that
// check log lines of several invocations.
func (e *Emulator) Output() string { return e.proc.fullOutput() }

// stopGrace is how long the emulator gets to shut the runtime down on SIGTERM.
const stopGrace = 2 * time.Second

// Stop stops the emulator and the function's runtime: SIGTERM first, so that the emulator
// stops and reaps the runtime itself (a runtime orphaned by a plain kill may stay a zombie
// in containers whose init does not reap), then SIGKILL to the whole process group. It is
// safe to call more than once.
func (e *Emulator) Stop() {
	if !e.proc.exited() {
		_ = e.proc.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-e.proc.done:
		case <-time.After(stopGrace):
		}
	}
	e.proc.stop()
}

// FunctionStack is the whole local path of a delivery: DynamoDB Local with the table,
// moto_server with the topic and its subscribed queue (and SSM, KMS, Kinesis, ...), and
// the function's bootstrap under the runtime interface emulator, pointed at both.
type FunctionStack struct {
	DynamoDB *DynamoDB
	Moto     *Moto
	Emulator *Emulator
	// Report runs the hourly report function under its own emulator, with the same
	// configuration, when StackOptions.ReportBootstrap is set; nil otherwise.
	Report *Emulator
	Table  string
	Topic  string // topic name; Moto.TopicARN(Topic) is its ARN
}

// StackOptions configure StartFunctionStack.
type StackOptions struct {
	// Bootstrap is the function binary (see BuildBootstrap).
	Bootstrap string
	// ReportBootstrap, if set, is the hourly report function's binary (BuildFunction of
	// ReportFunctionPackage), started as FunctionStack.Report.
	ReportBootstrap string
	// Table and Topic name the DynamoDB table and SNS topic ([A-Za-z0-9_-]).
	Table, Topic string
	// Env is extra function configuration (NAME=value), e.g. ALERT_GROUP_BY.
	Env []string
	// Prepare, if set, runs once the services are up and the table and topic exist, before
	// the function starts: it can create what the function reads at start-up (an SSM
	// parameter, say). The variables it returns (NAME=value) are added after Env.
	Prepare func(ctx context.Context, s *FunctionStack) ([]string, error)
}

// StartFunctionStack starts DynamoDB Local and moto_server side by side, creates the
// table, runs opts.Prepare, then starts the emulator with the function pointed at them. On
// error, whatever was started is stopped again.
func StartFunctionStack(ctx context.Context, opts StackOptions) (*FunctionStack, error) {
	s := &FunctionStack{Table: opts.Table, Topic: opts.Topic}
	var dErr, mErr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.DynamoDB, dErr = StartDynamoDB(ctx) }()
	go func() { defer wg.Done(); s.Moto, mErr = StartMoto(ctx, opts.Topic) }()
	wg.Wait()
	if err := errors.Join(dErr, mErr); err != nil {
		s.Stop()
		return nil, err
	}
	if err := s.DynamoDB.CreateTable(ctx, opts.Table); err != nil {
		s.Stop()
		return nil, err
	}
	extra := opts.Env
	if opts.Prepare != nil {
		more, err := opts.Prepare(ctx, s)
		if err != nil {
			s.Stop()
			return nil, fmt.Errorf("prepare the local services: %w", err)
		}
		extra = append(slices.Clip(extra), more...)
	}
	env := FunctionEnvironment(s.DynamoDB.Endpoint, s.Moto.Endpoint, opts.Table, s.Moto.TopicARN(opts.Topic), extra...)
	em, err := StartEmulator(ctx, opts.Bootstrap, env)
	if err != nil {
		s.Stop()
		return nil, err
	}
	s.Emulator = em
	if opts.ReportBootstrap != "" {
		// Within one environment the last value of a name wins: the report function's name.
		s.Report, err = StartEmulator(ctx, opts.ReportBootstrap, append(slices.Clip(env), "AWS_LAMBDA_FUNCTION_NAME=HourlyReportFunction"))
		if err != nil {
			s.Stop()
			return nil, err
		}
	}
	return s, nil
}

// Stop stops every process of the stack; it is safe to call more than once and on a
// partly started stack.
func (s *FunctionStack) Stop() {
	if s.Report != nil {
		s.Report.Stop()
	}
	if s.Emulator != nil {
		s.Emulator.Stop()
	}
	if s.Moto != nil {
		s.Moto.Stop()
	}
	if s.DynamoDB != nil {
		s.DynamoDB.Stop()
	}
}

// functionLogLines returns the lines of logs that the function wrote as JSON (its log and
// metric records), leaving out the emulator's own lines.
func functionLogLines(logs string) []string {
	var out []string
	for _, line := range strings.Split(logs, "\n") {
		if strings.HasPrefix(line, "{") {
			out = append(out, line)
		}
	}
	return out
}

// FunctionLogs returns the JSON lines (log and metric records) the function printed, from
// the tail of the emulator's output.
func (e *Emulator) FunctionLogs() []string { return functionLogLines(e.Logs()) }

// LogMark returns a mark of the emulator's output so far, for FunctionLogsSince.
func (e *Emulator) LogMark() int64 {
	fi, err := e.proc.log.Stat()
	if err != nil {
		return 0
	}
	return fi.Size()
}

// maxLogRead bounds what FunctionLogsSince reads.
const maxLogRead = 4 << 20

// FunctionLogsSince returns the JSON lines (log and metric records) the function printed
// after mark, a LogMark taken before the invocation. The emulator prints its REPORT line
// after the function's own output, and may still be printing when Invoke returns, so this
// waits up to wait for that line: reading at once missed the function's summary line.
func (e *Emulator) FunctionLogsSince(mark int64, wait time.Duration) []string {
	deadline := time.Now().Add(wait)
	for {
		text := e.outputSince(mark)
		if strings.Contains(text, "REPORT RequestId") || time.Now().After(deadline) || e.proc.exited() {
			return functionLogLines(text)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// outputSince returns what the emulator printed after mark, at most maxLogRead bytes.
func (e *Emulator) outputSince(mark int64) string {
	f, err := os.Open(e.proc.log.Name())
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(mark, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(f, maxLogRead))
	return string(b)
}

// ProcessOf finds the running process whose executable is path (a bootstrap the emulator
// started), for reading its /proc entries or signalling it.
func ProcessOf(path string) (int, error) {
	want, err := filepath.EvalSymlinks(path)
	if err != nil {
		return 0, fmt.Errorf("find the process of %s: %w", path, err)
	}
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("find the process of %s: %w", path, err)
	}
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if exe, err := os.Readlink(filepath.Join("/proc", d.Name(), "exe")); err == nil && exe == want {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("find the process of %s: no process runs %s", path, want)
}
