package local

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestFunctionError(t *testing.T) {
	withHeader := http.Header{"X-Amz-Function-Error": {"Unhandled"}}
	tests := []struct {
		name   string
		header http.Header
		body   string
		want   *FunctionError
	}{
		{name: "null response", body: `null`},
		{name: "object response", body: `{"ok":true}`},
		{name: "handler error", body: `{"errorMessage":"process event: bad","errorType":"wrapError"}`,
			want: &FunctionError{Message: "process event: bad", Type: "wrapError"}},
		{name: "error without type", body: `{"errorMessage":"boom"}`, want: &FunctionError{Message: "boom"}},
		{name: "header, other body", header: withHeader, body: `"Task timed out"`,
			want: &FunctionError{Message: `"Task timed out"`}},
		{name: "header, not JSON", header: withHeader, body: `crashed`, want: &FunctionError{Message: "crashed"}},
		// What the emulator answers, with HTTP 200 and no header, when the function times out.
		{name: "timeout", body: "Task timed out after 1.00 seconds",
			want: &FunctionError{Message: "Task timed out after 1.00 seconds", Type: TimeoutErrorType}},
		{name: "not JSON", body: "<html>", want: &FunctionError{Message: "<html>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.header
			if h == nil {
				h = http.Header{}
			}
			got := functionError(h, []byte(tt.body))
			switch {
			case tt.want == nil && got != nil:
				t.Fatalf("functionError = %+v, want nil", got)
			case tt.want != nil && got == nil:
				t.Fatalf("functionError = nil, want %+v", tt.want)
			case tt.want != nil && (got.Message != tt.want.Message || got.Type != tt.want.Type):
				t.Fatalf("functionError = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestFunctionLogLines(t *testing.T) {
	logs := "25 Nov 2026 20:30:42,174 [INFO] (rapid) exec 'bootstrap'\n" +
		`{"level":"INFO","msg":"invocation"}` + "\nSTART RequestId: 1\n" + `{"_aws":{}}` + "\n"
	got := functionLogLines(logs)
	if len(got) != 2 || got[0] != `{"level":"INFO","msg":"invocation"}` || got[1] != `{"_aws":{}}` {
		t.Fatalf("functionLogLines = %q", got)
	}
}

// TestEmulator runs the real bootstrap under the emulator. A control message needs neither
// DynamoDB nor SNS, so the endpoints point nowhere; an undecodable event must come back as
// a *FunctionError.
func TestEmulator(t *testing.T) {
	root, bootstrap := emulatorBootstrap(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env := FunctionEnvironment("http://127.0.0.1:9", "http://127.0.0.1:9", "table",
		"arn:aws:sns:"+Region+":"+AccountID+":topic")
	em, err := StartEmulator(ctx, bootstrap, env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(em.Stop)

	control, err := os.ReadFile(filepath.Join(root, "events", "cloudwatch-control-message.json"))
	if err != nil {
		t.Fatal(err)
	}
	mark := em.LogMark()
	resp, err := em.Invoke(ctx, control)
	if err != nil {
		t.Fatalf("Invoke(control message): %v\n%s", err, em.Logs())
	}
	if string(resp) != "null" {
		t.Errorf("Invoke(control message) = %s, want null", resp)
	}
	// The first invocation's summary line is there, whole, however long the start-up
	// output before it (make invoke prints it).
	summaries := 0
	for _, l := range em.FunctionLogsSince(mark, 5*time.Second) {
		if strings.Contains(l, `"invocation"`) && strings.Contains(l, `"controlMessages":1`) {
			summaries++
		}
	}
	if summaries != 1 {
		t.Errorf("first invocation: %d summary lines in the function's logs, want 1:\n%s", summaries, em.outputSince(mark))
	}

	_, err = em.Invoke(ctx, []byte(`{"awslogs":{"data":"not base64!"}}`))
	var fe *FunctionError
	if !errors.As(err, &fe) || fe.Message == "" {
		t.Fatalf("Invoke(bad batch) error = %v, want a *FunctionError with a message", err)
	}

	pid := em.proc.cmd.Process.Pid
	em.Stop()
	em.Stop() // idempotent
	if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process group %d still exists after Stop (kill 0: %v)", pid, err)
	}
}

// TestFreePortNeverTwice: ports handed out concurrently are all distinct.
func TestFreePortNeverTwice(t *testing.T) {
	const n = 200
	ports := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := freePort()
			if err != nil {
				t.Error(err)
				return
			}
			ports <- p
		}()
	}
	wg.Wait()
	close(ports)
	seen := map[int]bool{}
	for p := range ports {
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
	if len(seen) != n {
		t.Fatalf("%d ports, want %d", len(seen), n)
	}
}

// TestEmulatorTimeout: when the function runs past its timeout (DynamoDB here never
// answers), the emulator answers HTTP 200 with "Task timed out"; Invoke reports it as a
// *FunctionError, so make invoke and the tests never take it for success.
func TestEmulatorTimeout(t *testing.T) {
	root, bootstrap := emulatorBootstrap(t)
	// A server that accepts connections and never answers.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	env := FunctionEnvironment("http://"+silent.Addr().String(), "http://127.0.0.1:9", "table",
		"arn:aws:sns:"+Region+":"+AccountID+":topic", "AWS_LAMBDA_FUNCTION_TIMEOUT=1")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	em, err := StartEmulator(ctx, bootstrap, env)
	if err != nil {
		t.Fatal(err)
	}
	defer em.Stop()
	event, err := os.ReadFile(filepath.Join(root, "events", "cloudwatch-iam-user.json"))
	if err != nil {
		t.Fatal(err)
	}
	// The function's context ends at its deadline, which the emulator may compute a little
	// before its own timer starts: a function waiting on the network can then answer its
	// own error first. Stopping the process (SIGSTOP) makes it hang as a stuck function
	// does, whatever the load of the machine.
	stopped := make(chan error, 1)
	go func() {
		for start := time.Now(); time.Since(start) < 30*time.Second; time.Sleep(5 * time.Millisecond) {
			if pid, err := ProcessOf(bootstrap); err == nil {
				stopped <- syscall.Kill(pid, syscall.SIGSTOP)
				return
			}
		}
		stopped <- errors.New("the bootstrap process did not start")
	}()
	resp, err := em.Invoke(ctx, event)
	if serr := <-stopped; serr != nil {
		t.Fatalf("stop the bootstrap: %v", serr)
	}
	var fe *FunctionError
	if !errors.As(err, &fe) || fe.Type != TimeoutErrorType || !strings.Contains(fe.Message, "Task timed out") {
		t.Fatalf("Invoke past the timeout = %q, %v; want a timeout *FunctionError\n%s", resp, err, em.Logs())
	}
}

// emulatorBootstrap checks that the emulator is installed (full tier only) and builds the
// bootstrap; it returns the repository root and the bootstrap's path.
func emulatorBootstrap(t *testing.T) (root, bootstrap string) {
	t.Helper()
	MustHaveServices(t)
	if _, err := RIEBinary(); err != nil {
		handleStartError(t, err)
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	// The build has its own, longer bound: on a cold build cache, with the other
	// packages' tests compiling beside it on two cores, it has taken over two minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bootstrap, err = BuildBootstrap(ctx, root, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return root, bootstrap
}
