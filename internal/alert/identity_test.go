package alert

import (
	"testing"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/audit"
)

func TestCloudTrailURL(t *testing.T) {
	for _, tc := range []struct {
		region, key, session, want string
	}{
		{"eu-west-1", "ASIAQEXAMPLEKEY00001", "alice",
			"https://eu-west-1.console.aws.amazon.com/cloudtrailv2/home?region=eu-west-1#/events?AccessKeyId=ASIAQEXAMPLEKEY00001"},
		// No access key: CloudTrail's user name of an assumed role is its session name.
		{"us-east-2", "", "alice@example.com",
			"https://us-east-2.console.aws.amazon.com/cloudtrailv2/home?region=us-east-2#/events?Username=alice%40example.com"},
		{"cn-north-1", "ASIAQEXAMPLEKEY00001", "", "https://cn-north-1.console.amazonaws.cn/cloudtrailv2/home?region=cn-north-1#/events?AccessKeyId=ASIAQEXAMPLEKEY00001"},
		{"us-gov-west-1", "ASIAQEXAMPLEKEY00001", "", "https://console.amazonaws-us-gov.com/cloudtrailv2/home?region=us-gov-west-1#/events?AccessKeyId=ASIAQEXAMPLEKEY00001"},
		// No region (replay without --region), or not a region name: the console's own.
		{"", "ASIAQEXAMPLEKEY00001", "", "https://console.aws.amazon.com/cloudtrailv2/home#/events?AccessKeyId=ASIAQEXAMPLEKEY00001"},
		{"evil.example/x?", "ASIAQEXAMPLEKEY00001", "", "https://console.aws.amazon.com/cloudtrailv2/home#/events?AccessKeyId=ASIAQEXAMPLEKEY00001"},
		// Values of a shape AWS never issues get no link at all.
		{"eu-west-1", "asia&x=<y>", "a b", ""},
		{"eu-west-1", "", "x#/../evil", ""},
	} {
		if got := CloudTrailURL(tc.region, tc.key, tc.session); got != tc.want {
			t.Errorf("CloudTrailURL(%q, %q, %q) = %q, want %q", tc.region, tc.key, tc.session, got, tc.want)
		}
	}
}

func TestIAMURL(t *testing.T) {
	for arn, want := range map[string]string{
		"arn:aws:iam::111122223333:role/Developer":               "https://console.aws.amazon.com/iam/home#/roles/details/Developer",
		"arn:aws:iam::111122223333:role/team/ops/Admin":          "https://console.aws.amazon.com/iam/home#/roles/details/Admin",
		"arn:aws:iam::111122223333:user/alice@example.com":       "https://console.aws.amazon.com/iam/home#/users/details/alice@example.com",
		"arn:aws-cn:iam::111122223333:role/Developer":            "https://console.amazonaws.cn/iam/home#/roles/details/Developer",
		"arn:aws-us-gov:iam::111122223333:role/Developer":        "https://console.amazonaws-us-gov.com/iam/home#/roles/details/Developer",
		"arn:aws:sts::111122223333:assumed-role/Developer/alice": "",
		"arn:aws:iam::111122223333:role/<!channel>":              "",
		"arn:aws:iam::111122223333:role/x\nFAKE":                 "",
		"arn:evil:iam::111122223333:role/Developer":              "",
		"https://evil.example/arn:aws:iam::111122223333:role/x":  "",
	} {
		if got := IAMURL(arn); got != want {
			t.Errorf("IAMURL(%q) = %q, want %q", arn, got, want)
		}
	}
}

func TestClassify(t *testing.T) {
	for ip, want := range map[string]string{
		"198.51.100.23": ClassPublic, "2001:db8::1": ClassPublic, "10.0.12.4": ClassPrivate, "172.16.0.1": ClassPrivate,
		"192.168.1.1": ClassPrivate, "fd00::1": ClassPrivate, "127.0.0.1": ClassLoopback, "::1": ClassLoopback,
		"169.254.169.254": ClassLinkLocal, "fe80::1%eth0": ClassLinkLocal, "::ffff:10.0.0.1": ClassPrivate,
		"0.0.0.0": ClassOther, "239.1.2.3": ClassOther, "0": ClassInvalid, "evil.example": ClassInvalid, "10.0.0.1:443": ClassInvalid, "": ClassInvalid,
	} {
		if got := classify(ip); got != want {
			t.Errorf("classify(%q) = %s, want %s", ip, got, want)
		}
	}
}

func TestUserKindOf(t *testing.T) {
	iam := []Identity{{Kind: IdentityIAM, Identity: audit.Identity{CanonicalARN: "arn:aws:iam::111122223333:role/Developer"}}}
	for _, tc := range []struct {
		user, uid string
		groups    []string
		ids       []Identity
		want      UserKind
	}{
		{"system:anonymous", "0", []string{"system:unauthenticated"}, nil, UserAnonymous},
		{"system:serviceaccount:ci:deployer", "5b1d", []string{"system:serviceaccounts"}, nil, UserServiceAccount},
		{"system:node:ip-10-0-3-15.eu-west-1.compute.internal", "aws-iam-authenticator:111122223333:AROAQEXAMPLENODE0001", []string{"system:nodes"}, iam, UserNode},
		{"alice", "aws-iam-authenticator:111122223333:AROAQEXAMPLEROLE0001", nil, nil, UserIAM},
		{"arn:aws:iam::111122223333:role/Developer", "", nil, iam, UserIAM}, // an access entry
		{"oidc:bob", "", []string{"system:authenticated"}, nil, UserOther},
	} {
		if got := UserKindOf(tc.user, tc.uid, tc.groups, tc.ids); got != tc.want {
			t.Errorf("UserKindOf(%q) = %s, want %s", tc.user, got, tc.want)
		}
	}
}

// TestIdentities: distinct identities, most recent first, bounded; a service-account
// token's pod and node; the session always marked as the caller's choice.
func TestIdentities(t *testing.T) {
	var aggs []aggregate.Aggregate
	for i := range MaxIdentities + 3 {
		aggs = append(aggs, aggregate.Aggregate{Identity: audit.Identity{AccessKeyID: "ASIAQEXAMPLEKEY0000" + string(rune('A'+i)), SessionName: "s"}})
	}
	aggs = append(aggs, aggs[0], aggregate.Aggregate{}) // a repeat, and an aggregate without identity
	ids, omitted := identities(aggs, "eu-west-1")
	if len(ids) != MaxIdentities || omitted != 3 {
		t.Fatalf("%d identities, %d omitted; want %d and 3", len(ids), omitted, MaxIdentities)
	}
	if !ids[0].SessionNameCallerChosen || ids[0].Kind != IdentityIAM || ids[0].AccessKeyID != "ASIAQEXAMPLEKEY0000A" {
		t.Errorf("first identity = %+v", ids[0])
	}
	sa, _ := identities([]aggregate.Aggregate{{Identity: audit.Identity{PodName: "web-1", NodeName: "ip-10-0-3-17"}}}, "")
	if len(sa) != 1 || sa[0].Kind != IdentityServiceAccount || sa[0].PodName != "web-1" || sa[0].NodeName != "ip-10-0-3-17" || sa[0].CloudTrailURL != "" {
		t.Errorf("service-account identity = %+v", sa)
	}
}
