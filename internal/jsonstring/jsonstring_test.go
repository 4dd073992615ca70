package jsonstring

import (
	"encoding/json"
	"testing"
)

func TestUnescapeMatchesEncodingJSON(t *testing.T) {
	for _, raw := range unescapeSeeds {
		checkUnescape(t, raw)
	}
}

var unescapeSeeds = []string{
	``, `plain`, `\"quoted\"`, `back\\slash`, `\/`, `\b\f\n\r\t`, `\u0046orbidden`, `\u00e9\u65e5`,
	`\ud83d\ude00`, `\uD83D\uDE00`, `\ud83d`, `\ud83dx`, `\ude00\ud83d`, `\ud83d\u0041`, `\ud83d\ud83d\ude00`,
	"\xff", "a\xe2\x82", `\u`, `\u12`, `\uzzzz`, `\x`, `\'`, `\`, "tab\there", "\x00", `é😀`,
}

func checkUnescape(t *testing.T, raw string) {
	t.Helper()
	got, err := Unescape([]byte(raw))
	var want string
	werr := json.Unmarshal([]byte(`"`+raw+`"`), &want)
	if (err != nil) != (werr != nil) {
		t.Fatalf("Unescape(%q): error %v, encoding/json error %v", raw, err, werr)
	}
	if err == nil && string(got) != want {
		t.Fatalf("Unescape(%q) = %q, encoding/json gives %q", raw, got, want)
	}
}

func FuzzUnescape(f *testing.F) {
	for _, s := range unescapeSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		checkUnescape(t, raw)
	})
}
