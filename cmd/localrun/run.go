package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/eks-unauthorized-access/detector/infra/local"
	"github.com/eks-unauthorized-access/detector/internal/alert"
)

// Names of the local resources.
const (
	table = "unauthorized-access"
	topic = "unauthorized-access-alerts"
)

// options are the command-line choices.
type options struct {
	event string // path of the event file, relative to the repository root or absolute
	once  bool
}

// run does the whole local run, writing progress and alerts to out and tool installation
// output to errOut.
func run(ctx context.Context, opts options, out, errOut io.Writer) error {
	root, err := local.RepoRoot()
	if err != nil {
		return err
	}
	eventPath := opts.event
	if !filepath.IsAbs(eventPath) {
		if _, err := os.Stat(eventPath); err != nil {
			eventPath = filepath.Join(root, eventPath)
		}
	}
	event, err := os.ReadFile(eventPath)
	if err != nil {
		return fmt.Errorf("read event: %w", err)
	}

	step(out, "Checking the local tools (DynamoDB Local, moto_server, Lambda runtime interface emulator)")
	if err := ensureTools(ctx, root, out, errOut); err != nil {
		return err
	}

	step(out, "Building the function for this machine (%s/%s)", runtime.GOOS, runtime.GOARCH)
	dir, err := os.MkdirTemp("", "localrun-*")
	if err != nil {
		return fmt.Errorf("create build folder: %w", err)
	}
	defer os.RemoveAll(dir)
	bootstrap, err := local.BuildBootstrap(ctx, root, dir)
	if err != nil {
		return err
	}

	step(out, "Starting DynamoDB Local, moto_server and the emulator on free loopback ports")
	stack, err := local.StartFunctionStack(ctx, local.StackOptions{Bootstrap: bootstrap, Table: table, Topic: topic})
	if err != nil {
		return err
	}
	defer stack.Stop()
	fmt.Fprintf(out, "    DynamoDB Local  %s  table %s\n", stack.DynamoDB.Endpoint, table)
	fmt.Fprintf(out, "    moto SNS/SQS    %s  topic %s, queue %s subscribed to it\n", stack.Moto.Endpoint, topic, local.QueueName(topic))
	fmt.Fprintf(out, "    Lambda (RIE)    %s  running %s\n", stack.Emulator.Endpoint, local.FunctionPackage)

	rel := relative(root, eventPath)
	if opts.once {
		step(out, "Delivering %s", rel)
		n, err := deliver(ctx, stack, event, out, true)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "invoke: %d %s published\n", n, plural(n, "alert", "alerts"))
		return nil
	}

	step(out, "Delivery 1: %s", rel)
	first, err := deliver(ctx, stack, event, out, false)
	if err != nil {
		return err
	}
	step(out, "Delivery 2: the same event again (Lambda delivers at least once)")
	second, err := deliver(ctx, stack, event, out, false)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nrun: %d alerts published on first delivery, %d on redelivery\n", first, second)
	return nil
}

// step prints the heading of one step.
func step(out io.Writer, format string, args ...any) {
	fmt.Fprintf(out, "==> "+format+"\n", args...)
}

// ensureTools installs the local tools with infra/local/install.sh when one is missing.
func ensureTools(ctx context.Context, root string, out, errOut io.Writer) error {
	missing := missingTools()
	if missing == nil {
		fmt.Fprintln(out, "    all installed")
		return nil
	}
	fmt.Fprintf(out, "    %v\n    installing with infra/local/install.sh (first run only, a few minutes)\n", missing)
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "infra", "local", "install.sh"))
	cmd.Dir = root
	cmd.Stdout = errOut
	cmd.Stderr = errOut
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("install the local tools (bash infra/local/install.sh): %w", err)
	}
	if missing := missingTools(); missing != nil {
		return fmt.Errorf("still missing after infra/local/install.sh: %w", missing)
	}
	return nil
}

