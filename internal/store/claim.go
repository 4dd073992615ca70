package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Outcome is the result of trying to claim an alert group.
type Outcome int

// Claim outcomes.
const (
	// Claimed: this caller holds the claim and must publish, then MarkSent or Release.
	Claimed Outcome = iota + 1
	// AlreadySent: the group's alert was published before; nothing to do.
	AlreadySent
	// HeldByOther: another invocation holds an unexpired claim; it will publish (or
	// release, and its retry will).
	HeldByOther
)

// String returns the outcome's name.
func (o Outcome) String() string {
	switch o {
	case Claimed:
		return "claimed"
	case AlreadySent:
		return "alreadySent"
	case HeldByOther:
		return "heldByOther"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// Alert item states.
const (
	stateClaimed = "claimed"
	stateSent    = "sent"
)

// Claim is the result of Claim; with Outcome Claimed it is the handle for MarkSent and
// Release.
type Claim struct {
	Group   GroupKey
	Outcome Outcome
	// Token identifies this caller's claim (Claimed only).
	Token string
	// LeaseUntil is when the claim expires (Claimed and HeldByOther).
	LeaseUntil time.Time
	// MessageID is the SNS message id of the alert already sent (AlreadySent only).
	MessageID string
}

// Claim tries to take the right to publish the alert of group g for lease. It succeeds
// when the group has no alert item yet, or when the item is claimed but its lease has
// expired or was released.
func (s *Store) Claim(ctx context.Context, g GroupKey, lease time.Duration) (Claim, error) {
	token, err := newToken()
	if err != nil {
		return Claim{}, err
	}
	now := s.now()
	until := now.Add(lease)
	e := newExpr()
	update := "SET " + e.set("state", str(stateClaimed)) +
		", " + e.set("token", str(token)) +
		", " + e.set("leaseUntil", num(until.UnixMilli())) +
		", " + e.set("claimedAt", str(formatTime(now))) +
		", " + e.set("rule", str(g.Rule)) +
		", " + e.set("window", str(g.Window.UTC().Format(time.RFC3339))) +
		", " + e.set("group", str(g.Group)) +
		", " + e.set(attrExpiresAt, s.expiresAt(g.Window)) +
		" ADD " + e.name("attempts") + " " + e.value(num(1))
	cond := "attribute_not_exists(" + e.name(attrPK) + ") OR (" +
		e.name("state") + " = " + e.value(str(stateClaimed)) + " AND " +
		e.name("leaseUntil") + " < " + e.value(num(now.UnixMilli())) + ")"
	_, err = s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(s.table),
		Key:                                 key(g.PartitionKey(), skAlert),
		UpdateExpression:                    aws.String(update),
		ConditionExpression:                 aws.String(cond),
		ExpressionAttributeNames:            e.names,
		ExpressionAttributeValues:           e.values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return Claim{Group: g, Outcome: Claimed, Token: token, LeaseUntil: until}, nil
	}
	old, ok := conditionFailed(err)
	if !ok {
		return Claim{}, fmt.Errorf("claim alert %s: %w", g.PartitionKey(), err)
	}
	if stringValue(old["state"]) == stateSent {
		// A redelivery of a sent group: keep the record of the alert as long as the
		// aggregates it covers.
		if err := s.touch(ctx, old, g.PartitionKey(), skAlert, g.Window); err != nil {
			return Claim{}, fmt.Errorf("claim alert %s: %w", g.PartitionKey(), err)
		}
		return Claim{Group: g, Outcome: AlreadySent, MessageID: stringValue(old["messageID"])}, nil
	}
	return Claim{Group: g, Outcome: HeldByOther, LeaseUntil: time.UnixMilli(numberValue(old["leaseUntil"]))}, nil
}

// MarkSent records that the claimed alert was published as messageID. It returns
// ErrClaimLost when the claim is no longer c's.
func (s *Store) MarkSent(ctx context.Context, c Claim, messageID string) error {
	e := newExpr()
	update := "SET " + e.set("state", str(stateSent)) +
		", " + e.set("messageID", str(messageID)) +
		", " + e.set("sentAt", str(formatTime(s.now()))) +
		", " + e.set(attrExpiresAt, s.expiresAt(c.Group.Window)) +
		" REMOVE " + e.name("leaseUntil")
	if err := s.updateClaimed(ctx, c, e, update); err != nil {
		return fmt.Errorf("mark alert %s sent: %w", c.Group.PartitionKey(), err)
	}
	return nil
}

// Release gives up the claim after a failed publish, so that the next delivery can claim
// the group at once instead of waiting for the lease to expire. It returns ErrClaimLost
// when the claim is no longer c's.
func (s *Store) Release(ctx context.Context, c Claim) error {
	e := newExpr()
	update := "SET " + e.set("leaseUntil", num(0)) + ", " + e.set(attrExpiresAt, s.expiresAt(c.Group.Window))
	if err := s.updateClaimed(ctx, c, e, update); err != nil {
		return fmt.Errorf("release alert %s: %w", c.Group.PartitionKey(), err)
	}
	return nil
}

// updateClaimed applies update to the alert item if it is still claimed with c's token.
func (s *Store) updateClaimed(ctx context.Context, c Claim, e *expr, update string) error {
	cond := e.name("state") + " = " + e.value(str(stateClaimed)) + " AND " +
		e.name("token") + " = " + e.value(str(c.Token))
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key(c.Group.PartitionKey(), skAlert),
		UpdateExpression:          aws.String(update),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.values,
	})
	if _, ok := conditionFailed(err); ok {
		return ErrClaimLost
	}
	return err
}

func numberValue(v types.AttributeValue) int64 {
	if nv, ok := v.(*types.AttributeValueMemberN); ok {
		i, _ := strconv.ParseInt(nv.Value, 10, 64)
		return i
	}
	return 0
}
