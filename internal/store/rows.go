package store

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/detect"
)

// Row bound (see "Bounded rows" in the package documentation).
const (
	// DefaultMaxRowsPerGroup is the default bound on the aggregates (rows) stored per alert
	// group and window; the events of further rows are folded into the group's overflow
	// aggregate.
	DefaultMaxRowsPerGroup = 100
	// MaxMaxRowsPerGroup is the largest row bound accepted: the admitted keys are kept in
	// one item, whose size must stay far below DynamoDB's 400 KB.
	MaxMaxRowsPerGroup = 2000
	// skRows is the sort key of the group's item that lists its admitted aggregate keys.
	skRows = "rows"
	// attrKeys is the string set of admitted aggregate keys on the rows item.
	attrKeys = "keys"
	// maxAdmitAttempts bounds the optimistic writes of one admission: each failed one
	// means another invocation admitted keys of the same group in between.
	maxAdmitAttempts = 32
)

// fold admits the aggregates of each group in aggs (merged: one per item) to the group's
// rows, and folds those that are not admitted into one aggregate per group with key
// aggregate.OverflowKey. With no row bound it returns aggs unchanged.
func (s *Store) fold(ctx context.Context, aggs []aggregate.Aggregate) ([]aggregate.Aggregate, error) {
	if s.maxRows <= 0 || len(aggs) == 0 {
		return aggs, nil
	}
	groups, byGroup := aggregate.Split(aggs)
	results := make([][]aggregate.Aggregate, len(groups))
	err := parallel(ctx, len(groups), s.concurrency, func(ctx context.Context, i int) error {
		g := groups[i]
		var keys, thin []string
		for _, a := range byGroup[g] {
			switch {
			case a.Key == aggregate.OverflowKey:
			case a.Thin:
				thin = append(thin, a.Key)
			default:
				keys = append(keys, a.Key)
			}
		}
		// Rows with their values are admitted first: a thin row then finds no room unless
		// its key has a row already (see aggregate.Accumulator.ThinAfter).
		admitted, err := s.admit(ctx, g, keys, thin)
		if err != nil {
			return err
		}
		var kept []aggregate.Aggregate
		for _, a := range byGroup[g] {
			if a.Key == aggregate.OverflowKey || admitted[a.Key] {
				kept = append(kept, a)
			}
		}
		if o, ok := overflowOf(byGroup[g], admitted); ok {
			kept = append(kept, o)
		}
		results[i] = kept
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]aggregate.Aggregate, 0, len(aggs))
	for _, r := range results {
		out = append(out, r...)
	}
	// An aggregate already keyed OverflowKey (never made by the pipeline) and the one just
	// folded go to the same items: merge them.
	return merge(out), nil
}

// overflowOf folds the aggregates of one group that are not admitted (nor already the
// overflow aggregate) into its overflow aggregate, reporting false when there are none:
// counts and event ids added, the earliest firstSeen and latest lastSeen, the source of
// the latest, and of the fields only the user and uid, when all of them share one (they
// do when the group is a user's). The other fields differ from row to row and are left
// empty.
func overflowOf(aggs []aggregate.Aggregate, admitted map[string]bool) (aggregate.Aggregate, bool) {
	var o aggregate.Aggregate
	found := false
	for _, a := range aggs {
		if a.Key == aggregate.OverflowKey || admitted[a.Key] {
			continue
		}
		if !found {
			found = true
			o = a
			o.Key = aggregate.OverflowKey
			o.Thin = false
			o.EventIDs = nil
			o.Count = 0
			o.Fields = detect.Fields{User: a.Fields.User, UID: a.Fields.UID}
		}
		o.Count += a.Count
		o.EventIDs = append(o.EventIDs, a.EventIDs...)
		if a.Fields.User != o.Fields.User {
			o.Fields.User = ""
		}
		if a.Fields.UID != o.Fields.UID {
			o.Fields.UID = ""
		}
		if !a.FirstSeen.IsZero() && (o.FirstSeen.IsZero() || a.FirstSeen.Before(o.FirstSeen)) {
			o.FirstSeen = a.FirstSeen
		}
		if a.LastSeen.After(o.LastSeen) {
			o.LastSeen = a.LastSeen
			o.Source = a.Source
		}
	}
	return o, found
}

