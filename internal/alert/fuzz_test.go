package alert

import (
	"strings"
	"testing"
)

// FuzzRender renders alerts whose attacker-controlled fields hold arbitrary bytes and
// checks the invariants: no error or panic, valid JSON in every channel, no hidden
// character, mention, link or hostile markup in chat text, Subject and size limits.
func FuzzRender(f *testing.F) {
	for _, h := range hostile {
		f.Add(h, h, "10.0.0.1")
	}
	f.Add("alice", strings.Repeat("A", 10_000), "2001:db8::1")
	f.Add("", "", "")
	f.Add("\xed\xa0\x80", "\uFFFE\uFFFF", "<@U1>")
	f.Fuzz(func(t *testing.T, user, agent, ip string) {
		g := groupWith(agent)
		for i := range g.Aggregates {
			g.Aggregates[i].Fields.User = user
			g.Aggregates[i].Fields.SrcIPs = []string{ip}
		}
		m, err := Render(Build(g, Options{Now: fixedNow}))
		if err != nil {
			t.Fatal(err)
		}
		checkSafe(t, m)
	})
}
