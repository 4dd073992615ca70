package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The flood guard (ALERT_MAX_GROUPS) bounds the alerts of one log group in one window:
//
//	pk = "flood#<rule>#<window>#<hash of account and log group>"  sk = "slots"
//
// The item holds the string set admitted, the alert groups given an alert of their own (at
// most the maximum), and the set overflow, the groups folded into the one "many users"
// alert of the log group and window (bounded by MaxOverflowGroups). A group is admitted
// by one conditional ADD: it is already in admitted, or admitted has room. DynamoDB
// applies the writes of one item one at a time, so exactly the maximum number of groups is
// ever admitted, whatever the concurrency; a group admitted once is admitted again on
// every redelivery, and a group refused once is refused again (admitted never shrinks).

// MaxOverflowGroups bounds the overflow set of a flood item (about 40 bytes a group);
// groups beyond it are still folded, only no longer counted.
const MaxOverflowGroups = 5000

const (
	pkFloodPrefix = "flood#"
	skFloodSlots  = "slots"
	attrAdmitted  = "admitted"
	attrOverflow  = "overflow"
)

// floodPK is the partition key of the flood item of (owner, logGroup) in g's window.
func floodPK(g GroupKey, owner, logGroup string) string {
	sum := sha256.Sum256([]byte(owner + "\x00" + logGroup))
	return pkFloodPrefix + g.Rule + "#" + g.Window.UTC().Format(time.RFC3339) + "#" + hex.EncodeToString(sum[:16])
}

// Admission is the answer of Admit.
type Admission struct {
	// Admitted is true when the group gets an alert of its own.
	Admitted bool
	// Groups is how many alert groups the log group has in the window so far, as far as
	// the flood item counts them (admitted plus overflow, the latter bounded).
	Groups int
}

// Admit decides whether alert group g, of the log group logGroup in account owner, gets an
// alert of its own (at most max groups per log group and window do) or is folded into the
// log group's "many users" alert. It is idempotent: the same group always gets the same
// answer.
func (s *Store) Admit(ctx context.Context, g GroupKey, owner, logGroup string, max int) (Admission, error) {
	pk := floodPK(g, owner, logGroup)
	member := &types.AttributeValueMemberSS{Value: []string{g.Key()}}
	e := newExpr()
	in := &dynamodb.UpdateItemInput{
		TableName:        aws.String(s.table),
		Key:              key(pk, skFloodSlots),
		UpdateExpression: aws.String("SET " + e.set(attrExpiresAt, s.expiresAt(g.Window)) + " ADD " + e.name(attrAdmitted) + " " + e.value(member)),
		ConditionExpression: aws.String("attribute_not_exists(" + e.name(attrAdmitted) + ") OR contains(" + e.name(attrAdmitted) + ", " +
			e.value(str(g.Key())) + ") OR size(" + e.name(attrAdmitted) + ") < " + e.value(num(int64(max)))),
		ExpressionAttributeNames:            e.names,
		ExpressionAttributeValues:           e.values,
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	out, err := s.client.UpdateItem(ctx, in)
	if err == nil {
		return Admission{Admitted: true, Groups: setSize(out.Attributes[attrAdmitted]) + setSize(out.Attributes[attrOverflow])}, nil
	}
	if _, ok := conditionFailed(err); !ok {
		return Admission{}, fmt.Errorf("admit group %s: %w", g.Key(), err)
	}
	// Full: count the group among the folded ones (a set, so a redelivery adds nothing),
	// and restart the item's retention as every sighting does (see Expiry).
	e = newExpr()
	out, err = s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:        aws.String(s.table),
		Key:              key(pk, skFloodSlots),
		UpdateExpression: aws.String("SET " + e.set(attrExpiresAt, s.expiresAt(g.Window)) + " ADD " + e.name(attrOverflow) + " " + e.value(member)),
		ConditionExpression: aws.String("attribute_not_exists(" + e.name(attrOverflow) + ") OR size(" + e.name(attrOverflow) + ") < " +
			e.value(num(MaxOverflowGroups))),
		ExpressionAttributeNames:            e.names,
		ExpressionAttributeValues:           e.values,
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return Admission{Groups: setSize(out.Attributes[attrAdmitted]) + setSize(out.Attributes[attrOverflow])}, nil
	}
	if old, ok := conditionFailed(err); ok {
		return Admission{Groups: setSize(old[attrAdmitted]) + setSize(old[attrOverflow])}, nil
	}
	return Admission{}, fmt.Errorf("fold group %s: %w", g.Key(), err)
}

func setSize(v types.AttributeValue) int {
	if ss, ok := v.(*types.AttributeValueMemberSS); ok {
		return len(ss.Value)
	}
	return 0
}
