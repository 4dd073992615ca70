package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/securityhub"
	shtypes "github.com/aws/aws-sdk-go-v2/service/securityhub/types"

	"github.com/eks-unauthorized-access/detector/infra/local"
	"github.com/eks-unauthorized-access/detector/internal/alert"
	"github.com/eks-unauthorized-access/detector/internal/eventbus"
)

// Names of the local EventBridge bus and of the rule that copies every event of this
// project on it to an SQS queue, which the run reads.
const (
	eventBus  = "security"
	eventRule = "every-alert"
)

// integrationsEnv turns both outputs on in the functions: findings into moto's Security
// Hub, events onto eventBus.
func integrationsEnv() []string {
	return []string{"SECURITY_HUB=on", "ACCOUNT_ID=" + local.AccountID, "EVENT_BUS_NAME=" + eventBus}
}

// prepareIntegrations creates the bus and its rule before the functions start.
func prepareIntegrations(ctx context.Context, s *local.FunctionStack) ([]string, error) {
	return nil, s.Moto.RouteEvents(ctx, eventBus, eventRule, `{"source": ["`+eventbus.Source+`"]}`)
}

// outputs tracks what the functions sent to Security Hub and EventBridge during a run.
type outputs struct {
	seen   map[string]string // finding Id → UpdatedAt last printed
	events int
}

// print prints the findings created or updated, and the events put, since the last call,
// and returns how many findings are new and how many events were put.
func (o *outputs) print(ctx context.Context, m *local.Moto, out io.Writer) (newFindings, events int, err error) {
	if o.seen == nil {
		o.seen = map[string]string{}
	}
	var changed []shtypes.AwsSecurityFinding
	p := securityhub.NewGetFindingsPaginator(m.SecurityHubClient(), &securityhub.GetFindingsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return 0, 0, fmt.Errorf("read the findings: %w", err)
		}
		for _, f := range page.Findings {
			if prev, ok := o.seen[aws.ToString(f.Id)]; !ok || prev != aws.ToString(f.UpdatedAt) {
				changed = append(changed, f)
			}
		}
	}
	slices.SortFunc(changed, func(x, y shtypes.AwsSecurityFinding) int {
		return strings.Compare(x.ProductFields["windowStart"]+aws.ToString(x.Id), y.ProductFields["windowStart"]+aws.ToString(y.Id))
	})
	for _, f := range changed {
		id := aws.ToString(f.Id)
		state := "updated"
		if _, ok := o.seen[id]; !ok {
			state, newFindings = "new", newFindings+1
		}
		o.seen[id] = aws.ToString(f.UpdatedAt)
		printFinding(out, f, state)
	}
	raw, err := m.DrainEvents(ctx, eventRule)
	if err != nil {
		return 0, 0, err
	}
	// In the order of their windows, as the alerts are printed, whatever the order of
	// the concurrent puts.
	slices.SortStableFunc(raw, func(x, y json.RawMessage) int { return strings.Compare(eventKey(x), eventKey(y)) })
	for _, r := range raw {
		printEvent(out, r)
	}
	o.events += len(raw)
	if len(changed)+len(raw) > 0 {
		fmt.Fprintln(out)
	}
	return newFindings, len(raw), nil
}

// printFinding prints the fields of a Security Hub finding that an analyst sees first.
func printFinding(out io.Writer, f shtypes.AwsSecurityFinding, state string) {
	fmt.Fprintf(out, "  Security Hub finding (%s): %s\n", state, aws.ToString(f.Id))
	row := func(name, format string, args ...any) {
		fmt.Fprintf(out, "    %-11s %s\n", name, fmt.Sprintf(format, args...))
	}
	row("title", "%s", aws.ToString(f.Title))
	sev := ""
	if f.Severity != nil {
		sev = string(f.Severity.Label)
	}
	row("severity", "%s; types %s", sev, strings.Join(f.Types, ", "))
	for _, r := range f.Resources {
		row("resource", "%s %s", aws.ToString(r.Type), aws.ToString(r.Id))
	}
	if n := f.Network; n != nil {
		row("network", "%s from %s", n.Direction, aws.ToString(n.SourceIpV4)+aws.ToString(n.SourceIpV6))
	}
	workflow := "(unchanged)"
	if f.Workflow != nil {
		workflow = string(f.Workflow.Status)
	}
	row("fields", "alertKind %s, attempts %s, window %s, workflow %s", f.ProductFields["alertKind"], f.ProductFields["attempts"], f.ProductFields["windowStart"], workflow)
}

// printEvent prints an EventBridge event as the rule's target receives it.
func printEvent(out io.Writer, raw json.RawMessage) {
	var e struct {
		Source     string   `json:"source"`
		DetailType string   `json:"detail-type"`
		Resources  []string `json:"resources"`
		Detail     struct {
			alert.Alert
			AttemptsTotal int64 `json:"attemptsTotal"` // a report's
		} `json:"detail"`
	}
	if err := json.Unmarshal(raw, &e); err != nil {
		fmt.Fprintf(out, "  EventBridge event: (not JSON) %s\n", cut(string(raw), 300))
		return
	}
	fmt.Fprintf(out, "  EventBridge event: %s / %s\n", e.Source, e.DetailType)
	fmt.Fprintf(out, "    %-11s %s\n", "detail", fmt.Sprintf("id %s, alertKind %s, attempts %d, possibleDuplicate %v", e.Detail.ID, e.Detail.Kind, max(e.Detail.Attempts, e.Detail.AttemptsTotal), e.Detail.PossibleDuplicate))
	if len(e.Resources) > 0 {
		fmt.Fprintf(out, "    %-11s %s\n", "resources", strings.Join(e.Resources, ", "))
	}
}

// eventKey orders events by the window of their alert, then by alert id.
func eventKey(raw json.RawMessage) string {
	var e struct {
		Detail struct {
			ID     string       `json:"id"`
			Window alert.Window `json:"window"`
		} `json:"detail"`
	}
	_ = json.Unmarshal(raw, &e) // not an alert: sorted first
	return e.Detail.Window.Start.UTC().Format(time.RFC3339) + e.Detail.ID
}
