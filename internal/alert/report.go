package alert

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/detect"
)

// ReportRow is one row of the hourly report: a row of the seed's search (the 13 fields
// after fillnull and rename, multi-value fields expanded as stats … by does, and the
// count), the cluster and account it came from, and the seed's risk fields, so that a
// subscriber can build a risk index from the JSON alone. Values are cleaned.
type ReportRow struct {
	Cluster string `json:"cluster"`
	Account string `json:"account"`
	aggregate.Row
	RiskScore    int          `json:"riskScore"`
	RiskMessage  string       `json:"riskMessage"`
	RiskObject   RiskObject   `json:"riskObject"`
	ThreatObject ThreatObject `json:"threatObject"`
}

// ClusterTotal is the attempts and rows of one cluster and account in a report.
type ClusterTotal struct {
	Cluster  string `json:"cluster"`
	Account  string `json:"account"`
	Rows     int    `json:"rows"`
	Attempts int64  `json:"attempts"`
}

// Report is one part of the hourly report of a window: the structured form delivered to
// sqs and lambda subscribers (schema version 1, alertKind "report").
type Report struct {
	SchemaVersion string  `json:"schemaVersion"`
	Kind          Kind    `json:"alertKind"`
	ID            string  `json:"id"` // stable per rule, window and part
	Rule          RuleRef `json:"rule"`
	Window        Window  `json:"window"`
	Part          int     `json:"part"`
	Parts         int     `json:"parts"`
	// Totals are over the whole window, in every part: clusters first, then rows and attempts.
	Clusters []ClusterTotal `json:"clusters"`
	Rows     int            `json:"rowsTotal"`
	Attempts int64          `json:"attemptsTotal"`
	// RowsInPart are this part's rows, grouped per cluster and account.
	RowsInPart  []ReportRow `json:"rows"`
	GeneratedAt time.Time   `json:"generatedAt"`
	// PossibleDuplicate is true when an earlier attempt to publish this part (same id) may
	// have been delivered (SNS's answer was lost), as on alerts.
	PossibleDuplicate bool `json:"possibleDuplicate"`
}

// ReportRows returns the report rows of aggs: per cluster and account, the rows of
// aggregate.SplunkReport of that source's aggregates, with the risk fields.
func ReportRows(rule detect.Rule, aggs []aggregate.Aggregate) []ReportRow {
	type source struct{ cluster, account string }
	bySource := map[source][]aggregate.Aggregate{}
	for _, a := range aggs {
		s := source{a.Source.Cluster, a.Source.Owner}
		bySource[s] = append(bySource[s], a)
	}
	sources := make([]source, 0, len(bySource))
	for s := range bySource {
		sources = append(sources, s)
	}
	slices.SortFunc(sources, func(x, y source) int {
		return cmp.Or(cmp.Compare(x.cluster, y.cluster), cmp.Compare(x.account, y.account))
	})
	var out []ReportRow
	for _, s := range sources {
		for _, r := range aggregate.SplunkReport(bySource[s]) {
			user := clean(r.User, maxName)
			out = append(out, ReportRow{
				Cluster: clean(s.cluster, maxName), Account: clean(s.account, maxName),
				Row:          cleanRow(r),
				RiskScore:    rule.RiskScore,
				RiskMessage:  clean(strings.ReplaceAll(rule.RiskMessage, "$user$", r.User), maxLong),
				RiskObject:   RiskObject{Field: rule.RiskObject, Type: "user", Value: user},
				ThreatObject: ThreatObject{Field: rule.ThreatObject, Type: "ip_address", Value: clean(r.SrcIP, maxIP), Class: classify(r.SrcIP)},
			})
		}
	}
	return out
}

func cleanRow(r aggregate.Row) aggregate.Row {
	return aggregate.Row{
		Window: r.Window, Count: r.Count,
		Namespace: clean(r.Namespace, maxName), Resource: clean(r.Resource, maxName),
		RequestReceivedTimestamp: clean(r.RequestReceivedTimestamp, maxIP), RequestURI: clean(r.RequestURI, maxLong),
		Code: clean(r.Code, maxIP), Message: clean(r.Message, maxLong), SrcIP: clean(r.SrcIP, maxIP),
		Stage: clean(r.Stage, maxName), Group: clean(r.Group, maxName), UID: clean(r.UID, maxName),
		User: clean(r.User, maxName), UserAgent: clean(r.UserAgent, maxLong), Verb: clean(r.Verb, maxName),
		Folded: r.Folded,
	}
}

