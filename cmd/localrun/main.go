// Command localrun runs the real Lambda function on this machine, without Docker and
// without an AWS account: it builds the bootstrap, starts DynamoDB Local, moto_server (SNS
// and SQS) and the AWS Lambda Runtime Interface Emulator on free loopback ports, delivers a
// sample CloudWatch Logs event twice and prints the alerts a subscriber of the topic
// receives.
//
//	go run ./cmd/localrun                                   # make run
//	go run ./cmd/localrun -event events/<file>.json -once   # make invoke EVENT=...
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

func main() {
	event := flag.String("event", defaultEvent, "Lambda event (JSON file) to deliver")
	once := flag.Bool("once", false, "deliver the event once and print the function's response, instead of delivering it twice")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, options{event: *event, once: *once}, os.Stdout, os.Stderr)
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
