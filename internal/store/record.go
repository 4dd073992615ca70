package store

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/audit"
)

// Record adds the aggregates of one delivery to their stored counts, idempotently: a
// redelivery of the same batch, or a retry after a partial failure, changes nothing.
// Aggregates with the same window, group and key are merged first, and those past the
// group's row bound are folded into its overflow aggregate (see Bounded rows). It returns
// the first write error; writes that succeeded stay, and are not repeated by a retry.
func (s *Store) Record(ctx context.Context, aggs []aggregate.Aggregate) error {
	merged, err := s.fold(ctx, merge(aggs))
	if err != nil {
		return err
	}
	return parallel(ctx, len(merged), s.concurrency, func(ctx context.Context, i int) error {
		return s.record(ctx, merged[i])
	})
}

// merge combines aggregates that would be written to the same item.
// Aggregates of the pipeline are one per item already: they are returned as they are.
func merge(aggs []aggregate.Aggregate) []aggregate.Aggregate {
	type itemKey struct {
		g   aggregate.AlertGroup
		key string
	}
	seen := make(map[itemKey]struct{}, len(aggs))
	unique := true
	for i := range aggs {
		k := itemKey{aggregate.AlertGroupOf(aggs[i]), aggs[i].Key}
		if _, ok := seen[k]; ok {
			unique = false
			break
		}
		seen[k] = struct{}{}
	}
	if unique {
		return aggs
	}
	index := make(map[itemKey]int, len(aggs))
	out := make([]aggregate.Aggregate, 0, len(aggs))
	for _, a := range aggs {
		k := itemKey{aggregate.AlertGroupOf(a), a.Key}
		i, ok := index[k]
		if !ok {
			index[k] = len(out)
			a.EventIDs = append([]string(nil), a.EventIDs...)
			out = append(out, a)
			continue
		}
		m := &out[i]
		if m.Thin && !a.Thin {
			// The same row, whole in another part of the delivery: keep its values.
			m.Fields, m.Identity, m.Thin = a.Fields, a.Identity, false
		}
		m.Count += a.Count
		m.EventIDs = append(m.EventIDs, a.EventIDs...)
		if m.Identity.IsZero() {
			m.Identity = a.Identity
		}
		if a.FirstSeen.Before(m.FirstSeen) {
			m.FirstSeen = a.FirstSeen
		}
		if a.LastSeen.After(m.LastSeen) {
			m.LastSeen = a.LastSeen
			m.Source = a.Source
		}
	}
	return out
}

// record writes one aggregate: its ids chunk by chunk, or its count alone when it has none.
func (s *Store) record(ctx context.Context, a aggregate.Aggregate) error {
	ids := uniqueSorted(a.EventIDs)
	var err error
	if len(ids) == 0 {
		err = s.addCount(ctx, a)
	} else {
		err = s.addIDs(ctx, a, ids)
	}
	if err != nil {
		return fmt.Errorf("record aggregate %s of %s: %w", a.Key, aggregate.AlertGroupOf(a).Key(), err)
	}
	return nil
}

// itemSK returns the sort key of item n (from 0) of the aggregate with the given key:
// item 0 is "agg#<key>", the overflow items that follow it "agg#<key>#2", "agg#<key>#3"...
func itemSK(aggregateKey string, n int) string {
	if n == 0 {
		return skAggPrefix + aggregateKey
	}
	return skAggPrefix + aggregateKey + "#" + strconv.Itoa(n+1)
}

// addCount adds the count of an aggregate without ids (raw lines) to its first item: no
// idempotency.
func (s *Store) addCount(ctx context.Context, a aggregate.Aggregate) error {
	sk := itemSK(a.Key, 0)
	newItem, _, err := s.apply(ctx, a, sk, contribution{count: a.Count})
	if err != nil {
		return err
	}
	return s.fixSeen(ctx, a, sk, newItem)
}

// addIDs adds the ids not yet stored, and their number to the count, MaxIDsPerWrite ids
// per conditional write. full collects the id sets of the full items met so far, in item
// order: a full item takes no more ids (every write of ids requires a set smaller than
// MaxStoredIDs), so what was read once stays true and later chunks need not ask again.
func (s *Store) addIDs(ctx context.Context, a aggregate.Aggregate, ids []string) error {
	var full []map[string]bool // the full items met so far
	for start := 0; start < len(ids); start += MaxIDsPerWrite {
		if err := s.addChunk(ctx, a, &full, ids[start:min(start+MaxIDsPerWrite, len(ids))]); err != nil {
			return err
		}
	}
	return nil
}

