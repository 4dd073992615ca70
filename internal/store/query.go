package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/detect"
)

// aggregateAttrs are the attributes read back; the ids set is left out.
var aggregateAttrs = append([]string{
	"rule", "window", "group", "aggregateKey", "namespace", "resource",
	"requestReceivedTimestamp", "requestURI", "code", "message", "srcIPs", "stage", "groups",
	"uid", "user", "userAgent", "verb", "owner", "logGroup", "logStream", "cluster", "region",
	"count", "firstSeen", "lastSeen",
}, identityNames...)

// Aggregates returns the stored aggregates of group g, with their counts from every
// delivery so far, ordered by aggregate key. The items of one aggregate (its first item
// and the overflow items after it) are merged into one: counts summed, the earliest
// firstSeen, the latest lastSeen and the source of the item seen last. EventIDs are not
// returned.
func (s *Store) Aggregates(ctx context.Context, g GroupKey) ([]aggregate.Aggregate, error) {
	e := newExpr()
	proj := make([]string, len(aggregateAttrs))
	for i, a := range aggregateAttrs {
		proj[i] = e.name(a)
	}
	cond := e.name(attrPK) + " = " + e.value(str(g.Key())) +
		" AND begins_with(" + e.name(attrSK) + ", " + e.value(str(skAggPrefix)) + ")"
	pages := dynamodb.NewQueryPaginator(s.client, &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String(cond),
		ProjectionExpression:      aws.String(strings.Join(proj, ", ")),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.values,
		ConsistentRead:            aws.Bool(true),
	})
	var out []aggregate.Aggregate
	index := map[string]int{}
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("query aggregates of %s: %w", g.Key(), err)
		}
		for _, item := range page.Items {
			a := fromItem(item)
			i, ok := index[a.Key]
			if !ok {
				index[a.Key] = len(out)
				out = append(out, a)
				continue
			}
			mergeItem(&out[i], a)
		}
	}
	slices.SortFunc(out, func(x, y aggregate.Aggregate) int { return strings.Compare(x.Key, y.Key) })
	return out, nil
}

// mergeItem adds another stored item of the same aggregate to m.
func mergeItem(m *aggregate.Aggregate, a aggregate.Aggregate) {
	m.Count += a.Count
	if m.Identity.IsZero() {
		m.Identity = a.Identity
	}
	if !a.FirstSeen.IsZero() && (m.FirstSeen.IsZero() || a.FirstSeen.Before(m.FirstSeen)) {
		m.FirstSeen = a.FirstSeen
	}
	if a.LastSeen.After(m.LastSeen) {
		m.LastSeen = a.LastSeen
		m.Source = a.Source
	}
}

// fromItem rebuilds an aggregate from its stored attributes.
func fromItem(item map[string]types.AttributeValue) aggregate.Aggregate {
	v := func(name string) string { return stringValue(item[name]) }
	window, _ := time.Parse(time.RFC3339, v("window"))
	first, _ := time.Parse(timeFormat, v("firstSeen"))
	last, _ := time.Parse(timeFormat, v("lastSeen"))
	return aggregate.Aggregate{
		Rule:   v("rule"),
		Window: window.UTC(),
		Key:    v("aggregateKey"),
		Group:  v("group"),
		Source: aggregate.Source{
			Owner:     v("owner"),
			LogGroup:  v("logGroup"),
			LogStream: v("logStream"),
			Cluster:   v("cluster"),
			Region:    v("region"),
		},
		Fields: detect.Fields{
			Namespace:                v("namespace"),
			Resource:                 v("resource"),
			RequestReceivedTimestamp: v("requestReceivedTimestamp"),
			RequestURI:               v("requestURI"),
			Code:                     v("code"),
			Message:                  v("message"),
			SrcIPs:                   stringList(item["srcIPs"]),
			Stage:                    v("stage"),
			Groups:                   stringList(item["groups"]),
			UID:                      v("uid"),
			User:                     v("user"),
			UserAgent:                v("userAgent"),
			Verb:                     v("verb"),
		},
		Identity:  identityOf(item),
		Count:     numberValue(item["count"]),
		FirstSeen: first.UTC(),
		LastSeen:  last.UTC(),
	}
}

func stringList(v types.AttributeValue) []string {
	l, ok := v.(*types.AttributeValueMemberL)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(l.Value))
	for _, e := range l.Value {
		out = append(out, stringValue(e))
	}
	return out
}
