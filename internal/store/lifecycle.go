package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
)

// This file holds the items of the alert lifecycle (docs/alerts-lifecycle.md): the
// group's running total, the claim items of its escalations, and the window index with
// the claim items of the hourly report.
//
//	pk = <group partition>          sk = "total", "total#2", ...   running total (ids + count)
//	pk = <group partition>          sk = "alert#escalation#<T>"    claim of the update at threshold T
//	pk = "window#<rule>#<window>"   sk = "group#<sha256 of group pk>"  one per group seen in the window
//	pk = "window#<rule>#<window>"   sk = "report#<part>"           claim of report part N (1-based)
//
// The running total is a ledger of the group's log event ids, written with the same
// conditional, chunked writes as an aggregate (see Idempotent counting): it rises by each
// log event exactly once. Every write of the ledger returns the count of the item it
// reached (UPDATED_NEW, or the old item of a failed condition), and the items before it
// are full and never change, so the sum is the exact total at that write: no aggregate is
// read. The window index lets the report find a window's groups with one Query of one
// partition instead of a table scan.

// Sort keys and prefixes of the lifecycle items.
const (
	skTotal            = "total"
	skEscalationPrefix = "alert#escalation#"
	skGroupPrefix      = "group#"
	skReportPrefix     = "report#"
	skOutputPrefix     = "out#"
	pkWindowPrefix     = "window#"
)

// MaxSnapshotValues is the most values of each list a Snapshot keeps.
const MaxSnapshotValues = 64

// Snapshot is what a published alert said, kept on its claim item so that the next
// escalation can say what grew: the attempts, and the distinct source IPs, resources and
// user agents (each sorted, at most MaxSnapshotValues).
type Snapshot struct {
	Attempts   int64
	SrcIPs     []string
	Resources  []string
	UserAgents []string
}

// SnapshotOf summarises aggregates as an alert built from them reports them.
func SnapshotOf(aggs []aggregate.Aggregate) Snapshot {
	var s Snapshot
	ips, res, uas := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, a := range aggs {
		s.Attempts += a.Count
		for _, ip := range a.Fields.SrcIPs {
			ips[ip] = true
		}
		res[a.Fields.Resource] = true
		uas[a.Fields.UserAgent] = true
	}
	s.SrcIPs, s.Resources, s.UserAgents = sortedKeys(ips), sortedKeys(res), sortedKeys(uas)
	return s
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	if len(out) > MaxSnapshotValues {
		out = out[:MaxSnapshotValues]
	}
	return out
}

// set returns the SET clauses (each followed by ", ") that record the snapshot, or "".
func (s Snapshot) set(e *expr) string {
	if s.Attempts == 0 && len(s.SrcIPs) == 0 {
		return ""
	}
	return e.set("reportedAttempts", num(s.Attempts)) + ", " +
		e.set("reportedSrcIPs", list(s.SrcIPs)) + ", " +
		e.set("reportedResources", list(s.Resources)) + ", " +
		e.set("reportedUserAgents", list(s.UserAgents)) + ", "
}

// snapshotOf reads the snapshot recorded on a claim item.
func snapshotOf(item map[string]types.AttributeValue) Snapshot {
	return Snapshot{
		Attempts:   numberValue(item["reportedAttempts"]),
		SrcIPs:     stringList(item["reportedSrcIPs"]),
		Resources:  stringList(item["reportedResources"]),
		UserAgents: stringList(item["reportedUserAgents"]),
	}
}

// CountGroup adds the log events of aggs that belong to group g to the group's running
// total, and returns the total. It is idempotent like Record: a redelivery adds nothing
// and returns the same total (or a larger one, if other deliveries added to it). It also
// records g in its window's index, for the hourly report.
func (s *Store) CountGroup(ctx context.Context, g GroupKey, aggs []aggregate.Aggregate) (int64, error) {
	if err := s.indexWindow(ctx, g); err != nil {
		return 0, err
	}
	var ids []string
	var plain int64
	for _, a := range aggs {
		if aggregate.AlertGroupOf(a) != g {
			continue
		}
		if len(a.EventIDs) == 0 {
			plain += a.Count
		}
		ids = append(ids, a.EventIDs...)
	}
	ids = uniqueSorted(ids)
	l := ledger{s: s, g: g, pk: g.Key()}
	if plain > 0 {
		// Raw lines replayed from files carry no ids: added without idempotency, as Record does.
		if err := l.add(ctx, 0, nil, plain); err != nil {
			return 0, err
		}
	}
	for start := 0; start < len(ids); start += MaxIDsPerWrite {
		if err := l.chunk(ctx, ids[start:min(start+MaxIDsPerWrite, len(ids))]); err != nil {
			return 0, err
		}
	}
	if !l.seen {
		// Every id was in a full item: the count of the item after them is unknown here.
		return s.readTotal(ctx, g)
	}
	return l.fullCount + l.current, nil
}

// ledger is one CountGroup call's view of the group's total items.
type ledger struct {
	s         *Store
	g         GroupKey
	pk        string
	full      []map[string]bool // ids of the full items, in item order
	fullCount int64             // sum of the counts of the full items
	current   int64             // count of the first non-full item at the last write
	seen      bool              // current is known
}

