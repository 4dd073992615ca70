# EKS unauthorized-access detector. `make` lists the targets.
SHELL := /bin/bash -o pipefail
.DEFAULT_GOAL := help

GO        ?= go
TOOLS_DIR := $(CURDIR)/.tools
TOOLS_BIN := $(TOOLS_DIR)/bin
GOLANGCI  := $(TOOLS_BIN)/golangci-lint
GOLANGCI_VERSION := v2.15.0
FUNCTION  := ./functions/unauthorized-access
LDFLAGS   := -s -w
FUZZTIME  ?= 30s
EVENT     ?= events/cloudwatch-iam-user.json

export PATH := $(TOOLS_BIN):$(PATH)

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-32s\033[0m %s\n", $$1, $$2}'

.PHONY: tools
tools: ## Install the local stack (DynamoDB Local, Lambda RIE) into git-ignored folders; check for moto_server
	bash infra/local/install.sh

.PHONY: build
build: ## Build the Lambda bootstrap for linux/arm64 into bin/bootstrap
	mkdir -p bin
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -trimpath -tags lambda.norpc -ldflags "$(LDFLAGS)" -o bin/bootstrap $(FUNCTION)

.PHONY: build-UnauthorizedAccessFunction
build-UnauthorizedAccessFunction: ## Used by `sam build`: writes $(ARTIFACTS_DIR)/bootstrap
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -trimpath -tags lambda.norpc -ldflags "$(LDFLAGS)" -o $(ARTIFACTS_DIR)/bootstrap $(FUNCTION)

.PHONY: build-HourlyReportFunction
build-HourlyReportFunction: ## Used by `sam build`: writes $(ARTIFACTS_DIR)/bootstrap of the hourly report
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -trimpath -tags lambda.norpc -ldflags "$(LDFLAGS)" -o $(ARTIFACTS_DIR)/bootstrap ./functions/hourly-report

.PHONY: test
test: tools ## Run every test (unit, local-service, end-to-end, fuzz seed corpora)
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

.PHONY: test-race
test-race: ## Run every test with the race detector
	$(GO) test -count=1 -race -timeout 30m ./...

.PHONY: lint
lint: $(GOLANGCI) ## gofmt, go vet and golangci-lint (with gosec)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GOLANGCI) run ./...

$(GOLANGCI):
	GOBIN=$(TOOLS_BIN) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION)

.PHONY: events
events: ## Regenerate the sample Lambda events in events/ from events/raw/
	$(GO) run ./cmd/mkevents

.PHONY: run
run: ## Run the real functions locally (RIE + DynamoDB Local + moto_server): a sample event twice, an escalation, the hourly report
	INTEGRATIONS=$(INTEGRATIONS) $(GO) run ./cmd/localrun

.PHONY: invoke
invoke: ## Deliver one event to the local stack: make invoke EVENT=events/<file>.json
	$(GO) run ./cmd/localrun -event $(EVENT) -once

.PHONY: replay
replay: ## Replay the raw sample audit lines and print the Splunk-style rows
	$(GO) run ./cmd/replay --format splunk events/raw/*.jsonl

.PHONY: bench
bench: ## Benchmarks: floor vs pipeline vs baselines, RSS, binary size, start time
	bash bench/run.sh

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME (default 30s)
	bash .ci/fuzz.sh $(FUZZTIME)

.PHONY: deploy
deploy: ## sam build && sam deploy (guided the first time, when samconfig.toml is absent)
	sam build --build-in-source
	if [ -f samconfig.toml ]; then sam deploy; else sam deploy --guided; fi

.PHONY: clean
clean: ## Remove build output
	rm -rf bin .aws-sam
