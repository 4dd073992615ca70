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
//
//	claimed  an invocation holds the claim until leaseUntil and may be publishing
//	sent     the alert was published (messageID)
//	released the holder gave the claim back: its publish certainly did not reach SNS
//	unknown  the holder's publish may or may not have reached SNS (5xx, reset, deadline)
//
// A claim is free when there is no item, the item is released or unknown, or its lease has
// expired. Taking over an unknown claim, or a claimed one whose lease expired (its holder
// may have published and died before recording it), may duplicate an alert: the new
// holder learns it from Claim.PossibleDuplicate.
const (
	stateClaimed  = "claimed"
	stateSent     = "sent"
	stateReleased = "released"
	stateUnknown  = "unknown"
)

// Claim is the result of Claim; with Outcome Claimed it is the handle for MarkSent,
// Release and MarkUnknown.
type Claim struct {
	Group   GroupKey
	Outcome Outcome
	// Token identifies this caller's claim (Claimed only).
	Token string
	// LeaseUntil is when the claim expires (Claimed and HeldByOther).
	LeaseUntil time.Time
	// MessageID is the SNS message id of the alert already sent (AlreadySent only).
	MessageID string
	// PossibleDuplicate is set (Claimed only) when an earlier holder's publish may have
	// reached SNS: its outcome was unknown, or it never recorded one. The alert then goes
	// out again, with the same id, flagged as a possible duplicate.
	PossibleDuplicate bool
	// Reported is what the alert already sent said (AlreadySent only; zero when the item
	// was marked sent without it).
	Reported Snapshot

	// pk and sk locate the claim item; empty means the group's first-alert item.
	pk, sk string
}

// item returns the key of the claim item: the group's alert item, unless the claim is on
// an escalation or report item.
func (c Claim) item() (pk, sk string) {
	if c.pk == "" {
		return c.Group.Key(), skAlert
	}
	return c.pk, c.sk
}

// name is the claim item in error messages.
func (c Claim) name() string {
	pk, sk := c.item()
	return pk + " " + sk
}

// Claim tries to take the right to publish the alert of group g for lease. It succeeds
// when the group has no alert item yet, or when its item is released, unknown, or claimed
// with an expired lease. The write is safe to repeat: the SDK's retry of a claim that was
// applied but whose answer was lost finds its own token and succeeds.
func (s *Store) Claim(ctx context.Context, g GroupKey, lease time.Duration) (Claim, error) {
	return s.claimItem(ctx, g, g.Key(), skAlert, lease)
}

// claimItem is Claim on the claim item (pk, sk) of g: the first alert, an escalation or a
// report part. Every claim item follows the same protocol.
func (s *Store) claimItem(ctx context.Context, g GroupKey, pk, sk string, lease time.Duration) (Claim, error) {
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
	cond := "attribute_not_exists(" + e.name(attrPK) + ") OR " +
		e.name("state") + " IN (" + e.value(str(stateReleased)) + ", " + e.value(str(stateUnknown)) + ") OR (" +
		e.name("state") + " = " + e.value(str(stateClaimed)) + " AND " +
		e.name("leaseUntil") + " < " + e.value(num(now.UnixMilli())) + ")"
	out, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(s.table),
		Key:                                 key(pk, sk),
		UpdateExpression:                    aws.String(update),
		ConditionExpression:                 aws.String(cond),
		ExpressionAttributeNames:            e.names,
		ExpressionAttributeValues:           e.values,
		ReturnValues:                        types.ReturnValueAllOld,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		// The old item says whether an earlier holder may already have published.
		prev := stringValue(out.Attributes["state"])
		dup := prev == stateUnknown || prev == stateClaimed || stringValue(out.Attributes["possibleDuplicate"]) == "true"
		if dup {
			if err := s.flag(ctx, Claim{Group: g, Token: token, pk: pk, sk: sk}); err != nil {
				return Claim{}, err
			}
		}
		return Claim{Group: g, Outcome: Claimed, Token: token, LeaseUntil: until, PossibleDuplicate: dup, pk: pk, sk: sk}, nil
	}
	old, ok := conditionFailed(err)
	if !ok {
		return Claim{}, fmt.Errorf("claim alert %s %s: %w", pk, sk, err)
	}
	if stringValue(old["token"]) == token {
		// The SDK repeated a claim that had been applied: it is ours. Whether an earlier
		// holder existed is on the item, since the first application recorded it.
		return Claim{Group: g, Outcome: Claimed, Token: token, LeaseUntil: until,
			PossibleDuplicate: stringValue(old["possibleDuplicate"]) == "true", pk: pk, sk: sk}, nil
	}
	if stringValue(old["state"]) == stateSent {
		// A redelivery of a sent group: keep the record of the alert as long as the
		// aggregates it covers.
		if err := s.touch(ctx, old, pk, sk, g.Window); err != nil {
			return Claim{}, fmt.Errorf("claim alert %s %s: %w", pk, sk, err)
		}
		return Claim{Group: g, Outcome: AlreadySent, MessageID: stringValue(old["messageID"]),
			Reported: snapshotOf(old), pk: pk, sk: sk}, nil
	}
	return Claim{Group: g, Outcome: HeldByOther, LeaseUntil: time.UnixMilli(numberValue(old["leaseUntil"])), pk: pk, sk: sk}, nil
}

