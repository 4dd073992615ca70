package detect

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"flag"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/eks-unauthorized-access/detector/internal/golden"
)

// The grammar of the screen (see screen.go): how one letter of a value can be written in
// the bytes MayMatch sees.

// hexForms returns the two hex digits of b in every case.
func hexForms(b byte) []string {
	const digits = "0123456789abcdef"
	var out []string
	for _, hi := range cases(digits[b>>4]) {
		for _, lo := range cases(digits[b&15]) {
			out = append(out, string([]byte{hi, lo}))
		}
	}
	return out
}

// cases returns c and, for a letter, its other case.
func cases(c byte) []byte {
	if c >= 'a' && c <= 'z' {
		return []byte{c, c - 'a' + 'A'}
	}
	return []byte{c}
}

// lineForms returns how the audit line writes the letter c: literally in either case, or
// as a \u00XX escape.
func lineForms(c byte) []string {
	var out []string
	for _, v := range cases(c) {
		out = append(out, string(v))
		for _, h := range hexForms(v) {
			out = append(out, `\u00`+h)
		}
	}
	return out
}

// payloadForms returns how the payload's string writes the byte b of the line: literally
// (a backslash also literally, for a line MayMatch sees unescaped), \\ for a backslash, or
// as a \u00XX escape.
func payloadForms(b byte) []string {
	out := []string{string(b)}
	if b == '\\' {
		out = append(out, `\\`)
	}
	for _, h := range hexForms(b) {
		out = append(out, `\u00`+h)
	}
	return out
}

// representations returns every case-folded way the bytes can write the letter c.
func representations(c byte) []string {
	set := map[string]bool{}
	for _, l := range lineForms(c) {
		forms := []string{""}
		for i := 0; i < len(l); i++ {
			var next []string
			for _, f := range forms {
				for _, p := range payloadForms(l[i]) {
					next = append(next, f+p)
				}
			}
			forms = next
		}
		for _, f := range forms {
			set[foldString(f)] = true
		}
	}
	out := make([]string, 0, len(set))
	for f := range set {
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

func foldString(s string) string {
	b := []byte(s)
	for i := range b {
		b[i] |= 0x20
	}
	return string(b)
}

// symbols returns the representations of each letter of word, in order; quoted puts the
// forms of a quote of the line, in a message that still carries the payload's escapes,
// around them.
func symbols(word string, quoted bool) [][]string {
	var out [][]string
	quote := []string{`|"`, `|u0022`} // \" and \u0022, folded
	if quoted {
		out = append(out, quote)
	}
	for i := 0; i < len(word); i++ {
		out = append(out, representations(word[i]))
	}
	if quoted {
		out = append(out, quote)
	}
	return out
}

// grams returns every n-byte substring of every representation of a sequence of symbols
// (a representation of each, one after another), sorted.
func grams(syms [][]string, n int) []string {
	set := map[string]bool{}
	tails := map[string]bool{"": true} // the last n-1 bytes written so far, fewer at the start
	for _, reps := range syms {
		next := map[string]bool{}
		for _, r := range reps {
			for j := 0; j+n <= len(r); j++ {
				set[r[j:j+n]] = true
			}
			head := r[:min(len(r), n-1)]
			for t := range tails {
				s := t + head
				for j := 0; j+n <= len(s); j++ {
					set[s[j:j+n]] = true
				}
				tail := t + r
				next[tail[max(0, len(tail)-(n-1)):]] = true
			}
		}
		tails = next
	}
	out := make([]string, 0, len(set))
	for g := range set {
		out = append(out, g)
	}
	slices.Sort(out)
	return out
}

// encodeGrams is the format newScreen reads.
func encodeGrams(g4, g8 []string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(g4)))
	for _, g := range g4 {
		b = append(b, g...)
	}
	for _, g := range g8 {
		b = append(b, g...)
	}
	return b
}

// TestScreenGrams derives the screens' lists from the grammar and compares them with their
// files (go test -run TestScreenGrams -update rewrites them).
func TestScreenGrams(t *testing.T) {
	update := flag.Lookup("update")
	for _, tt := range []struct {
		file   string
		quoted bool
		embed  []byte
	}{
		{"forbidden.grams", false, forbiddenGrams},
		{"forbidden-quoted.grams", true, quotedGrams},
	} {
		syms := symbols("forbidden", tt.quoted)
		g4, g8 := grams(syms, 4), grams(syms, 8)
		got := encodeGrams(g4, g8)
		if update != nil && update.Value.String() == "true" {
			golden.Check(t, tt.file, got)
			continue
		}
		if !bytes.Equal(got, tt.embed) {
			t.Fatalf("%s (%d bytes) is not what the grammar gives (%d 4-grams, %d 8-grams); run go test -run TestScreenGrams -update", tt.file, len(tt.embed), len(g4), len(g8))
		}
		if len(g4) < 100 || len(g8) < 1000 || !slices.Contains(g4, `|u00`) || !slices.Contains(g8, "forbidde") {
			t.Fatalf("%s: the grammar gives %d 4-grams and %d 8-grams", tt.file, len(g4), len(g8))
		}
		t.Logf("%s: %d 4-grams, %d 8-grams", tt.file, len(g4), len(g8))
	}
}

