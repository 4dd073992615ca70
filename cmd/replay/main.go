// Command replay runs the detection over saved inputs and prints what the seed's Splunk
// search would report, or the aggregates as the Lambda function stores them.
//
//	go run ./cmd/replay [--format splunk|json|alerts|report] [--match-mode seed|authz|broad]
//	                    [--group-by user|user,src_ip|aggregate] [FILE...]
//
// Without files it reads standard input. Every input line is one JSON document, recognised
// by its top-level keys: a CloudWatch Logs subscription Lambda event ("awslogs"), a Kinesis
// event ("Records"), a decoded subscription message ("messageType", DATA_MESSAGE or
// CONTROL_MESSAGE), or otherwise a raw audit event. A line that cannot be decoded is
// reported on standard error as FILE:LINE: reason and the exit status is 1 at the end; bad
// log events inside a good message are skipped and counted in the summary printed on
// standard error.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
