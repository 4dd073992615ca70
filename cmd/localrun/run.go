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
	"strconv"
	"strings"
	"time"

	"github.com/eks-unauthorized-access/detector/infra/local"
	"github.com/eks-unauthorized-access/detector/internal/aggregate"
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
	// burst, when set, is an event delivered after the redelivery that takes a group of
	// event past an escalation threshold (same path rules as event).
	burst string
	// integrations turns on the Security Hub and EventBridge outputs and prints the
	// findings and events after each step.
	integrations bool
}

// run does the whole local run, writing progress and alerts to out and tool installation
// output to errOut.
func run(ctx context.Context, opts options, out, errOut io.Writer) error {
	root, err := local.RepoRoot()
	if err != nil {
		return err
	}
	eventPath, event, err := readEvent(root, opts.event)
	if err != nil {
		return err
	}
	var burstPath string
	var burst []byte
	if opts.burst != "" && !opts.once {
		if burstPath, burst, err = readEvent(root, opts.burst); err != nil {
			return err
		}
	}

	step(out, "Checking the local tools (DynamoDB Local, moto_server, Lambda runtime interface emulator)")
	if err := ensureTools(ctx, root, out, errOut); err != nil {
		return err
	}

	packages := []string{local.FunctionPackage}
	if !opts.once {
		packages = append(packages, local.ReportFunctionPackage)
	}
	step(out, "Building the %s for this machine (%s/%s)", plural(len(packages), "function", "functions"), runtime.GOOS, runtime.GOARCH)
	dir, err := os.MkdirTemp("", "localrun-*")
	if err != nil {
		return fmt.Errorf("create build folder: %w", err)
	}
	defer os.RemoveAll(dir)
	bootstraps := make([]string, len(packages))
	for i, pkg := range packages {
		sub := filepath.Join(dir, strconv.Itoa(i))
		if err := os.Mkdir(sub, 0o755); err != nil {
			return fmt.Errorf("create build folder: %w", err)
		}
		if bootstraps[i], err = local.BuildFunction(ctx, root, sub, pkg); err != nil {
			return err
		}
	}

	step(out, "Starting DynamoDB Local, moto_server and the %s on free loopback ports", plural(len(packages), "emulator", "emulators"))
	stackOpts := local.StackOptions{Bootstrap: bootstraps[0], Table: table, Topic: topic}
	if opts.integrations {
		stackOpts.Env, stackOpts.Prepare = integrationsEnv(), prepareIntegrations
	}
	if len(bootstraps) > 1 {
		stackOpts.ReportBootstrap = bootstraps[1]
	}
	stack, err := local.StartFunctionStack(ctx, stackOpts)
	if err != nil {
		return err
	}
	defer stack.Stop()
	fmt.Fprintf(out, "    DynamoDB Local  %s  table %s\n", stack.DynamoDB.Endpoint, table)
	fmt.Fprintf(out, "    moto SNS/SQS    %s  topic %s, queue %s subscribed to it\n", stack.Moto.Endpoint, topic, local.QueueName(topic))
	fmt.Fprintf(out, "    Lambda (RIE)    %s  running %s\n", stack.Emulator.Endpoint, local.FunctionPackage)
	if stack.Report != nil {
		fmt.Fprintf(out, "    Lambda (RIE)    %s  running %s\n", stack.Report.Endpoint, local.ReportFunctionPackage)
	}
	if opts.integrations {
		fmt.Fprintf(out, "    moto outputs    %s  Security Hub; EventBridge bus %s, rule %s to queue %s\n", stack.Moto.Endpoint, eventBus, eventRule, local.QueueName(eventRule))
	}
	// shown prints the findings and events of the step just done (nothing when the
	// integrations are off) and returns how many findings are new and how many events.
	var outs outputs
	shown := func() (int, int, error) {
		if !opts.integrations {
			return 0, 0, nil
		}
		return outs.print(ctx, stack.Moto, out)
	}

	rel := relative(root, eventPath)
	if opts.once {
		step(out, "Delivering %s", rel)
		notes, err := deliver(ctx, stack, stack.Emulator, event, out, true)
		if err != nil {
			return err
		}
		if _, _, err := shown(); err != nil {
			return err
		}
		fmt.Fprintf(out, "invoke: %d %s published\n", len(notes), plural(len(notes), "alert", "alerts"))
		return nil
	}

	step(out, "Delivery 1: %s", rel)
	first, err := deliver(ctx, stack, stack.Emulator, event, out, false)
	if err != nil {
		return err
	}
	if _, _, err := shown(); err != nil {
		return err
	}
	step(out, "Delivery 2: the same event again (Lambda delivers at least once)")
	second, err := deliver(ctx, stack, stack.Emulator, event, out, false)
	if err != nil {
		return err
	}
	againFindings, againEvents, err := shown()
	if err != nil {
		return err
	}
	last := second
	if burst != nil {
		step(out, "Delivery 3: %s (more attempts in the first window: one update per threshold crossed)", relative(root, burstPath))
		if last, err = deliver(ctx, stack, stack.Emulator, burst, out, false); err != nil {
			return err
		}
		if _, _, err := shown(); err != nil {
			return err
		}
	}
	if len(first) > 0 {
		// The schedule fires 10 minutes past the hour and reports the hour that ended.
		window := windowOf(first[0])
		fired := window.Add(aggregate.WindowSize + 10*time.Minute).Format(time.RFC3339)
		input := `{"scheduledTime":"` + fired + `"}`
		step(out, "Hourly report: %s fired as the schedule does, input %s", local.ReportFunctionPackage, input)
		if last, err = deliver(ctx, stack, stack.Report, []byte(input), out, false); err != nil {
			return err
		}
		if _, _, err := shown(); err != nil {
			return err
		}
	}
	if len(last) == 0 { // deliver ends its messages with an empty line
		fmt.Fprintln(out)
	}
	if opts.integrations {
		fmt.Fprintf(out, "outputs: %d Security Hub %s, %d EventBridge %s; the redelivery added %d %s and %d %s\n",
			len(outs.seen), plural(len(outs.seen), "finding", "findings"), outs.events, plural(outs.events, "event", "events"),
			againFindings, plural(againFindings, "finding", "findings"), againEvents, plural(againEvents, "event", "events"))
	}
	fmt.Fprintf(out, "run: %d alerts published on first delivery, %d on redelivery\n", len(first), len(second))
	return nil
}