// addChunk adds the ids of chunk that no item of the aggregate holds yet. The items are
// visited in order: an id is absent from the full items already known when none of their
// sets holds it, and absent from the first item that is not full when the write's
// condition says so; the ids go into that item. Since an item is only passed over once it
// is full, and a full item never changes, every id is found in the one item that holds it,
// whatever the chunking of the delivery that stored it and of the one that sees it again.
func (s *Store) addChunk(ctx context.Context, a aggregate.Aggregate, full *[]map[string]bool, chunk []string) error {
	sk := func(n int) string { return itemSK(a.Key, n) }
	write := func(n int, ids []string) (map[string]types.AttributeValue, error) {
		newItem, old, err := s.apply(ctx, a, sk(n), contribution{count: int64(len(ids)), members: ids, guard: ids, limit: true})
		if old != nil || err != nil {
			return old, err
		}
		return nil, s.fixSeen(ctx, a, sk(n), newItem)
	}
	return s.addAbsent(ctx, aggregate.AlertGroupOf(a).Key(), sk, a.Window, full, chunk, write, nil)
}

// addAbsent adds the ids of chunk that no item of a sequence of id items holds yet (an
// aggregate's items, or a group's total items; see addChunk). write writes ids to item n
// and returns nil and the error, or on a failed condition the old item and the error.
// passed, when not nil, is told of each item whose condition failed, and whether it is full.
func (s *Store) addAbsent(ctx context.Context, pk string, sk func(n int) string, window time.Time, full *[]map[string]bool, chunk []string,
	write func(n int, ids []string) (map[string]types.AttributeValue, error), passed func(old map[string]types.AttributeValue, isFull bool)) error {
	pending := chunk
	for n := 0; ; {
		for ; n < len(*full); n++ {
			pending = absentFrom((*full)[n], pending)
		}
		if len(pending) == 0 {
			return nil
		}
		old, err := write(n, pending)
		if old == nil {
			return err
		}
		present := stringSet(old[attrIDs])
		remaining := absentFrom(present, pending)
		isFull := len(present) >= MaxStoredIDs
		if isFull || len(remaining) == 0 {
			// The events found here were seen again (and a full item is read on the way to
			// the later ones): restart this item's retention, so that it never expires
			// before the items after it.
			if err := s.touch(ctx, old, pk, sk(n), window); err != nil {
				return err
			}
		}
		switch {
		case isFull:
			*full = append(*full, present)
		case len(remaining) == len(pending):
			// Neither full nor holding any of these ids: only a misbehaving server fails
			// the condition then.
			return fmt.Errorf("add event ids to %s %s: condition failed without a reason", pk, sk(n))
		}
		if passed != nil {
			passed(old, isFull)
		}
		pending = remaining
	}
}

// absentFrom returns the ids that are not in present.
func absentFrom(present map[string]bool, ids []string) []string {
	out := ids[:0:0]
	for _, id := range ids {
		if !present[id] {
			out = append(out, id)
		}
	}
	return out
}

// contribution is what one conditional write adds to an aggregate item.
type contribution struct {
	count   int64
	members []string // added to the ids set
	guard   []string // none may be in the ids set yet
	limit   bool     // the ids set must be smaller than MaxStoredIDs
}

