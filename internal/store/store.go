// Package store keeps the detector's durable state in one DynamoDB table: the count of
// every aggregate per window, made idempotent across Lambda redeliveries, and one alert
// item per alert group, claimed with a lease before publishing so that exactly one alert
// goes out per group and window.
//
// # Table layout
//
// The table has a string partition key pk and a string sort key sk. All items of one alert
// group share a partition:
//
//	pk = "<rule>#<window start, RFC 3339 UTC>#<group key>"
//	sk = "agg#<aggregate key>"   the first item of an aggregate (stats row) of the group
//	sk = "agg#<aggregate key>#N" its overflow items, N = 2, 3, ... (see Idempotent counting)
//	sk = "alert"                 the group's alert item (claim, lease, SNS message id)
//
// A group key longer than MaxGroupKeyBytes is replaced by "sha256:<hex>" in pk (the key
// itself is kept in the group attribute). Every item carries expiresAt, the table's TTL
// attribute, in epoch seconds (see Expiry below).
//
// # Expiry
//
// An item's expiresAt is the later of its window's end and the time of the write (rounded
// up to the hour), plus the retention: expiresAt = max(window end, now) + retention. Every write sets it again, and
// a redelivery that finds its events already counted (or its alert already sent) moves it
// forward too, so an item lives at least the retention after the last time its events were
// seen, whatever the age of the events. Idempotency therefore holds for late data, for a
// redrive from the failure queue and for a replay of old logs, as long as two sightings of
// the same log events are never further apart than the retention (the configuration checks
// that the retention covers the failure queue's retention plus the maximum event age).
// Measuring from the window's end alone would write items that are already expired when
// the events are older than the retention: TTL would delete them, and the next redelivery
// would count and alert again.
//
// # Idempotent counting
//
// An aggregate carries the CloudWatch log event ids it counted. They are stored in the
// string set ids, and an UpdateItem adds the count and the ids in one conditional write
// whose condition says none of the ids is present yet. When the condition fails, the old
// item (ReturnValuesOnConditionCheckFailure=ALL_OLD) tells which ids are already counted,
// and the write is retried with the others only. So each log event is counted exactly
// once, whatever the regrouping of the same events into deliveries and whatever the races
// between invocations. Bounds:
//
//   - At most MaxIDsPerWrite ids go into one condition (a DynamoDB expression is limited to
//     4 KB and 300 operators): the sorted ids of an aggregate are written in chunks of that
//     size, one conditional write each.
//   - An item takes ids only while its set holds fewer than MaxStoredIDs (so it ends below
//     MaxStoredIDs+MaxIDsPerWrite, and with the other bounds under about 200 KB, half of
//     DynamoDB's 400 KB item limit). Further ids go to overflow items of the same
//     aggregate, "agg#<key>#2", "#3", and so on, each written only once the previous one is
//     full. A full item never changes again, so a write learns it from its failed
//     condition once per Record call, drops the ids that item holds and goes on to the next
//     one: an id is always looked for in every item before the one it is added to. A write
//     that reads a full item also restarts its retention, so the items of an aggregate
//     never expire before the items after them. Aggregates reads the items back as one
//     aggregate (counts summed, earliest firstSeen, latest lastSeen).
//   - Aggregates without ids (raw lines replayed from files) are simply added.
//
// Cost: a delivery contributing d ids to an aggregate makes ceil(d/MaxIDsPerWrite)
// conditional writes, plus one retry of a chunk for each write whose condition finds some
// of its ids already counted (an overlap with an earlier or a concurrent delivery), plus
// one failed write per full item it passes (an aggregate of n stored ids has about
// n/MaxStoredIDs of them), plus a write that restarts an item's retention or widens its
// firstSeen or lastSeen when those are behind (late data). A full item weighs up to about
// 200 KB and DynamoDB charges a write by item size, so such items are costly: they only
// exist for aggregates of more than MaxStoredIDs events, which the aggregate key (it
// includes the microsecond requestReceivedTimestamp) makes rare. Requests per delivery
// therefore grow with its distinct aggregates and alert groups, and with its events only
// beyond MaxIDsPerWrite events in one aggregate; they run with bounded concurrency.
//
// # Bounded rows
//
// Each request is its own aggregate (the microsecond requestReceivedTimestamp is a
// by-field), so the number of aggregates is the attacker's to choose. A group keeps at
// most Options.MaxRowsPerGroup of them: the item sk = "rows" holds the string set keys of
// the admitted aggregate keys, and the events of every other aggregate of the group are
// added to its overflow aggregate (key aggregate.OverflowKey, items "agg#overflow",
// "agg#overflow#2", ...), with their ids, so counted exactly once as well. A key is
// admitted by a conditional write that succeeds only on the set it was decided on; the set
// only grows and never past the bound, so an admitted key stays admitted and a refused key
// stays refused: an event is counted in one place whatever the order, regrouping and
// concurrency of deliveries. Every Record writes the rows item or restarts its retention,
// so it never expires before the group's aggregates.
//
// Request and response bodies of audit events never reach this package: the aggregate
// fields do not include them.
package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
)

