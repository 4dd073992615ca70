package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/detect"
)

// aggregateAttrs are the attributes read back; the ids set is left out.
var aggregateAttrs = []string{
	"rule", "window", "group", "aggregateKey", "namespace", "resource",
	"requestReceivedTimestamp", "requestURI", "code", "message", "srcIPs", "stage", "groups",
	"uid", "user", "userAgent", "verb", "owner", "logGroup", "logStream", "cluster", "region",
	"count", "firstSeen", "lastSeen",
}

// Aggregates returns the stored aggregates of group g, with their counts from every
// delivery so far, ordered by aggregate key. EventIDs are not returned.
func (s *Store) Aggregates(ctx context.Context, g GroupKey) ([]aggregate.Aggregate, error) {
	e := newExpr()
	proj := make([]string, len(aggregateAttrs))
	for i, a := range aggregateAttrs {
		proj[i] = e.name(a)
	}
	cond := e.name(attrPK) + " = " + e.value(str(g.PartitionKey())) +
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
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("query aggregates of %s: %w", g.PartitionKey(), err)
		}
		for _, item := range page.Items {
			out = append(out, fromItem(item))
		}
	}
	return out, nil
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
