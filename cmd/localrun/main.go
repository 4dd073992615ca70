// Command localrun runs the real Lambda functions on this machine, without Docker and
// without an AWS account: it builds the bootstraps of the function and of the hourly
// report function, starts DynamoDB Local, moto_server (SNS and SQS) and the AWS Lambda
// Runtime Interface Emulator (one per function) on free loopback ports, delivers a sample
// CloudWatch Logs event twice, then (with the default event) a burst that makes one alert
// group escalate, fires the report function as the schedule would for the first window,
// and prints what a subscriber of the topic receives after each step.
//
//	go run ./cmd/localrun                                   # make run
//	go run ./cmd/localrun -event events/<file>.json -once   # make invoke EVENT=...
//	go run ./cmd/localrun -integrations                     # make run INTEGRATIONS=on
//
// Missing tools are installed first with infra/local/install.sh. Every process started is
// stopped before the command exits, also on failure or Ctrl-C.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// defaultEvent is delivered when -event is not given: denied creates by an IAM user in
// two hourly windows, so it yields two alerts.
const defaultEvent = "events/cloudwatch-iam-user.json"

// defaultBurst is delivered after defaultEvent's redelivery: the same user's further
// attempts in the first window, which take it to 10 (the first escalation threshold).
const defaultBurst = "events/cloudwatch-iam-user-burst.json"

func main() {
	event := flag.String("event", defaultEvent, "Lambda event (JSON file) to deliver")
	once := flag.Bool("once", false, "deliver the event once and print the function's response, instead of delivering it twice")
	integrations := flag.Bool("integrations", os.Getenv("INTEGRATIONS") == "on",
		"turn on the Security Hub and EventBridge outputs and print each finding and event (default: on when INTEGRATIONS=on)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	opts := optionsFor(*event, *once)
	opts.integrations = *integrations
	err := run(ctx, opts, os.Stdout, os.Stderr)
	interrupted := ctx.Err() != nil
	stop()
	if err != nil {
		if interrupted {
			fmt.Fprintln(os.Stderr, "localrun: interrupted; every process started was stopped")
		} else {
			fmt.Fprintln(os.Stderr, "localrun:", err)
		}
		os.Exit(1)
	}
}

// optionsFor returns the options of a run delivering event: the default event is
// followed by its burst.
func optionsFor(event string, once bool) options {
	opts := options{event: event, once: once}
	if event == defaultEvent {
		opts.burst = defaultBurst
	}
	return opts
}