// admit decides which of keys (aggregate keys of group g) have rows of their own: those
// already in the group's rows item, and new ones while the item holds fewer than the
// bound. It adds the new ones to the item. Since the item only grows, and never past the
// bound, a key once admitted stays admitted and a key once refused stays refused (until
// the item expires, which is never before the group's aggregates: every call writes or
// touches it): each event is counted in one place only, whatever the order and the
// regrouping of the deliveries.
//
// Keys are admitted in order: those of full first (sorted), then those of thin that are not
// in full (sorted).
func (s *Store) admit(ctx context.Context, g GroupKey, full, thin []string) (map[string]bool, error) {
	keys := uniqueSorted(full)
	inFull := make(map[string]bool, len(keys))
	for _, k := range keys {
		inFull[k] = true
	}
	for _, k := range uniqueSorted(thin) {
		if !inFull[k] {
			keys = append(keys, k)
		}
	}
	admitted := make(map[string]bool, len(keys))
	if len(keys) == 0 {
		return admitted, nil
	}
	pk := g.Key()
	var known map[string]bool       // the stored set, once read
	var stored types.AttributeValue // the stored item's expiresAt, once read
	for attempt := 0; attempt < maxAdmitAttempts; attempt++ {
		add, cond := keys, ""
		e := newExpr()
		switch {
		case known == nil && len(keys) <= s.maxRows:
			// The usual first attempt: all keys fit if the set has room for all of them
			// (some may be there already; adding them again changes nothing).
			cond = "attribute_not_exists(" + e.name(attrKeys) + ") OR size(" + e.name(attrKeys) + ") <= " +
				e.value(num(int64(s.maxRows-len(keys))))
		case known == nil:
			var err error
			if known, stored, err = s.readKeys(ctx, pk); err != nil {
				return nil, err
			}
			continue
		default:
			add = nil
			room := s.maxRows - len(known)
			for _, k := range keys {
				switch {
				case known[k]:
					admitted[k] = true
				case room > 0:
					add = append(add, k)
					room--
				}
			}
			if len(add) == 0 {
				// Nothing new can be admitted: the item is unchanged, only its retention
				// may need restarting.
				return admitted, s.touch(ctx, map[string]types.AttributeValue{attrExpiresAt: stored}, pk, skRows, g.Window)
			}
			// The set must be the one just read: it only grows, so its size says so.
			cond = "attribute_not_exists(" + e.name(attrKeys) + ")"
			if len(known) > 0 {
				cond = "size(" + e.name(attrKeys) + ") = " + e.value(num(int64(len(known))))
			}
		}
		_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(s.table),
			Key:       key(pk, skRows),
			UpdateExpression: aws.String("SET " + e.set(attrExpiresAt, s.expiresAt(g.Window)) +
				" ADD " + e.name(attrKeys) + " " + e.value(&types.AttributeValueMemberSS{Value: add})),
			ConditionExpression:                 aws.String(cond),
			ExpressionAttributeNames:            e.names,
			ExpressionAttributeValues:           e.values,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		if old, ok := conditionFailed(err); ok {
			known = stringSet(old[attrKeys])
			if known == nil {
				known = map[string]bool{}
			}
			stored = old[attrExpiresAt]
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("admit rows of %s: %w", pk, err)
		}
		for _, k := range add {
			admitted[k] = true
		}
		return admitted, nil
	}
	return nil, fmt.Errorf("admit rows of %s: the rows item changed %d times in a row", pk, maxAdmitAttempts)
}

// readKeys reads the admitted keys of a group's rows item (empty when there is none) and
// its expiresAt, with a Query on its key (the function's role has Query, not GetItem).
func (s *Store) readKeys(ctx context.Context, pk string) (map[string]bool, types.AttributeValue, error) {
	e := newExpr()
	out, err := s.client.Query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(s.table),
		KeyConditionExpression: aws.String(e.name(attrPK) + " = " + e.value(str(pk)) + " AND " +
			e.name(attrSK) + " = " + e.value(str(skRows))),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.values,
		ConsistentRead:            aws.Bool(true),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read rows of %s: %w", pk, err)
	}
	known := map[string]bool{}
	var expiry types.AttributeValue
	for _, item := range out.Items {
		if ks := stringSet(item[attrKeys]); ks != nil {
			known = ks
		}
		expiry = item[attrExpiresAt]
	}
	return known, expiry, nil
}
