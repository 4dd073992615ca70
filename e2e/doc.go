// Package e2e holds the end-to-end test: the real bootstrap under the AWS Lambda Runtime
// Interface Emulator, writing to DynamoDB Local and publishing to moto, exactly the path
// of `make run`. It has no code of its own; see e2e_test.go.
package e2e