// Defaults of Options.
const (
	// DefaultRetention covers the template's failure queue (14 days) plus the maximum
	// event age of asynchronous invocations (6 hours): see RedeliveryHorizon.
	DefaultRetention   = 15 * 24 * time.Hour
	DefaultConcurrency = 8
)

// Bounds of the idempotency bookkeeping (see the package documentation).
const (
	// MaxIDsPerWrite is the most event ids checked in one conditional write. Each id costs
	// three operators of the condition, and DynamoDB allows 300 in one expression.
	MaxIDsPerWrite = 90
	// MaxStoredIDs is the size at which an item's ids set is full: further ids of the
	// aggregate go to its next item.
	MaxStoredIDs = 2000
	// MaxGroupKeyBytes is the longest group key used verbatim in a partition key.
	MaxGroupKeyBytes = aggregate.MaxGroupKeyBytes
	// MaxValueBytes, MaxListValues and MaxListBytes bound the stored values (see
	// aggregate.Cut and aggregate.CutList); with the other bounds an aggregate item stays
	// under about 200 KB (13 fields, 9 identifiers, two lists, 2,000 ids), half of
	// DynamoDB's 400 KB item limit, whatever the attacker-controlled values.
	MaxValueBytes = aggregate.MaxValueBytes
	MaxListValues = aggregate.MaxListValues
	MaxListBytes  = aggregate.MaxListBytes
)

// ErrClaimLost is returned by MarkSent and Release when the alert item is no longer
// claimed with the given token (the lease expired and another invocation took it).
var ErrClaimLost = errors.New("alert claim lost")

// Options configure a Store.
type Options struct {
	// Table is the DynamoDB table name.
	Table string
	// Retention is how long items are kept after the later of their window's end and
	// their last write (DefaultRetention if 0).
	Retention time.Duration
	// Concurrency bounds the writes in flight for one call (DefaultConcurrency if 0).
	Concurrency int
	// MaxRowsPerGroup bounds the aggregates stored per alert group and window: the events
	// of further aggregates are folded into the group's overflow aggregate (see Bounded
	// rows). DefaultMaxRowsPerGroup if 0; negative means no bound.
	MaxRowsPerGroup int
	// Now is the clock (time.Now if nil).
	Now func() time.Time
}

// Store reads and writes the detector's table.
type Store struct {
	client      *dynamodb.Client
	table       string
	retention   time.Duration
	concurrency int
	maxRows     int // <= 0: no bound
	now         func() time.Time
}

