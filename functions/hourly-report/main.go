// Command hourly-report is the Lambda function run by the hourly schedule: it publishes,
// for the window that just closed, the seed search's result table (one report, split into
// numbered parts when larger than one SNS message), exactly once per window and part.
//
// It only wires: configuration from the environment, AWS clients, the handler.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/eks-unauthorized-access/detector/internal/config"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/eventbus"
	"github.com/eks-unauthorized-access/detector/internal/handler"
	"github.com/eks-unauthorized-access/detector/internal/notify"
	"github.com/eks-unauthorized-access/detector/internal/store"
)

func main() {
	h, err := setup(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	lambda.StartHandler(reportHandler{h})
}

// reportHandler adapts the handler's report entry point to lambda.Handler.
type reportHandler struct{ h *handler.Handler }

func (r reportHandler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	return r.h.InvokeReport(ctx, payload)
}

func setup(ctx context.Context) (*handler.Handler, error) {
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return nil, err
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	st := store.New(dynamodb.NewFromConfig(awsCfg), store.Options{Table: cfg.TableName, Retention: cfg.Retention})
	var outputs []handler.Output
	if cfg.EventBusName != "" {
		// Report parts go to EventBridge too; Security Hub takes alert groups only.
		outputs = append(outputs, eventbus.New(eventbridge.NewFromConfig(awsCfg), cfg.EventBusName))
	}
	return handler.New(handler.Options{
		Outputs:      outputs,
		OutputClaims: st,
		Store:        st,
		Lifecycle:    st,
		Publisher:    notify.New(sns.NewFromConfig(awsCfg), cfg.TopicARN),
		Rule:         detect.UnauthorizedAccess,
		ClaimLease:   cfg.ClaimLease,
		Logger:       handler.NewLogger(os.Stdout, cfg.LogLevel),
		Report:       handler.ReportOptions{Reports: st, Heartbeat: cfg.ReportHeartbeat},
	}), nil
}