// ReportID is the stable id of part of the report of rule's window.
func ReportID(rule string, window time.Time, part int) string {
	sum := sha256.Sum256([]byte(rule + "\x00report\x00" + window.UTC().Format(time.RFC3339) + "\x00" + strconv.Itoa(part)))
	return hex.EncodeToString(sum[:])[:32]
}

// reportPartBudget is the estimated size at which a part is closed: each row is carried
// three times (e-mail, sqs, lambda), and the estimate is checked by rendering.
const reportPartBudget = MaxPublishBytes - 16*1024

// ReportParts returns the report of rule's window over the window's aggregates: the rows
// of ReportRows split into numbered parts, each of which renders (RenderReportPart) under
// SNS's 256 KiB even when flagged as a possible duplicate. A window without rows gives no
// part, or one "nothing happened" part when heartbeat is set. The report function and
// replay --format report both build their reports here.
func ReportParts(rule detect.Rule, window time.Time, aggs []aggregate.Aggregate, now time.Time, heartbeat bool) ([]Report, error) {
	rows := ReportRows(rule, aggs)
	if len(rows) == 0 && !heartbeat {
		return nil, nil
	}
	return splitReport(rule, window, rows, now)
}

// RenderReport renders the report of rule's window over rows into one SNS Publish input
// per part (see ReportParts). A window without rows gives one heartbeat part.
func RenderReport(rule detect.Rule, window time.Time, rows []ReportRow, now time.Time) ([]Message, error) {
	parts, err := splitReport(rule, window, rows, now)
	if err != nil {
		return nil, err
	}
	msgs := make([]Message, 0, len(parts))
	for _, p := range parts {
		m, err := RenderReportPart(p)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// splitReport splits rows into the parts of the report of rule's window.
func splitReport(rule detect.Rule, window time.Time, rows []ReportRow, now time.Time) ([]Report, error) {
	base := Report{
		SchemaVersion: SchemaVersion, Kind: KindReport,
		Rule:        RuleRef{ID: clean(rule.ID, maxName), Name: clean(rule.Name, maxName)},
		Window:      Window{Start: window.UTC(), End: window.UTC().Add(aggregate.WindowSize)},
		Rows:        len(rows),
		GeneratedAt: now.UTC(),
		Clusters:    []ClusterTotal{},
	}
	for _, r := range rows {
		base.Attempts += r.Count
		if n := len(base.Clusters); n == 0 || base.Clusters[n-1].Cluster != r.Cluster || base.Clusters[n-1].Account != r.Account {
			base.Clusters = append(base.Clusters, ClusterTotal{Cluster: r.Cluster, Account: r.Account})
		}
		c := &base.Clusters[len(base.Clusters)-1]
		c.Rows++
		c.Attempts += r.Count
	}
	// Split by estimated size; a part that still does not fit is split again.
	var parts [][]ReportRow
	start, size := 0, 0
	for i, r := range rows {
		b, err := json.Marshal(r)
		if err != nil {
			return nil, fmt.Errorf("encode report row: %w", err)
		}
		rowSize := 3*len(b) + 64
		if size+rowSize > reportPartBudget/2 && i > start {
			parts = append(parts, rows[start:i])
			start, size = i, 0
		}
		size += rowSize
	}
	parts = append(parts, rows[start:])
	for {
		out := make([]Report, 0, len(parts))
		var split []int
		for i, p := range parts {
			r := base
			r.Part, r.Parts, r.RowsInPart = i+1, len(parts), p
			r.ID = ReportID(rule.ID, window, i+1)
			// Sized as the largest form it can be published in: flagged.
			flagged := r
			flagged.PossibleDuplicate = true
			m, err := RenderReportPart(flagged)
			if err != nil {
				return nil, err
			}
			if !fits(m) {
				if len(p) < 2 {
					return nil, fmt.Errorf("render report part %d: %w", i+1, ErrTooLarge)
				}
				split = append(split, i)
			}
			out = append(out, r)
		}
		if len(split) == 0 {
			return out, nil
		}
		var next [][]ReportRow
		for i, p := range parts {
			if slices.Contains(split, i) {
				next = append(next, p[:len(p)/2], p[len(p)/2:])
			} else {
				next = append(next, p)
			}
		}
		parts = next
	}
}

// maxReportChatRows is how many rows the chat notification lists (the most attempts first).
const maxReportChatRows = 10

// RenderReportPart renders one part of a report into its SNS Publish input.
func RenderReportPart(r Report) (Message, error) {
	if r.RowsInPart == nil {
		r.RowsInPart = []ReportRow{}
	}
	structured, err := json.Marshal(r)
	if err != nil {
		return Message{}, fmt.Errorf("encode structured report: %w", err)
	}
	chatJSON, err := json.Marshal(reportChat(r))
	if err != nil {
		return Message{}, fmt.Errorf("encode chatbot notification: %w", err)
	}
	body, err := json.Marshal(map[string]string{
		"default": string(chatJSON), "https": string(chatJSON),
		"email": reportEmail(r), "sqs": string(structured), "lambda": string(structured),
	})
	if err != nil {
		return Message{}, fmt.Errorf("encode message structure: %w", err)
	}
	s := fmt.Sprintf("[REPORT] Kubernetes unauthorized access %s: %d attempts, %d rows", r.Window.Start.Format("2006-01-02 15:04Z"), r.Attempts, r.Rows)
	if r.Parts > 1 {
		s += fmt.Sprintf(" (part %d/%d)", r.Part, r.Parts)
	}
	if r.PossibleDuplicate {
		s = "[REPORT] (possible duplicate)" + strings.TrimPrefix(s, "[REPORT]")
	}
	s = fitSubject(subjectASCII(s))
	return Message{
		Subject: s, Message: string(body), MessageStructure: "json",
		MessageAttributes: map[string]Attribute{
			"rule":      {DataType: "String", StringValue: cmp.Or(r.Rule.ID, "unknown")},
			"alertKind": {DataType: "String", StringValue: string(KindReport)},
			"alertId":   {DataType: "String", StringValue: r.ID},
			"window":    {DataType: "String", StringValue: r.Window.Start.Format(time.RFC3339)},
			"part":      {DataType: "Number", StringValue: strconv.Itoa(r.Part)},
			"parts":     {DataType: "Number", StringValue: strconv.Itoa(r.Parts)},
			// alertId and possibleDuplicate let a subscriber drop a repeated part.
			"possibleDuplicate": {DataType: "String", StringValue: strconv.FormatBool(r.PossibleDuplicate)},
		},
	}, nil
}

// reportEmail is the readable table of one report part: totals first, then per cluster
// one line per row.
func reportEmail(r Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Kubernetes Unauthorized Access: hourly report for %s to %s", r.Window.Start.Format(time.RFC3339), r.Window.End.Format(time.RFC3339))
	if r.Parts > 1 {
		fmt.Fprintf(&b, " (part %d of %d)", r.Part, r.Parts)
	}
	b.WriteString("\n")
	if r.PossibleDuplicate {
		fmt.Fprintf(&b, "\nDuplicate: possible: %s\n", duplicateNote)
	}
	fmt.Fprintf(&b, "\nTotal: %d attempts in %d rows\n", r.Attempts, r.Rows)
	// Values are the attacker's (rows) or come from log group names: neutralised for
	// mail clients as in the alert's e-mail (emailValue), never only cleaned.
	ev := func(s string) string { return cmp.Or(emailValue(s), "-") }
	for _, c := range r.Clusters {
		fmt.Fprintf(&b, "  cluster %s, account %s: %d attempts in %d rows\n", ev(c.Cluster), ev(c.Account), c.Attempts, c.Rows)
	}
	if r.Rows == 0 {
		b.WriteString("\nNo denied create in this window.\n")
	}
	cluster := "\x00"
	for _, row := range r.RowsInPart {
		if row.Cluster+"\x00"+row.Account != cluster {
			cluster = row.Cluster + "\x00" + row.Account
			fmt.Fprintf(&b, "\nCluster %s, account %s\n%6s  %-30s %-15s %-7s %-25s %-20s %s\n", ev(row.Cluster), ev(row.Account),
				"count", "user", "src_ip", "verb", "resource", "namespace", "code, stage, time, user.groups{}, user.uid, userAgent, requestURI, message")
		}
		if row.Folded {
			fmt.Fprintf(&b, "%6d  %-30s (requests of the rows past the bound on rows per alert group and hour, folded into one row)\n", row.Count, ev(row.User))
			continue
		}
		fmt.Fprintf(&b, "%6d  %-30s %-15s %-7s %-25s %-20s %s, %s, %s, %s, %s, %s, %s, %s\n", row.Count, ev(row.User), ev(row.SrcIP), ev(row.Verb), ev(row.Resource), ev(row.Namespace),
			ev(row.Code), ev(row.Stage), ev(row.RequestReceivedTimestamp), ev(row.Group), ev(row.UID), ev(row.UserAgent), ev(row.RequestURI), ev(row.Message))
	}
	fmt.Fprintf(&b, "\nRisk: %s (score per row), risk object user, threat object src_ip.\nReport id %s, generated %s.\n", r.Rule.Name, r.ID, r.GeneratedAt.Format(time.RFC3339))
	return b.String()
}

// reportChat is the chat notification of a report part: totals and the top rows, with a
// pointer to the rest.
func reportChat(r Report) chatbotMessage {
	var d strings.Builder
	if r.PossibleDuplicate {
		fmt.Fprintf(&d, "*Possible duplicate:* %s\n", duplicateNote)
	}
	fmt.Fprintf(&d, "*Total:* %d attempts in %d rows\n", r.Attempts, r.Rows)
	for i, c := range r.Clusters {
		if i == 5 {
			fmt.Fprintf(&d, "_and %d more clusters_\n", len(r.Clusters)-5)
			break
		}
		fmt.Fprintf(&d, "*Cluster* %s (account %s): %d attempts\n", cv(c.Cluster, maxChatValue), cv(c.Account, maxChatValue), c.Attempts)
	}
	top := slices.Clone(r.RowsInPart)
	slices.SortStableFunc(top, func(x, y ReportRow) int { return cmp.Compare(y.Count, x.Count) })
	listed := 0
	for _, row := range top {
		line := fmt.Sprintf("• %d× %s from %s: %s %s in %s → %s\n", row.Count, cv(row.User, maxChatValue), cv(row.SrcIP, maxIP),
			cv(row.Verb, 20), cv(row.Resource, 60), cv(row.Namespace, 60), cv(row.Code, 10))
		// Keep room for the closing line within Slack's section limit.
		if listed == maxReportChatRows || utf8.RuneCountInString(d.String())+utf8.RuneCountInString(line)+100 > maxChatDescription {
			break
		}
		d.WriteString(line)
		listed++
	}
	if more := len(r.RowsInPart) - listed; more > 0 {
		fmt.Fprintf(&d, "_%d more rows in the e-mail and JSON report._\n", more)
	}
	title := fmt.Sprintf(":bar_chart: Hourly report %s: %d attempts", r.Window.Start.Format("2006-01-02 15:04Z"), r.Attempts)
	if r.Parts > 1 {
		title += fmt.Sprintf(" (part %d/%d)", r.Part, r.Parts)
	}
	return chatbotMessage{
		Version: "1.0", Source: "custom", ID: r.ID,
		Content: chatbotContent{TextType: "client-markdown", Title: title, Description: strings.TrimSuffix(d.String(), "\n"),
			Keywords: []string{"Kubernetes", "report"}},
		Metadata: chatbotMetadata{
			Summary: title, EventType: "KubernetesUnauthorizedAccessReport",
			AdditionalContext: map[string]string{"alertKind": string(KindReport), "window": r.Window.Start.Format(time.RFC3339),
				"part": strconv.Itoa(r.Part), "parts": strconv.Itoa(r.Parts), "attempts": strconv.FormatInt(r.Attempts, 10),
				"possibleDuplicate": strconv.FormatBool(r.PossibleDuplicate)},
		},
	}
}