// New returns a Store using client and the table named in opts.
func New(client *dynamodb.Client, opts Options) *Store {
	s := &Store{
		client:      client,
		table:       opts.Table,
		retention:   opts.Retention,
		concurrency: opts.Concurrency,
		maxRows:     opts.MaxRowsPerGroup,
		now:         opts.Now,
	}
	if s.maxRows == 0 {
		s.maxRows = DefaultMaxRowsPerGroup
	}
	if s.retention <= 0 {
		s.retention = DefaultRetention
	}
	if s.concurrency <= 0 {
		s.concurrency = DefaultConcurrency
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// GroupKey is an alert group, as package aggregate defines it; the store keeps a group's
// items under its Key.
type GroupKey = aggregate.AlertGroup

// ExpiresAt returns the TTL of an item of window written at now: the later of the
// window's end and now, rounded up to a whole hour, plus retention (see Expiry in the
// package documentation). The rounding keeps redeliveries within the same hour from
// rewriting an expiry that only moved by seconds.
func ExpiresAt(window, now time.Time, retention time.Duration) time.Time {
	end := window.Add(aggregate.WindowSize)
	if now.After(end) {
		end = now
		if r := now.Truncate(time.Hour); !r.Equal(now) {
			end = r.Add(time.Hour)
		}
	}
	return end.Add(retention)
}

// expiresAt returns the TTL attribute of an item of window written now.
func (s *Store) expiresAt(window time.Time) types.AttributeValue {
	return num(ExpiresAt(window, s.now(), s.retention).Unix())
}

// touch moves the expiresAt of an existing item forward to what a write now would set, so
// that a redelivery which changes nothing else still restarts the item's retention. old is
// the item as a failed condition returned it: when its expiresAt is already that late (the
// usual case for data that is not late), no request is made. It never creates an item and
// never moves expiresAt back.
func (s *Store) touch(ctx context.Context, old map[string]types.AttributeValue, pk, sk string, window time.Time) error {
	exp := s.expiresAt(window)
	if numberValue(old[attrExpiresAt]) >= numberValue(exp) {
		return nil
	}
	e := newExpr()
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:        aws.String(s.table),
		Key:              key(pk, sk),
		UpdateExpression: aws.String("SET " + e.set(attrExpiresAt, exp)),
		ConditionExpression: aws.String("attribute_exists(" + e.name(attrPK) + ") AND " +
			e.name(attrExpiresAt) + " < " + e.value(exp)),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.values,
	})
	if _, ok := conditionFailed(err); ok {
		return nil // gone, or already expiring later
	}
	if err != nil {
		return fmt.Errorf("refresh expiry of %s %s: %w", pk, sk, err)
	}
	return nil
}

// Sort keys and attribute names.
const (
	skAlert       = "alert"
	skAggPrefix   = "agg#"
	attrPK        = "pk"
	attrSK        = "sk"
	attrExpiresAt = "expiresAt"
	attrIDs       = "ids"
)

// timeFormat is fixed-width UTC with microseconds, so stored times sort as strings.
const timeFormat = "2006-01-02T15:04:05.000000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

func str(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func num(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: str(pk), attrSK: str(sk)}
}

// newToken returns a random claim token.
func newToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("make claim token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// conditionFailed returns the item reported by a failed condition, and whether err was one.
func conditionFailed(err error) (map[string]types.AttributeValue, bool) {
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return ccf.Item, true
	}
	return nil, false
}

// CreateTable creates the detector's table as the SAM template declares it (pk/sk
// strings, on-demand billing) and enables TTL on expiresAt. It is meant for local runs
// and tests; in AWS the template creates the table.
func CreateTable(ctx context.Context, client *dynamodb.Client, name string) error {
	_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(attrPK), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrSK), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(attrPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(attrSK), KeyType: types.KeyTypeRange},
		},
	})
	if err != nil {
		return fmt.Errorf("create table %s: %w", name, err)
	}
	waiter := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 100 * time.Millisecond
		o.MaxDelay = time.Second
	})
	if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, time.Minute); err != nil {
		return fmt.Errorf("wait for table %s: %w", name, err)
	}
	_, err = client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(attrExpiresAt),
			Enabled:       aws.Bool(true),
		},
	})
	if err != nil {
		return fmt.Errorf("enable TTL on table %s: %w", name, err)
	}
	return nil
}
