// Command unauthorized-access is the Lambda function: it reads EKS audit logs delivered by
// CloudWatch Logs subscriptions (or Kinesis), detects forbidden create requests, counts
// them in DynamoDB and publishes one risk alert per alert group and hour through SNS.
//
// It only wires: the Go memory limit from the function's memory, configuration from the
// environment, AWS clients, the handler.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/securityhub"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/eks-unauthorized-access/detector/internal/alert"
	"github.com/eks-unauthorized-access/detector/internal/config"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/eventbus"
	"github.com/eks-unauthorized-access/detector/internal/finding"
	"github.com/eks-unauthorized-access/detector/internal/handler"
	"github.com/eks-unauthorized-access/detector/internal/memlimit"
	"github.com/eks-unauthorized-access/detector/internal/notify"
	"github.com/eks-unauthorized-access/detector/internal/pipeline"
	"github.com/eks-unauthorized-access/detector/internal/store"
	"github.com/eks-unauthorized-access/detector/internal/suppress"
	"github.com/eks-unauthorized-access/detector/internal/version"
)

func main() {
	if _, err := memlimit.Apply(os.Getenv); err != nil {
		// Lambda sets the variable; without a limit the function still runs.
		fmt.Fprintln(os.Stderr, err)
	}
	h, err := setup(context.Background())
	if err != nil {
		// Before the first invocation: Lambda reports the init error.
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	lambda.Start(h)
}

// setup builds the handler from the environment.
func setup(ctx context.Context) (*handler.Handler, error) {
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return nil, err
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	var params suppress.SSMGetter
	if cfg.SuppressionsParameter != "" {
		// The SSM client only when a parameter is configured: it costs start-up time.
		params = ssm.NewFromConfig(awsCfg)
	}
	suppressions, err := suppress.NewReloader(ctx, params, cfg.Suppressions, cfg.SuppressionsParameter,
		suppress.ReloadOptions{Interval: cfg.SuppressionsReloadInterval})
	if err != nil {
		return nil, fmt.Errorf("load suppressions: %w", err)
	}
	opts := pipeline.Options{
		Rule:                 detect.UnauthorizedAccess,
		Mode:                 cfg.MatchMode,
		GroupBy:              cfg.AlertGroupBy,
		Region:               cfg.Region,
		MaxDecompressedBytes: cfg.MaxDecompressedBytes,
		Sources:              cfg.Sources,
		ThinAfter:            cfg.MaxRowsPerGroup,
	}
	if suppressions.Filter().Len() > 0 || cfg.SuppressionsParameter != "" {
		opts.Suppressor = suppressions
	}
	logger := handler.NewLogger(os.Stdout, cfg.LogLevel)
	logger.Info("start", "version", version.Version) // which release runs, once per cold start
	if cfg.SuppressionsParameter != "" || len(cfg.Suppressions) > 0 {
		// Names only: expressions may be secret (a SecureString parameter).
		logger.Info("suppressions loaded", "parameterVersion", suppressions.Version(), "entries", suppressions.Filter().Names())
	}
	st := store.New(dynamodb.NewFromConfig(awsCfg), store.Options{
		Table:           cfg.TableName,
		Retention:       cfg.Retention,
		Concurrency:     cfg.WriteConcurrency,
		MaxRowsPerGroup: cfg.MaxRowsPerGroup,
	})
	var outputs []handler.Output
	if cfg.SecurityHub {
		t := finding.Target{Partition: finding.PartitionOf(cfg.Region), Region: cfg.Region, Account: cfg.AccountID}
		outputs = append(outputs, finding.New(securityhub.NewFromConfig(awsCfg), t))
	}
	if cfg.EventBusName != "" {
		outputs = append(outputs, eventbus.New(eventbridge.NewFromConfig(awsCfg), cfg.EventBusName))
	}
	return handler.New(handler.Options{
		Processor:    pipeline.New(opts),
		Outputs:      outputs,
		OutputClaims: st,
		Store:        st,
		Lifecycle:    st,
		EscalateAt:   cfg.EscalateAt,
		Flood:        st,
		MaxGroups:    cfg.MaxGroups,
		Publisher:    notify.New(sns.NewFromConfig(awsCfg), cfg.TopicARN),
		Rule:         detect.UnauthorizedAccess,
		Alert:        alert.Options{Region: cfg.Region, MaxAggregates: cfg.MaxAggregatesPerAlert},
		ClaimLease:   cfg.ClaimLease,
		Concurrency:  cfg.WriteConcurrency,
		Logger:       logger,
		Metrics:      os.Stdout,
		FunctionName: os.Getenv("AWS_LAMBDA_FUNCTION_NAME"),
		Suppressions: suppressions,
	}), nil
}