// readEvent reads the event file at path, relative to the working directory or else to
// the repository root, and returns the path it read.
func readEvent(root, path string) (string, []byte, error) {
	if !filepath.IsAbs(path) {
		if _, err := os.Stat(path); err != nil {
			path = filepath.Join(root, path)
		}
	}
	event, err := os.ReadFile(path)
	if err != nil {
		return "", nil, fmt.Errorf("read event: %w", err)
	}
	return path, event, nil
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

// deliver invokes the function run by em with event, then reads and prints the messages
// it published, ordered by window. A handler error is returned as a *local.FunctionError.
// With showResponse, the function's response and its log lines of this invocation are
// printed too.
func deliver(ctx context.Context, stack *local.FunctionStack, em *local.Emulator, event []byte, out io.Writer, showResponse bool) ([]local.Notification, error) {
	mark := em.LogMark()
	start := time.Now()
	resp, err := em.Invoke(ctx, event)
	elapsed := time.Since(start).Round(time.Millisecond)
	if showResponse {
		printFunctionLogs(out, em.FunctionLogsSince(mark, 5*time.Second))
	}
	if err != nil {
		return nil, err
	}
	notes, err := stack.Moto.Drain(ctx, stack.Topic)
	if err != nil {
		return nil, err
	}
	sortByWindow(notes)
	noun := "alert"
	if len(notes) > 0 && kindOf(notes[0]) == alert.KindReport {
		noun = "report part"
	}
	fmt.Fprintf(out, "    the function returned %s in %s; %d %s on the queue\n", strings.TrimSpace(string(resp)), elapsed, len(notes), plural(len(notes), noun, noun+"s"))
	for i, n := range notes {
		fmt.Fprintln(out)
		if kindOf(n) == alert.KindReport {
			printReport(out, n)
		} else {
			printAlert(out, i+1, n)
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(out)
	}
	return notes, nil
}

// kindOf is the alertKind of a notification ("" when it has none).
func kindOf(n local.Notification) alert.Kind {
	return alert.Kind(n.MessageAttributes["alertKind"].Value)
}

// windowOf is the start of the window of a notification's structured message.
func windowOf(n local.Notification) time.Time {
	var m struct {
		Window alert.Window `json:"window"`
	}
	_ = json.Unmarshal([]byte(n.Message), &m) // not structured: zero time, sorted first
	return m.Window.Start
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

// printAlert prints one alert or update as a subscriber receives it: the SNS subject and
// a summary of the structured JSON alert (the "sqs" entry of the message).
func printAlert(out io.Writer, i int, n local.Notification) {
	label := "Alert"
	if kindOf(n) == alert.KindEscalation {
		label = "Update"
	}
	fmt.Fprintf(out, "  %s %d: %s\n", label, i, n.Subject)
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
	if e := a.Escalation; e != nil {
		row("update", "attempts %d -> %d (threshold %d)", e.From, e.To, e.Threshold)
		for _, l := range []struct {
			name string
			list []string
		}{{"new IPs", e.NewSrcIPs}, {"new agents", e.NewUserAgents}, {"new targets", e.NewResources}} {
			if len(l.list) > 0 {
				row(l.name, "%s", strings.Join(l.list, ", "))
			}
		}
		return // the aggregates were in the first alert; the update says what grew
	}
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

// printReport prints one report part as a subscriber receives it: the SNS subject, the
// totals and every row of the structured report (the "sqs" entry of the message).
func printReport(out io.Writer, n local.Notification) {
	var r alert.Report
	if err := json.Unmarshal([]byte(n.Message), &r); err != nil || r.SchemaVersion == "" {
		fmt.Fprintf(out, "  Report: %s\n    (not a structured report) %s\n", n.Subject, cut(n.Message, 500))
		return
	}
	fmt.Fprintf(out, "  Report part %d of %d: %s\n", r.Part, r.Parts, n.Subject)
	row := func(name, format string, args ...any) {
		fmt.Fprintf(out, "    %-11s %s\n", name, fmt.Sprintf(format, args...))
	}
	row("window", "%s to %s UTC", r.Window.Start.Format("2006-01-02 15:04"), r.Window.End.Format("15:04"))
	row("total", "%d attempts in %d rows", r.Attempts, r.Rows)
	for _, c := range r.Clusters {
		row("cluster", "%s (account %s): %d attempts in %d rows", c.Cluster, c.Account, c.Attempts, c.Rows)
	}
	if len(r.RowsInPart) > 0 {
		row("risk", "every row: score %d, risk object %s, threat object %s", r.RowsInPart[0].RiskScore, r.RowsInPart[0].RiskObject.Field, r.RowsInPart[0].ThreatObject.Field)
	}
	fmt.Fprintf(out, "    %5s  %-8s %-14s %-7s %-20s %-12s %s\n", "count", "user", "src_ip", "verb", "resource", "namespace", "time")
	for _, x := range r.RowsInPart {
		fmt.Fprintf(out, "    %5d  %-8s %-14s %-7s %-20s %-12s %s\n", x.Count, x.User, x.SrcIP, x.Verb, x.Resource, x.Namespace, x.RequestReceivedTimestamp)
	}
}

// sortByWindow orders notifications by the window of their alert, then by subject, so
// that the output does not depend on the order of concurrent publishes.
func sortByWindow(notes []local.Notification) {
	slices.SortStableFunc(notes, func(x, y local.Notification) int {
		if c := windowOf(x).Compare(windowOf(y)); c != 0 {
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