func totalSK(n int) string {
	if n == 0 {
		return skTotal
	}
	return skTotal + "#" + strconv.Itoa(n+1)
}

// chunk adds the ids of chunk that no total item holds yet, as addChunk does for an
// aggregate, and keeps the counts of the items it passes.
func (l *ledger) chunk(ctx context.Context, chunk []string) error {
	write := func(n int, ids []string) (map[string]types.AttributeValue, error) {
		err := l.add(ctx, n, ids, int64(len(ids)))
		if old, failed := conditionFailed(err); failed && old != nil {
			return old, err
		}
		return nil, err
	}
	passed := func(old map[string]types.AttributeValue, isFull bool) {
		if isFull {
			l.fullCount += numberValue(old["count"])
			return
		}
		// Some ids were counted already: the item's count as it stands includes them.
		l.current, l.seen = numberValue(old["count"]), true
	}
	return l.s.addAbsent(ctx, l.pk, totalSK, l.g.Window, &l.full, chunk, write, passed)
}

// add writes count (and ids, unless nil) to total item n. It returns the raw error of a
// failed condition, whose old item chunk reads.
func (l *ledger) add(ctx context.Context, n int, ids []string, count int64) error {
	e := newExpr()
	update := "SET " + e.set("rule", str(l.g.Rule)) + ", " +
		e.set("window", str(l.g.Window.UTC().Format(time.RFC3339))) + ", " +
		e.set(attrExpiresAt, l.s.expiresAt(l.g.Window)) +
		" ADD " + e.name("count") + " " + e.value(num(count))
	in := &dynamodb.UpdateItemInput{
		TableName:                           aws.String(l.s.table),
		Key:                                 key(l.pk, totalSK(n)),
		ExpressionAttributeNames:            e.names,
		ExpressionAttributeValues:           e.values,
		ReturnValues:                        types.ReturnValueUpdatedNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	if len(ids) > 0 {
		update += ", " + e.name(attrIDs) + " " + e.value(&types.AttributeValueMemberSS{Value: ids})
		var cond []string
		for _, id := range ids {
			cond = append(cond, "NOT contains("+e.name(attrIDs)+", "+e.value(str(id))+")")
		}
		cond = append(cond, "(attribute_not_exists("+e.name(attrIDs)+") OR size("+e.name(attrIDs)+") < "+e.value(num(MaxStoredIDs))+")")
		in.ConditionExpression = aws.String(strings.Join(cond, " AND "))
	}
	in.UpdateExpression = aws.String(update)
	out, err := l.s.client.UpdateItem(ctx, in)
	if err != nil {
		if _, ok := conditionFailed(err); ok {
			return err
		}
		return fmt.Errorf("add to the total of %s: %w", l.pk, err)
	}
	l.current, l.seen = numberValue(out.Attributes["count"]), true
	return nil
}

// readTotal sums the counts of the group's total items (a strongly consistent Query of
// the few items "total", "total#2", ...).
func (s *Store) readTotal(ctx context.Context, g GroupKey) (int64, error) {
	e := newExpr()
	pages := dynamodb.NewQueryPaginator(s.client, &dynamodb.QueryInput{
		TableName: aws.String(s.table),
		KeyConditionExpression: aws.String(e.name(attrPK) + " = " + e.value(str(g.Key())) +
			" AND begins_with(" + e.name(attrSK) + ", " + e.value(str(skTotal)) + ")"),
		ProjectionExpression:      aws.String(e.name("count")),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.values,
		ConsistentRead:            aws.Bool(true),
	})
	var total int64
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return 0, fmt.Errorf("read the total of %s: %w", g.Key(), err)
		}
		for _, item := range page.Items {
			total += numberValue(item["count"])
		}
	}
	return total, nil
}

// Total returns the group's running total as stored.
func (s *Store) Total(ctx context.Context, g GroupKey) (int64, error) { return s.readTotal(ctx, g) }

// EscalationSK is the sort key of the claim item of g's update at threshold.
func EscalationSK(threshold int64) string {
	return fmt.Sprintf("%s%019d", skEscalationPrefix, threshold)
}

// ClaimEscalation is Claim for the update of g at threshold: one claim item per group and
// threshold, with the same protocol as the first alert's.
func (s *Store) ClaimEscalation(ctx context.Context, g GroupKey, threshold int64, lease time.Duration) (Claim, error) {
	return s.claimItem(ctx, g, g.Key(), EscalationSK(threshold), lease)
}

// Sent is an alert of a group recorded as sent: the first alert (Threshold 0) or an update.
type Sent struct {
	Threshold int64
	MessageID string
	Reported  Snapshot
}

