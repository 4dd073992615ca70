package alert

import (
	"strings"
	"testing"
	"time"
)

// TestLate: an alert built an hour or more after its window ended says so, with how
// late, in the structured alert, the e-mail and the chat message; an alert on time does
// not. The age is relative to the alert's own clock, never to today's date.
func TestLate(t *testing.T) {
	end := window.Add(time.Hour)
	for _, tc := range []struct {
		after   time.Duration // generated this long after the window's end
		late    bool
		seconds int64
		words   string
	}{
		{-30 * time.Minute, false, 0, ""},
		{2*time.Minute + 3*time.Second, false, 0, ""},
		{59 * time.Minute, false, 0, ""},
		{time.Hour, true, 3600, "the window ended 60 minutes before this alert"},
		{5*time.Hour + 59*time.Minute, true, 21540, "the window ended 5 hours before this alert"},
		{8 * 24 * time.Hour, true, 8 * 86400, "the window ended 8 days before this alert"},
		{400*24*time.Hour + time.Hour, true, 400*86400 + 3600, "the window ended 400 days before this alert"},
	} {
		now := func() time.Time { return end.Add(tc.after) }
		a := Build(sampleGroup(), Options{Now: now})
		if a.Late != tc.late || a.LateSeconds != tc.seconds {
			t.Errorf("%s after the window: late %v, %d s; want %v, %d s", tc.after, a.Late, a.LateSeconds, tc.late, tc.seconds)
		}
		m, err := Render(a)
		if err != nil {
			t.Fatal(err)
		}
		ch := channels(t, m)
		for _, name := range []string{"email", "https"} {
			has := strings.Contains(ch[name], "the window ended")
			if has != tc.late || (tc.late && !strings.Contains(ch[name], tc.words)) {
				t.Errorf("%s after the window: %s channel does not say %q:\n%s", tc.after, name, tc.words, ch[name])
			}
		}
		if !strings.Contains(ch["sqs"], `"late":`+map[bool]string{true: "true", false: "false"}[tc.late]) {
			t.Errorf("%s after the window: structured alert lacks late=%v", tc.after, tc.late)
		}
	}
}
