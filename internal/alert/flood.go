package alert

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
)

// KindFlood is the "many users" alert of a log group and window: past ALERT_MAX_GROUPS
// alert groups, further groups are folded into it, and it is published once.
const KindFlood Kind = "flood"

// MaxFloodUsers caps the users a "many users" alert lists.
const MaxFloodUsers = 10

// FloodGroupKey is the alert group key of the "many users" alert of a log group (one per
// account, log group and window; the window is part of the claim's partition).
func FloodGroupKey(owner, logGroup string) string {
	sum := sha256.Sum256([]byte("flood\x00" + owner + "\x00" + logGroup))
	return "many-users#" + hex.EncodeToString(sum[:16])
}

// Flood is what a "many users" alert adds to the alert.
type Flood struct {
	// MaxGroups is the number of alert groups alerted one by one before this alert.
	MaxGroups int `json:"maxGroups"`
	// Groups is the number of alert groups (users, by default) the log group had in the
	// window when this alert was built: at least that many.
	Groups int `json:"groups"`
	// Users are the folded users of the delivery that crossed the bound with the most
	// attempts, at most MaxFloodUsers; UsersOmitted counts the others.
	Users        []UserAttempts `json:"users"`
	UsersOmitted int            `json:"usersOmitted"`
}

// UserAttempts is one user of a "many users" alert.
type UserAttempts struct {
	User     string `json:"user"`
	Attempts int64  `json:"attempts"`
}

// BuildFlood builds the "many users" alert of g, the aggregates of the folded groups, after
// maxGroups groups were alerted one by one and with groups counted so far.
func BuildFlood(g Group, maxGroups, groups int, opts Options) Alert {
	a := Build(g, opts)
	attempts := map[string]int64{}
	kinds := map[UserKind]bool{}
	for _, ag := range g.Aggregates {
		attempts[ag.Fields.User] += ag.Count
		kinds[UserKindOf(ag.Fields.User, ag.Fields.UID, ag.Fields.Groups, nil)] = true
	}
	users := slices.SortedFunc(maps.Keys(attempts), func(x, y string) int {
		return cmp.Or(cmp.Compare(attempts[y], attempts[x]), cmp.Compare(x, y))
	})
	f := &Flood{MaxGroups: maxGroups, Groups: max(groups, maxGroups+1), Users: []UserAttempts{}}
	for _, u := range users {
		if len(f.Users) == MaxFloodUsers {
			f.UsersOmitted++
			continue
		}
		f.Users = append(f.Users, UserAttempts{User: clean(u, maxName), Attempts: attempts[u]})
	}
	a.Flood = f
	a.Kind = KindFlood
	a.UserKind = UserOther
	if len(kinds) == 1 {
		for k := range kinds {
			a.UserKind = k
		}
	}
	a.RiskObject.Value = "many users"
	a.Title = fmt.Sprintf("Unauthorized access to Kubernetes from many users: %d or more alert groups in this window", f.Groups)
	a.RiskMessage = a.Title
	a.SuppressExample = ""
	a.NextSteps = floodSteps(f, a.ConsoleURL)
	return a
}

// floodSteps are the next steps of a "many users" alert; url is the console link.
func floodSteps(f *Flood, url string) []string {
	return []string{
		fmt.Sprintf("More than %d alert groups (users) were denied creates in this log group and window: the first %d were alerted one by one, "+
			"the others are folded into this alert, sent once per window. Their requests are all counted in the table and in the hourly report.", f.MaxGroups, f.MaxGroups),
		"Check whether one source is behind them (the peer addresses, the user agents) and block it; many anonymous or " +
			"many service-account users usually mean a scanner or a misconfigured workload.",
		"Query the creates of the most recent folded user in this window in CloudWatch Logs Insights: " + url,
	}
}
