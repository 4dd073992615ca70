package aggregate_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/audit"
	"github.com/eks-unauthorized-access/detector/internal/detect"
)

const prod = "/aws/eks/prod-cluster/cluster"

var prodSrc = aggregate.Source{Owner: "111122223333", LogGroup: prod, Cluster: "prod-cluster"}

func fields(user string, ips ...string) detect.Fields {
	return detect.Fields{
		Namespace: "kube-system", Resource: "secrets", RequestReceivedTimestamp: "2026-11-24T08:15:03.123456Z",
		RequestURI: "/api/v1/namespaces/kube-system/secrets", Code: "403", Message: "forbidden",
		SrcIPs: ips, Stage: "ResponseComplete", Groups: []string{"system:authenticated", "devs"},
		UID: "0", User: user, UserAgent: "kubectl", Verb: "create",
	}
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestAccumulator(t *testing.T) {
	acc := aggregate.New(detect.UnauthorizedAccess, aggregate.GroupByUser)
	src := aggregate.Source{Owner: "111122223333", LogGroup: prod, LogStream: "kube-apiserver-audit-a", Cluster: "prod-cluster"}
	f := fields("alice", "198.51.100.23")
	adds := []struct {
		src  aggregate.Source
		time string
		id   string
		dup  bool
	}{
		{src, "2026-11-24T08:15:03Z", "1", false},
		{src, "2026-11-24T08:59:59.999Z", "2", false},
		{src, "2026-11-24T08:10:00Z", "1", true},  // redelivered id: not counted
		{src, "2026-11-24T09:00:00Z", "3", false}, // next window
		{aggregate.Source{Owner: "111122223333", LogGroup: prod, LogStream: "kube-apiserver-audit-b"}, "2026-11-24T08:20:00Z", "", false},
		{aggregate.Source{Owner: "111122223333", LogGroup: prod}, "2026-11-24T08:21:00Z", "", false}, // raw lines each count
		{aggregate.Source{LogGroup: "/aws/eks/staging/cluster"}, "2026-11-24T08:30:00Z", "1", false}, // same id, other group
	}
	for i, a := range adds {
		if dup := acc.Add(a.src, detect.Match{Fields: f, Time: at(a.time)}, a.id); dup != a.dup {
			t.Errorf("add %d: duplicate=%v, want %v", i, dup, a.dup)
		}
	}
	aggs := acc.Aggregates()
	if len(aggs) != 3 || acc.Len() != 3 {
		t.Fatalf("got %d aggregates, want 3: %+v", len(aggs), aggs)
	}
	// Ordered by window, then first seen.
	first, staging, next := aggs[0], aggs[1], aggs[2]
	if first.Source.LogGroup != prod || staging.Source.LogGroup != "/aws/eks/staging/cluster" || !next.Window.Equal(at("2026-11-24T09:00:00Z")) {
		t.Fatalf("unexpected order: %+v", aggs)
	}
	if first.Count != 4 || !first.Window.Equal(at("2026-11-24T08:00:00Z")) ||
		!first.FirstSeen.Equal(at("2026-11-24T08:15:03Z")) || !first.LastSeen.Equal(at("2026-11-24T08:59:59.999Z")) {
		t.Errorf("first window aggregate: %+v", first)
	}
	if got := first.EventIDs; len(got) != 2 || got[0] != "1" || got[1] != "2" {
		t.Errorf("EventIDs = %v, want [1 2]", got)
	}
	if first.Source.LogStream != "kube-apiserver-audit-b" || first.Rule != detect.UnauthorizedAccess.ID {
		t.Errorf("source/rule: %+v %q", first.Source, first.Rule)
	}
	if first.Key != next.Key || first.Group != next.Group {
		t.Error("same fields and log group must keep key and group across windows")
	}
	if staging.Key == first.Key || staging.Group == first.Group {
		t.Error("another log group must not share key or group")
	}
	if len(first.Key) != 32 {
		t.Errorf("key %q: want 32 hex digits", first.Key)
	}
}

func TestKeyIsUnambiguous(t *testing.T) {
	a, b := fields("alice", "10.0.0.1,10.0.0.2"), fields("alice", "10.0.0.1", "10.0.0.2")
	if aggregate.KeyOf(prodSrc, a) == aggregate.KeyOf(prodSrc, b) {
		t.Error("a list of one joined value hashes like two values")
	}
	c, d := fields("alice", "10.0.0.1"), fields("alice", "10.0.0.1")
	c.Namespace, c.Resource = "ab", "c"
	d.Namespace, d.Resource = "a", "bc"
	if aggregate.KeyOf(prodSrc, c) == aggregate.KeyOf(prodSrc, d) {
		t.Error("adjacent fields are ambiguous")
	}
	c2 := fields("alice", "10.0.0.1") // an equal value built separately
	c2.Namespace, c2.Resource = "ab", "c"
	if aggregate.KeyOf(prodSrc, c) != aggregate.KeyOf(prodSrc, c2) {
		t.Error("key is not stable")
	}
}

func TestGroupKey(t *testing.T) {
	alice1 := fields("alice", "10.0.0.1")
	alice1b := alice1
	alice1b.Resource = "pods"
	alice2 := fields("alice", "10.0.0.2")
	bob := fields("bob", "10.0.0.1")
	// The same peer behind a forged X-Forwarded-For, and a forged entry equal to alice1's peer.
	alice1XFF := fields("alice", "203.0.113.7", "10.0.0.1")
	alice2XFF := fields("alice", "10.0.0.1", "10.0.0.2")
	key := func(by aggregate.GroupBy, f detect.Fields) string {
		return aggregate.GroupKey(by, prodSrc, f, aggregate.KeyOf(prodSrc, f))
	}
	for _, tc := range []struct {
		by        aggregate.GroupBy
		x, y      detect.Fields
		sameGroup bool
	}{
		{aggregate.GroupByUser, alice1, alice2, true},
		{aggregate.GroupByUser, alice1, bob, false},
		{aggregate.GroupByUserSrcIP, alice1, alice1b, true},
		{aggregate.GroupByUserSrcIP, alice1, alice2, false},
		{aggregate.GroupByUserSrcIP, alice1, alice1XFF, true},
		{aggregate.GroupByUserSrcIP, alice1, alice2XFF, false},
		{aggregate.GroupByUserSrcIP, alice1, bob, false},
		{aggregate.GroupByAggregate, alice1, alice1b, false},
		{aggregate.GroupByAggregate, alice1, alice1, true},
	} {
		if same := key(tc.by, tc.x) == key(tc.by, tc.y); same != tc.sameGroup {
			t.Errorf("%s: %s/%v vs %s/%v: same group %v, want %v", tc.by, tc.x.User, tc.x.SrcIPs, tc.y.User, tc.y.SrcIPs, same, tc.sameGroup)
		}
	}
	other := prodSrc
	other.LogGroup = "/aws/eks/other/cluster"
	if aggregate.GroupKey(aggregate.GroupByUser, prodSrc, alice1, "") == aggregate.GroupKey(aggregate.GroupByUser, other, alice1, "") {
		t.Error("two clusters share an alert group")
	}
	// The same log group name in another account (the cross-account Kinesis path).
	otherAccount := prodSrc
	otherAccount.Owner = "444455556666"
	for _, by := range []aggregate.GroupBy{aggregate.GroupByUser, aggregate.GroupByUserSrcIP} {
		if aggregate.GroupKey(by, prodSrc, alice1, "") == aggregate.GroupKey(by, otherAccount, alice1, "") {
			t.Errorf("%s: two accounts share an alert group", by)
		}
	}
	if aggregate.KeyOf(prodSrc, alice1) == aggregate.KeyOf(otherAccount, alice1) {
		t.Error("two accounts share an aggregate")
	}
}

// TestGroupByPeer: five requests by one user through one peer, each with a different
// X-Forwarded-For, are five aggregates in one alert group with ALERT_GROUP_BY=user,src_ip.
func TestGroupByPeer(t *testing.T) {
	acc := aggregate.New(detect.UnauthorizedAccess, aggregate.GroupByUserSrcIP)
	for i := range 5 {
		f := fields("alice", "203.0.113."+string(rune('1'+i)), "198.51.100.23")
		f.RequestReceivedTimestamp = "2026-11-24T08:15:0" + string(rune('0'+i)) + ".000000Z"
		acc.Add(prodSrc, detect.Match{Fields: f, Time: at(f.RequestReceivedTimestamp)}, "")
	}
	aggs := acc.Aggregates()
	groups := map[string]int{}
	for _, a := range aggs {
		groups[a.Group]++
	}
	if len(aggs) != 5 || len(groups) != 1 {
		t.Errorf("%d aggregates in %d groups, want 5 in 1", len(aggs), len(groups))
	}
}

func TestParseGroupBy(t *testing.T) {
	for in, want := range map[string]aggregate.GroupBy{
		"": aggregate.GroupByUser, "user": aggregate.GroupByUser, "User, src_ip": aggregate.GroupByUserSrcIP,
		"aggregate": aggregate.GroupByAggregate, "cluster": "",
	} {
		got, err := aggregate.ParseGroupBy(in)
		if got != want || (err != nil) != (want == "") {
			t.Errorf("ParseGroupBy(%q) = %q, %v", in, got, err)
		}
	}
}

func TestClusterFromLogGroup(t *testing.T) {
	for in, want := range map[string]string{
		"/aws/eks/prod-cluster/cluster": "prod-cluster",
		"/aws/eks/prod-cluster":         "",
		"/aws/eks//cluster":             "",
		"/aws/eks/a/b/cluster":          "",
		"/aws/lambda/fn":                "",
		"":                              "",
	} {
		if got := aggregate.ClusterFromLogGroup(in); got != want {
			t.Errorf("ClusterFromLogGroup(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSplunkRows(t *testing.T) {
	f := fields("alice", "203.0.113.9", "10.0.12.4")
	a := aggregate.Aggregate{Window: at("2026-11-24T08:00:00Z"), Fields: f, Count: 3}
	rows := aggregate.SplunkRows(a)
	if len(rows) != 4 {
		t.Fatalf("got %d rows, want 2 src_ip × 2 groups", len(rows))
	}
	want := [][2]string{{"203.0.113.9", "system:authenticated"}, {"203.0.113.9", "devs"}, {"10.0.12.4", "system:authenticated"}, {"10.0.12.4", "devs"}}
	for i, r := range rows {
		if r.SrcIP != want[i][0] || r.Group != want[i][1] || r.Count != 3 || r.Window != "2026-11-24T08:00:00Z" || r.User != "alice" || r.Verb != "create" {
			t.Errorf("row %d: %+v", i, r)
		}
	}
	// Another aggregate (another log group) with an overlapping row: one stats run merges them.
	b := aggregate.Aggregate{Window: a.Window, Fields: fields("alice", "10.0.12.4"), Count: 2}
	report := aggregate.SplunkReport([]aggregate.Aggregate{a, b})
	if len(report) != 4 {
		t.Fatalf("report has %d rows, want 4", len(report))
	}
	for _, r := range report {
		wantCount := int64(3)
		if r.SrcIP == "10.0.12.4" {
			wantCount = 5
		}
		if r.Count != wantCount {
			t.Errorf("row %s/%s count %d, want %d", r.SrcIP, r.Group, r.Count, wantCount)
		}
	}
	if report[0].SrcIP != "10.0.12.4" || report[0].Group != "devs" {
		t.Errorf("report not sorted by by-fields: first row %+v", report[0])
	}
}

func TestSameLogGroupInTwoAccounts(t *testing.T) {
	acc := aggregate.New(detect.UnauthorizedAccess, aggregate.GroupByUser)
	other := prodSrc
	other.Owner = "444455556666"
	m := detect.Match{Fields: fields("system:anonymous", "203.0.113.9"), Time: at("2026-11-24T08:15:03Z")}
	if acc.Add(prodSrc, m, "42") {
		t.Fatal("first event reported as a duplicate")
	}
	if acc.Add(other, m, "42") {
		t.Error("the same event id in another account was taken for a redelivery")
	}
	if !acc.Add(other, m, "42") {
		t.Error("a repeated id in the same account was counted twice")
	}
	aggs := acc.Aggregates()
	if len(aggs) != 2 || aggs[0].Group == aggs[1].Group || aggs[0].Count != 1 || aggs[1].Count != 1 {
		t.Fatalf("want one aggregate and one alert group per account, got %+v", aggs)
	}
}

// TestLongValuesAreBounded: an aggregate keeps at most aggregate.MaxValueBytes of a value
// (marked as cut) and a bounded list, so its memory does not grow with the line; values
// that differ only past the bound are still two aggregates.
func TestLongValuesAreBounded(t *testing.T) {
	acc := aggregate.New(detect.UnauthorizedAccess, aggregate.GroupByUser)
	long := strings.Repeat("q", 200<<10)
	ips := make([]string, 500)
	for i := range ips {
		ips[i] = fmt.Sprintf("10.0.%d.%d", i/250, i%250)
	}
	for _, tail := range []string{"a", "b"} {
		m := detect.Match{Time: time.Date(2026, 11, 24, 8, 5, 0, 0, time.UTC), Fields: detect.Fields{
			User: "mallory", Verb: "create", Code: "403", RequestURI: "/api/v1/secrets?q=" + long + tail,
			UserAgent: long, SrcIPs: ips, Groups: []string{"system:authenticated"},
		}}
		acc.Add(aggregate.Source{Owner: "111122223333", LogGroup: "/aws/eks/prod/cluster"}, m, "id-"+tail)
	}
	aggs := acc.Aggregates()
	if len(aggs) != 2 {
		t.Fatalf("%d aggregates, want 2 (the URIs differ past the bound)", len(aggs))
	}
	for _, a := range aggs {
		f := a.Fields
		if len(f.RequestURI) > aggregate.MaxValueBytes || !strings.HasSuffix(f.RequestURI, aggregate.Truncated) ||
			!strings.HasPrefix(f.RequestURI, "/api/v1/secrets?q=qqq") {
			t.Errorf("requestURI kept %d bytes, ends %q", len(f.RequestURI), f.RequestURI[len(f.RequestURI)-20:])
		}
		if len(f.UserAgent) > aggregate.MaxValueBytes {
			t.Errorf("userAgent kept %d bytes", len(f.UserAgent))
		}
		if n := len(f.SrcIPs); n != aggregate.MaxListValues || f.SrcIPs[0] != "10.0.0.0" || f.SrcIPs[n-2] != "…[+437 more]" || f.SrcIPs[n-1] != "10.0.1.249" {
			t.Errorf("src_ip kept %d entries, ending %q: want %d, the peer last", n, f.SrcIPs[n-2:], aggregate.MaxListValues)
		}
		if f.User != "mallory" || len(f.Groups) != 1 {
			t.Errorf("short values changed: %q %v", f.User, f.Groups)
		}
	}
}

// TestThinAfter: past n rows of one alert group, new rows keep only their key, count,
// times, ids and user, uid and groups; rows already whole stay whole, other groups and
// windows have their own n, and the bound survives Take.
func TestThinAfter(t *testing.T) {
	acc := aggregate.New(detect.UnauthorizedAccess, aggregate.GroupByUser)
	acc.ThinAfter(2)
	add := func(user, uri, when, id string) {
		f := fields(user, "198.51.100.23")
		f.RequestURI = uri
		acc.Add(prodSrc, detect.Match{Fields: f, Time: at(when), Identity: audit.Identity{ARN: "arn:aws:sts::1:assumed-role/r/" + user}}, id)
	}
	for i, uri := range []string{"/a", "/b", "/c", "/d"} {
		add("alice", uri, "2026-11-24T08:15:03Z", fmt.Sprint("a", i))
	}
	add("alice", "/a", "2026-11-24T08:16:03Z", "a9") // a whole row again
	add("alice", "/d", "2026-11-24T08:17:03Z", "a8") // a thin row again
	add("bob", "/a", "2026-11-24T08:15:03Z", "b0")   // another group
	add("alice", "/e", "2026-11-24T09:15:03Z", "a7") // another window
	check := func(aggs []aggregate.Aggregate) {
		t.Helper()
		thin := map[string]int64{}
		whole := map[string]int64{}
		for _, a := range aggs {
			name := a.Fields.User + a.Window.Format("T15")
			if a.Thin {
				thin[name] += a.Count
				if a.Fields.RequestURI != "" || !a.Identity.IsZero() || a.Fields.User == "" || len(a.Fields.Groups) == 0 {
					t.Errorf("thin row keeps %+v, identity %+v", a.Fields, a.Identity)
				}
			} else {
				whole[name] += a.Count
				if a.Fields.RequestURI == "" || a.Identity.IsZero() {
					t.Errorf("whole row lost its values: %+v", a.Fields)
				}
			}
		}
		if fmt.Sprint(whole) != "map[aliceT08:3 aliceT09:1 bobT08:1]" || fmt.Sprint(thin) != "map[aliceT08:3]" {
			t.Errorf("whole rows %v, thin rows %v", whole, thin)
		}
	}
	check(acc.Take())
	for i, uri := range []string{"/a", "/b", "/c", "/d"} {
		add("alice", uri, "2026-11-24T08:15:03Z", fmt.Sprint("a", i))
	}
	add("alice", "/a", "2026-11-24T08:16:03Z", "a9")
	add("alice", "/d", "2026-11-24T08:17:03Z", "a8")
	add("bob", "/a", "2026-11-24T08:15:03Z", "b0")
	add("alice", "/e", "2026-11-24T09:15:03Z", "a7")
	check(acc.Take())
}