// apply runs one UpdateItem. On success it returns the updated attributes; when the
// condition fails it returns the old item (and the error).
func (s *Store) apply(ctx context.Context, a aggregate.Aggregate, sk string, c contribution) (newItem, old map[string]types.AttributeValue, err error) {
	e := newExpr()
	first, last := a.FirstSeen, a.LastSeen
	if first.IsZero() {
		first = a.Window
	}
	if last.IsZero() {
		last = first
	}
	f := a.Fields
	// A thin row (aggregate.Aggregate.Thin) has no values: it only fills in what a row
	// written without them lacks, never replacing the values of the row its key has.
	fieldSet := func(name string, v types.AttributeValue) string {
		if a.Thin {
			return e.name(name) + " = if_not_exists(" + e.name(name) + ", " + e.value(v) + ")"
		}
		return e.set(name, v)
	}
	set := []string{
		e.set("rule", str(a.Rule)),
		e.set("window", str(a.Window.UTC().Format(time.RFC3339))),
		e.set("group", str(a.Group)),
		e.set("aggregateKey", str(a.Key)),
		fieldSet("namespace", str(cut(f.Namespace))),
		fieldSet("resource", str(cut(f.Resource))),
		fieldSet("requestReceivedTimestamp", str(cut(f.RequestReceivedTimestamp))),
		fieldSet("requestURI", str(cut(f.RequestURI))),
		fieldSet("code", str(cut(f.Code))),
		fieldSet("message", str(cut(f.Message))),
		fieldSet("srcIPs", list(f.SrcIPs)),
		fieldSet("stage", str(cut(f.Stage))),
		fieldSet("groups", list(f.Groups)),
		e.set("uid", str(cut(f.UID))),
		e.set("user", str(cut(f.User))),
		fieldSet("userAgent", str(cut(f.UserAgent))),
		fieldSet("verb", str(cut(f.Verb))),
		e.set("owner", str(a.Source.Owner)),
		e.set("logGroup", str(a.Source.LogGroup)),
		e.set("logStream", str(a.Source.LogStream)),
		e.set("cluster", str(a.Source.Cluster)),
		e.set("region", str(a.Source.Region)),
		e.set(attrExpiresAt, s.expiresAt(a.Window)),
		e.name("firstSeen") + " = if_not_exists(" + e.name("firstSeen") + ", " + e.value(str(formatTime(first))) + ")",
		e.name("lastSeen") + " = if_not_exists(" + e.name("lastSeen") + ", " + e.value(str(formatTime(last))) + ")",
	}
	for _, attr := range identityAttrs(a.Identity) {
		set = append(set, e.set(attr.name, str(cut(attr.value))))
	}
	add := []string{e.name("count") + " " + e.value(num(c.count))}
	if len(c.members) > 0 {
		add = append(add, e.name(attrIDs)+" "+e.value(&types.AttributeValueMemberSS{Value: c.members}))
	}
	var cond []string
	for _, id := range c.guard {
		cond = append(cond, "NOT contains("+e.name(attrIDs)+", "+e.value(str(id))+")")
	}
	if c.limit {
		cond = append(cond, "(attribute_not_exists("+e.name(attrIDs)+") OR size("+e.name(attrIDs)+") < "+e.value(num(MaxStoredIDs))+")")
	}
	in := &dynamodb.UpdateItemInput{
		TableName:                           aws.String(s.table),
		Key:                                 key(aggregate.AlertGroupOf(a).Key(), sk),
		UpdateExpression:                    aws.String("SET " + strings.Join(set, ", ") + " ADD " + strings.Join(add, ", ")),
		ExpressionAttributeNames:            e.names,
		ExpressionAttributeValues:           e.values,
		ReturnValues:                        types.ReturnValueUpdatedNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	if len(cond) > 0 {
		in.ConditionExpression = aws.String(strings.Join(cond, " AND "))
	}
	out, err := s.client.UpdateItem(ctx, in)
	if err != nil {
		if item, ok := conditionFailed(err); ok && item != nil {
			return nil, item, err
		}
		return nil, nil, fmt.Errorf("update item: %w", err)
	}
	return out.Attributes, nil, nil
}

// fixSeen lowers firstSeen and raises lastSeen when this contribution widens them:
// DynamoDB update expressions have no min or max, so an item written first by a later
// event needs a second, conditional write. It happens only for late or reordered data.
func (s *Store) fixSeen(ctx context.Context, a aggregate.Aggregate, sk string, newItem map[string]types.AttributeValue) error {
	first, last := a.FirstSeen, a.LastSeen
	if first.IsZero() || last.IsZero() {
		return nil
	}
	for _, fix := range []struct {
		attr, value, op string
	}{
		{"firstSeen", formatTime(first), ">"},
		{"lastSeen", formatTime(last), "<"},
	} {
		stored := stringValue(newItem[fix.attr])
		if stored == "" || (fix.op == ">" && stored <= fix.value) || (fix.op == "<" && stored >= fix.value) {
			continue
		}
		e := newExpr()
		_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 aws.String(s.table),
			Key:                       key(aggregate.AlertGroupOf(a).Key(), sk),
			UpdateExpression:          aws.String("SET " + e.set(fix.attr, str(fix.value))),
			ConditionExpression:       aws.String(e.name(fix.attr) + " " + fix.op + " " + e.value(str(fix.value))),
			ExpressionAttributeNames:  e.names,
			ExpressionAttributeValues: e.values,
		})
		if _, ok := conditionFailed(err); ok {
			continue // a concurrent write already moved it further
		}
		if err != nil {
			return fmt.Errorf("update %s: %w", fix.attr, err)
		}
	}
	return nil
}