// missingTools returns an error naming every local tool that is not installed, or nil.
func missingTools() error {
	var errs []error
	if _, _, err := local.DynamoDBTools(); err != nil {
		errs = append(errs, err)
	}
	if _, err := local.MotoBinary(); err != nil {
		errs = append(errs, err)
	}
	if _, err := local.RIEBinary(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// deliver invokes the function with event, then reads and prints the alerts it published.
// A handler error is returned as a *local.FunctionError. With showResponse, the function's response and
// its log lines of this invocation are printed too.
func deliver(ctx context.Context, stack *local.FunctionStack, event []byte, out io.Writer, showResponse bool) (int, error) {
	mark := stack.Emulator.LogMark()
	start := time.Now()
	resp, err := stack.Emulator.Invoke(ctx, event)
	elapsed := time.Since(start).Round(time.Millisecond)
	if showResponse {
		printFunctionLogs(out, stack.Emulator.FunctionLogsSince(mark, 5*time.Second))
	}
	if err != nil {
		return 0, err
	}
	notes, err := stack.Moto.Drain(ctx, stack.Topic)
	if err != nil {
		return 0, err
	}
	sortByWindow(notes)
	fmt.Fprintf(out, "    the function returned %s in %s; %d %s on the queue\n", strings.TrimSpace(string(resp)), elapsed, len(notes), plural(len(notes), "alert", "alerts"))
	for i, n := range notes {
		fmt.Fprintln(out)
		printAlert(out, i+1, n)
	}
	if len(notes) > 0 {
		fmt.Fprintln(out)
	}
	return len(notes), nil
}

// printFunctionLogs prints the function's log lines of one invocation (metric records left
// out).
func printFunctionLogs(out io.Writer, lines []string) {
	for _, l := range lines {
		if strings.Contains(l, `"_aws"`) {
			continue
		}
		fmt.Fprintf(out, "    function log: %s\n", l)
	}
}

// printAlert prints one alert as a subscriber receives it: the SNS subject and a summary
// of the structured JSON alert (the "sqs" entry of the message).
func printAlert(out io.Writer, i int, n local.Notification) {
	fmt.Fprintf(out, "  Alert %d: %s\n", i, n.Subject)
	var a alert.Alert
	if err := json.Unmarshal([]byte(n.Message), &a); err != nil || a.SchemaVersion == "" {
		fmt.Fprintf(out, "    (not a structured alert) %s\n", cut(n.Message, 500))
		return
	}
	row := func(name, format string, args ...any) {
		fmt.Fprintf(out, "    %-11s %s\n", name, fmt.Sprintf(format, args...))
	}
	row("user", "%s (%s)", a.RiskObject.Value, a.UserKind)
	for _, id := range a.Identities {
		switch id.Kind {
		case alert.IdentityServiceAccount:
			row("identity", "pod %s on node %s", id.PodName, id.NodeName)
		default:
			row("identity", "%s, session %s (chosen by the caller), access key %s", id.CanonicalARN, id.SessionName, id.AccessKeyID)
			if id.CloudTrailURL != "" {
				row("cloudtrail", "%s", id.CloudTrailURL)
			}
		}
	}
	row("cluster", "%s (account %s, %s)", a.Source.Cluster, a.Source.Account, a.Source.Region)
	row("window", "%s to %s UTC", a.Window.Start.Format("2006-01-02 15:04"), a.Window.End.Format("15:04"))
	row("attempts", "%d in %d %s, %d distinct %s", a.Attempts, a.AggregatesTotal, plural(a.AggregatesTotal, "aggregate", "aggregates"),
		a.Requests, plural(int(a.Requests), "request", "requests"))
	ips := make([]string, 0, len(a.ThreatObjects))
	for _, t := range a.ThreatObjects {
		ips = append(ips, t.Value+" ("+t.Origin+", "+t.Class+")")
	}
	row("source IPs", "%s", strings.Join(ips, ", "))
	row("risk", "%s, score %d; MITRE %s %s (%s)", a.Severity, a.RiskScore, a.MITRE.TechniqueID, a.MITRE.Technique, a.MITRE.Tactic)
	for _, ag := range a.Aggregates {
		f := ag.Fields
		where := "in namespace " + f.Namespace
		if f.Namespace == "" || f.Namespace == "0" { // "0" is the Splunk fillnull value
			where = "cluster-wide"
		}
		row("denied", "%dx %s %s %s (HTTP %s, stage %s)", ag.Count, f.Verb, f.Resource, where, f.Code, f.Stage)
	}
	if a.SuppressExample != "" {
		row("suppress", "SUPPRESSIONS='%s'", a.SuppressExample)
	}
}

// sortByWindow orders notifications by the window of their alert, then by subject, so
// that the output does not depend on the order of concurrent publishes.
func sortByWindow(notes []local.Notification) {
	window := func(n local.Notification) time.Time {
		var a alert.Alert
		_ = json.Unmarshal([]byte(n.Message), &a) // not an alert: zero time, sorted first
		return a.Window.Start
	}
	slices.SortStableFunc(notes, func(x, y local.Notification) int {
		if c := window(x).Compare(window(y)); c != 0 {
			return c
		}
		return strings.Compare(x.Subject, y.Subject)
	})
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// relative returns path relative to root when it is inside it.
func relative(root, path string) string {
	if r, err := filepath.Rel(root, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}