// flag records on a claim just taken over that its alert may be a duplicate, so that a
// repeat of the claim (the SDK's retry) and later holders know it too.
func (s *Store) flag(ctx context.Context, c Claim) error {
	e := newExpr()
	err := s.updateClaimed(ctx, c, e, "SET "+e.set("possibleDuplicate", str("true")), stateClaimed)
	if err != nil {
		return fmt.Errorf("flag alert %s as a possible duplicate: %w", c.name(), err)
	}
	return nil
}

// MarkSent records that the claimed alert was published as messageID. It returns
// ErrClaimLost when the claim is no longer c's. It is safe to repeat: finding the item
// already sent with c's token and messageID is success.
func (s *Store) MarkSent(ctx context.Context, c Claim, messageID string) error {
	return s.MarkSentWith(ctx, c, messageID, Snapshot{})
}

// MarkSentWith is MarkSent that also records what the published alert said, so that a
// later escalation can say what grew since (see Snapshot). A zero snapshot records nothing.
func (s *Store) MarkSentWith(ctx context.Context, c Claim, messageID string, snap Snapshot) error {
	e := newExpr()
	update := "SET " + snap.set(e) + e.set("state", str(stateSent)) +
		", " + e.set("messageID", str(messageID)) +
		", " + e.set("sentAt", str(formatTime(s.now()))) +
		", " + e.set(attrExpiresAt, s.expiresAt(c.Group.Window)) +
		" REMOVE " + e.name("leaseUntil")
	if err := s.updateClaimed(ctx, c, e, update, stateSent, "messageID", messageID); err != nil {
		return fmt.Errorf("mark alert %s sent: %w", c.name(), err)
	}
	return nil
}

// Release gives up the claim after a publish that certainly did not reach SNS, so that the
// next delivery can claim the group at once, without a duplicate flag. It returns
// ErrClaimLost when the claim is no longer c's; repeating it is success.
func (s *Store) Release(ctx context.Context, c Claim) error {
	e := newExpr()
	update := "SET " + e.set("state", str(stateReleased)) + ", " + e.set("leaseUntil", num(0)) +
		", " + e.set(attrExpiresAt, s.expiresAt(c.Group.Window))
	if err := s.updateClaimed(ctx, c, e, update, stateReleased); err != nil {
		return fmt.Errorf("release alert %s: %w", c.name(), err)
	}
	return nil
}

// MarkUnknown records that the claimed alert's publish may or may not have reached SNS
// (a server error, a reset connection, a deadline). The claim is free at once, and whoever
// takes it next publishes the alert again flagged as a possible duplicate, so the alert is
// never lost and a duplicate is recognisable. It returns ErrClaimLost when the claim is no
// longer c's; repeating it is success.
func (s *Store) MarkUnknown(ctx context.Context, c Claim) error {
	e := newExpr()
	update := "SET " + e.set("state", str(stateUnknown)) + ", " + e.set("leaseUntil", num(0)) +
		", " + e.set("unknownAt", str(formatTime(s.now()))) +
		", " + e.set(attrExpiresAt, s.expiresAt(c.Group.Window)) +
		" ADD " + e.name("unknownOutcomes") + " " + e.value(num(1))
	if err := s.updateClaimed(ctx, c, e, update, stateUnknown); err != nil {
		return fmt.Errorf("mark alert %s outcome unknown: %w", c.name(), err)
	}
	return nil
}

// updateClaimed applies update to the alert item if it is still claimed with c's token.
// When the condition fails, the old item tells whether this very update was applied
// already (the SDK repeats a request whose answer was lost): the item is in state after
// with c's token (and attr = value, when given), which is success; anything else is
// ErrClaimLost.
func (s *Store) updateClaimed(ctx context.Context, c Claim, e *expr, update, after string, attrValue ...string) error {
	cond := e.name("state") + " = " + e.value(str(stateClaimed)) + " AND " +
		e.name("token") + " = " + e.value(str(c.Token))
	pk, sk := c.item()
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(s.table),
		Key:                                 key(pk, sk),
		UpdateExpression:                    aws.String(update),
		ConditionExpression:                 aws.String(cond),
		ExpressionAttributeNames:            e.names,
		ExpressionAttributeValues:           e.values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	old, failed := conditionFailed(err)
	if !failed {
		return err
	}
	if old != nil && stringValue(old["token"]) == c.Token && stringValue(old["state"]) == after &&
		(len(attrValue) < 2 || stringValue(old[attrValue[0]]) == attrValue[1]) {
		return nil
	}
	return ErrClaimLost
}

func numberValue(v types.AttributeValue) int64 {
	if nv, ok := v.(*types.AttributeValueMemberN); ok {
		i, _ := strconv.ParseInt(nv.Value, 10, 64)
		return i
	}
	return 0
}