// randomRepresentation writes word as the grammar allows, with random choices, as the
// line writes it and as the payload's string writes that, and checks that both decode to
// word in some case.
func randomRepresentation(t *testing.T, rng *rand.Rand, word string) (line, payload string) {
	var lb, pb strings.Builder
	for i := 0; i < len(word); i++ {
		// Mostly literal letters, so that representations of every length down to the
		// shortest are tried.
		forms := lineForms(word[i])
		l := forms[rng.IntN(len(forms))]
		if rng.IntN(3) > 0 {
			l = string(cases(word[i])[rng.IntN(len(cases(word[i])))])
		}
		lb.WriteString(l)
		for j := 0; j < len(l); j++ {
			forms := payloadForms(l[j])
			if l[j] == '\\' {
				forms = forms[1:] // a payload string cannot hold a lone backslash
			}
			f := forms[rng.IntN(len(forms))]
			if rng.IntN(2) == 0 {
				f = forms[0]
			}
			pb.WriteString(f)
		}
	}
	line, payload = lb.String(), pb.String()
	var inner, value string
	if err := json.Unmarshal([]byte(`"`+payload+`"`), &inner); err != nil {
		t.Fatalf("%s: %v", payload, err)
	}
	if err := json.Unmarshal([]byte(`"`+inner+`"`), &value); err != nil || !strings.EqualFold(value, word) {
		t.Fatalf("%s decodes to %q (%v)", payload, value, err)
	}
	if inner != line {
		t.Fatalf("%s decodes to %s, want %s", payload, inner, line)
	}
	return line, payload
}

// TestScreenKeepsEveryRepresentation places random representations of "forbidden" at
// every offset of escaped audit text, so that every position relative to the sampling
// grid and to both ends is tried, and checks that each screen keeps each: the word
// screen the bare representation in the line and in the payload's string, the quoted
// screen the payload's string of the quoted value (each quote as \" or \u0022).
func TestScreenKeepsEveryRepresentation(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	filler := `{\"kind\":\"Event\",\"verb\":\"get\",\"requestURI\":\"/api?a=1\u0026b=\\\\u00e9\"}`
	quotes := []string{`\"`, `\u0022`}
	for i := 0; i < 3000; i++ {
		line, payload := randomRepresentation(t, rng, "forbidden")
		quoted := quotes[rng.IntN(2)] + payload + quotes[rng.IntN(2)]
		for _, tt := range []struct {
			s   *screen
			rep string
		}{{forbiddenScreen(), line}, {forbiddenScreen(), payload}, {quotedScreen(), quoted}} {
			for off := 0; off < tt.s.stride+2; off++ {
				before := filler[len(filler)-off:]
				after := filler[:rng.IntN(12)]
				msg := []byte(before + tt.rep + after)
				if !tt.s.keep(msg) {
					t.Fatalf("screen (stride %d) rejects %q", tt.s.stride, msg)
				}
			}
		}
	}
}

// TestScreenRejects checks the screen's purpose on the benchmark's kind of text: audit
// lines without the word are rejected, even full of escapes.
func TestScreenRejects(t *testing.T) {
	for _, msg := range []string{
		`{\"kind\":\"Event\",\"verb\":\"get\",\"user\":{\"username\":\"system:serviceaccount:kube-system:forbid\"}}`,
		`{\"requestURI\":\"/api/v1/pods?limit=500\u0026resourceVersion=0\",\"annotations\":{\"x\":\"{\\\"a\\\":\\\"\\u003cb\\u003e\\\"}\"}}`,
		`{"verb":"create","responseStatus":{"code":201},"userAgent":"kubectl/v1.31.0 (linux/amd64)"}`,
	} {
		if forbiddenScreen().keep([]byte(msg)) || quotedScreen().keep([]byte(msg)) {
			t.Errorf("a screen keeps %s", msg)
		}
	}
	// The word not as a whole value: the quoted screen may drop it.
	if quotedScreen().keep([]byte(`{\"message\":\"pods is forbidden: User \\\"x\\\" cannot\"}`)) {
		t.Error("quoted screen keeps a message whose only forbidden is inside a longer string")
	}
	if !quotedScreen().keep([]byte(`{\"reason\":\u0022Forbidde\u006e\"}`)) {
		t.Error("quoted screen rejects an escaped quoted value")
	}
	for _, msg := range []string{`"reason":"Forbidden"`, `\"reason\":\"FORBIDDEN\"`, `forbi\\u0064den`} {
		if !forbiddenScreen().keep([]byte(msg)) {
			t.Errorf("screen rejects %s", msg)
		}
	}
}