// SentAlerts returns the alerts of g recorded as sent, first alert first, then the
// updates by threshold (one strongly consistent Query of the group's claim items).
func (s *Store) SentAlerts(ctx context.Context, g GroupKey) ([]Sent, error) {
	e := newExpr()
	pages := dynamodb.NewQueryPaginator(s.client, &dynamodb.QueryInput{
		TableName: aws.String(s.table),
		KeyConditionExpression: aws.String(e.name(attrPK) + " = " + e.value(str(g.Key())) +
			" AND begins_with(" + e.name(attrSK) + ", " + e.value(str(skAlert)) + ")"),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.values,
		ConsistentRead:            aws.Bool(true),
	})
	var out []Sent
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("read the alerts of %s: %w", g.Key(), err)
		}
		for _, item := range page.Items {
			if stringValue(item["state"]) != stateSent {
				continue
			}
			sent := Sent{MessageID: stringValue(item["messageID"]), Reported: snapshotOf(item)}
			if rest, ok := strings.CutPrefix(stringValue(item[attrSK]), skEscalationPrefix); ok {
				sent.Threshold, _ = strconv.ParseInt(rest, 10, 64)
			}
			out = append(out, sent)
		}
	}
	slices.SortFunc(out, func(x, y Sent) int { return int(min(max(x.Threshold-y.Threshold, -1), 1)) })
	return out, nil
}

// WindowPartitionKey is the pk of the index and report items of a rule's window.
func WindowPartitionKey(rule string, window time.Time) string {
	return pkWindowPrefix + rule + "#" + window.UTC().Format(time.RFC3339)
}

// indexWindow records group g in its window's index. The sort key is a hash of the
// group's partition key, which can be longer than a sort key may be.
func (s *Store) indexWindow(ctx context.Context, g GroupKey) error {
	sum := sha256.Sum256([]byte(g.Key()))
	e := newExpr()
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table),
		Key:       key(WindowPartitionKey(g.Rule, g.Window), skGroupPrefix+hex.EncodeToString(sum[:])),
		UpdateExpression: aws.String("SET " + e.set("rule", str(g.Rule)) + ", " +
			e.set("window", str(g.Window.UTC().Format(time.RFC3339))) + ", " +
			e.set("group", str(g.Group)) + ", " + e.set(attrExpiresAt, s.expiresAt(g.Window))),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.values,
	})
	if err != nil {
		return fmt.Errorf("index group %s in its window: %w", g.Key(), err)
	}
	return nil
}

// WindowGroups returns the alert groups of rule seen in window, from the window's index
// (one Query of one partition: no scan).
func (s *Store) WindowGroups(ctx context.Context, rule string, window time.Time) ([]GroupKey, error) {
	e := newExpr()
	pages := dynamodb.NewQueryPaginator(s.client, &dynamodb.QueryInput{
		TableName: aws.String(s.table),
		KeyConditionExpression: aws.String(e.name(attrPK) + " = " + e.value(str(WindowPartitionKey(rule, window))) +
			" AND begins_with(" + e.name(attrSK) + ", " + e.value(str(skGroupPrefix)) + ")"),
		ProjectionExpression:      aws.String(e.name("group")),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.values,
		ConsistentRead:            aws.Bool(true),
	})
	var out []GroupKey
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("read the index of window %s: %w", window.UTC().Format(time.RFC3339), err)
		}
		for _, item := range page.Items {
			out = append(out, GroupKey{Rule: rule, Window: window.UTC(), Group: stringValue(item["group"])})
		}
	}
	slices.SortFunc(out, func(x, y GroupKey) int { return strings.Compare(x.Group, y.Group) })
	return out, nil
}

// WindowAggregates returns every stored aggregate of rule's window, group by group.
func (s *Store) WindowAggregates(ctx context.Context, rule string, window time.Time) ([]aggregate.Aggregate, error) {
	groups, err := s.WindowGroups(ctx, rule, window)
	if err != nil {
		return nil, err
	}
	var out []aggregate.Aggregate
	for _, g := range groups {
		aggs, err := s.Aggregates(ctx, g)
		if err != nil {
			return nil, err
		}
		out = append(out, aggs...)
	}
	return out, nil
}

// ClaimReportPart is Claim for part (1-based) of the report of rule's window: one claim
// item per window and part, with the same protocol as an alert's.
func (s *Store) ClaimReportPart(ctx context.Context, rule string, window time.Time, part int, lease time.Duration) (Claim, error) {
	g := GroupKey{Rule: rule, Window: window.UTC()}
	return s.claimItem(ctx, g, WindowPartitionKey(rule, window), fmt.Sprintf("%s%04d", skReportPrefix, part), lease)
}

// OutputSK is the sort key of the claim item of output's copy of the alert whose claim
// item has sort key parentSK: out#<output>#<parentSK>. It begins with neither "alert" nor
// "report", so neither SentAlerts nor the report reads it.
func OutputSK(output, parentSK string) string {
	return skOutputPrefix + output + "#" + parentSK
}

// ClaimOutput is Claim for the copy of an alert (a first alert, an update or a report
// part, whose claim is parent) that goes to output (EventBridge, Security Hub): one claim
// item per alert and output, beside the alert's own, with the same protocol. An output
// that fails so never makes the SNS alert go out again, and vice versa.
func (s *Store) ClaimOutput(ctx context.Context, parent Claim, output string, lease time.Duration) (Claim, error) {
	pk, sk := parent.item()
	return s.claimItem(ctx, parent.Group, pk, OutputSK(output, sk), lease)
}
