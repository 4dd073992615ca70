package store

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
)

func TestGroupKey(t *testing.T) {
	w := time.Date(2026, 5, 1, 13, 0, 0, 0, time.FixedZone("CEST", 2*3600))
	long := strings.Repeat("u", MaxGroupKeyBytes+1)
	for _, tc := range []struct {
		group, want string
	}{
		{"alice", "rule#2026-05-01T11:00:00Z#alice"},
		{"a#b", "rule#2026-05-01T11:00:00Z#a#b"},
		{long, "rule#2026-05-01T11:00:00Z#sha256:"},
	} {
		got := GroupKey{Rule: "rule", Window: w, Group: tc.group}.Key()
		if !strings.HasPrefix(got, tc.want) || (tc.group != long && got != tc.want) {
			t.Errorf("Key(%.20q) = %.60q, want %q", tc.group, got, tc.want)
		}
	}
}

func TestCutAndList(t *testing.T) {
	if got := cut("short"); got != "short" {
		t.Errorf("cut(short) = %q", got)
	}
	long := strings.Repeat("é", MaxValueBytes) // two bytes per rune
	got := cut(long)
	if len(got) > MaxValueBytes || !strings.HasSuffix(got, aggregate.Truncated) || !strings.HasPrefix(got, "éé") {
		t.Errorf("cut(long) has %d bytes, suffix %q", len(got), got[len(got)-20:])
	}
	many := make([]string, MaxListValues+10)
	for i := range many {
		many[i] = "10.0.0.1"
	}
	many[len(many)-1] = "192.0.2.99" // the peer address
	l := list(many).(*types.AttributeValueMemberL).Value
	if len(l) != MaxListValues || stringValue(l[MaxListValues-2]) != "…[+11 more]" || stringValue(l[MaxListValues-1]) != "192.0.2.99" {
		t.Errorf("list of %d = %d entries, last two %q %q", len(many), len(l), stringValue(l[len(l)-2]), stringValue(l[len(l)-1]))
	}
	if l := list(many[:3]).(*types.AttributeValueMemberL).Value; len(l) != 3 {
		t.Errorf("list of 3 = %d entries", len(l))
	}
	if l := list(many[:MaxListValues]).(*types.AttributeValueMemberL).Value; len(l) != MaxListValues || stringValue(l[MaxListValues-1]) != "10.0.0.1" {
		t.Errorf("list of exactly %d = %d entries, last %q", MaxListValues, len(l), stringValue(l[len(l)-1]))
	}
	// Long attacker-controlled entries: the list stays within MaxListBytes.
	huge := make([]string, MaxListValues)
	for i := range huge {
		huge[i] = strings.Repeat("x", 5000)
	}
	l = list(huge).(*types.AttributeValueMemberL).Value
	size := 0
	for _, v := range l {
		size += len(stringValue(v))
	}
	last := stringValue(l[len(l)-2])
	if size > MaxListBytes || !strings.HasPrefix(last, "…[+") || len(l) < 3 || stringValue(l[len(l)-1]) != cut(huge[0]) {
		t.Errorf("list of %d × 5000 bytes = %d entries, %d bytes, last %q", len(huge), len(l), size, last)
	}
}

func TestUniqueSorted(t *testing.T) {
	got := strings.Join(uniqueSorted([]string{"b", "a", "b", "c", "a"}), ",")
	if got != "a,b,c" {
		t.Errorf("uniqueSorted = %s", got)
	}
	if uniqueSorted(nil) != nil {
		t.Error("uniqueSorted(nil) != nil")
	}
}