// identityAttr is one stored identifier of an aggregate's identity.
type identityAttr struct{ name, value string }

// identityNames are the attributes of the identifiers, in the order of identityAttrs.
var identityNames = []string{"arn", "canonicalArn", "sessionName", "accessKeyId", "principalId", "podName", "podUid", "nodeName", "credentialId"}

// identityAttrs lists the identifiers that are known; unknown ones are not written (an
// item keeps what an earlier write stored).
func identityAttrs(id audit.Identity) []identityAttr {
	values := []string{id.ARN, id.CanonicalARN, id.SessionName, id.AccessKeyID, id.PrincipalID, id.PodName, id.PodUID, id.NodeName, id.CredentialID}
	var out []identityAttr
	for i, v := range values {
		if v != "" {
			out = append(out, identityAttr{identityNames[i], v})
		}
	}
	return out
}

// identityOf reads the identifiers back from an item.
func identityOf(item map[string]types.AttributeValue) audit.Identity {
	v := func(i int) string { return stringValue(item[identityNames[i]]) }
	return audit.Identity{ARN: v(0), CanonicalARN: v(1), SessionName: v(2), AccessKeyID: v(3), PrincipalID: v(4),
		PodName: v(5), PodUID: v(6), NodeName: v(7), CredentialID: v(8)}
}

// expr collects the placeholders of one DynamoDB expression.
type expr struct {
	names  map[string]string
	values map[string]types.AttributeValue
}

func newExpr() *expr {
	return &expr{names: map[string]string{}, values: map[string]types.AttributeValue{}}
}

// name returns the placeholder of an attribute name (names here are alphanumeric).
func (e *expr) name(attr string) string {
	ph := "#" + attr
	e.names[ph] = attr
	return ph
}

// value returns a new placeholder for v.
func (e *expr) value(v types.AttributeValue) string {
	ph := ":v" + strconv.Itoa(len(e.values))
	e.values[ph] = v
	return ph
}

// set returns "#attr = :vN".
func (e *expr) set(attr string, v types.AttributeValue) string {
	return e.name(attr) + " = " + e.value(v)
}

// cut bounds one attacker-controlled value so an item stays far below DynamoDB's 400 KB
// (aggregates made by the pipeline are already bounded; others may not be).
func cut(v string) string { return aggregate.Cut(v) }

// list stores a multi-value field within aggregate.CutList's bounds.
func list(values []string) types.AttributeValue {
	cut := aggregate.CutList(values)
	l := make([]types.AttributeValue, len(cut))
	for i, v := range cut {
		l[i] = str(v)
	}
	return &types.AttributeValueMemberL{Value: l}
}

func uniqueSorted(ids []string) []string {
	if len(ids) == 0 {
		return nil
	}
	out := append([]string(nil), ids...)
	sort.Strings(out)
	j := 0
	for i, id := range out {
		if i == 0 || id != out[j-1] {
			out[j] = id
			j++
		}
	}
	return out[:j]
}

func stringSet(v types.AttributeValue) map[string]bool {
	ss, ok := v.(*types.AttributeValueMemberSS)
	if !ok {
		return nil
	}
	m := make(map[string]bool, len(ss.Value))
	for _, id := range ss.Value {
		m[id] = true
	}
	return m
}

func stringValue(v types.AttributeValue) string {
	if sv, ok := v.(*types.AttributeValueMemberS); ok {
		return sv.Value
	}
	return ""
}
