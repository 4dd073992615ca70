package jsonscan

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/eks-unauthorized-access/detector/internal/jsonstring"
)

// seeds are JSON texts and near misses; each is checked against encoding/json by
// TestMatchesEncodingJSON and seeds FuzzValue.
var seeds = []string{
	``, ` `, `null`, `true`, `false`, `nul`, `tru`, `fals`, `nullx`, `True`,
	`0`, `-0`, `1`, `-1`, `12`, `01`, `-01`, `-`, `+1`, `1.`, `1.5`, `.5`, `1e5`, `1E+5`, `1e-5`,
	`1e`, `1e+`, `-0.0E+1`, `1.5e3.2`, `1-2`, `0x10`, `9223372036854775807`, `1e400`,
	`""`, `"a"`, `"\""`, `"\\"`, `"\/"`, `"\b\f\n\r\t"`, `"\u0041"`, `"\u00e9\ud83d\ude00"`, `"\ud800"`,
	`"\u12"`, `"\u12x4"`, `"\x"`, `"\'"`, `"\`, `"abc`, `"a"b"`, "\"tab\there\"", "\"\x00\"", "\"\x1f\"", "\"\x7f\"",
	"\"\xff\"", "\"a\xe2\x82\"", `"é😀"`, `"` + strings.Repeat(`a\"`, 20) + `"`, `"` + strings.Repeat("é", 9) + `"`,
	`"12345678\\"`, `"1234567\\\""`, `"1234567\\\\"`,
	`[]`, `[ ]`, `[1,2]`, `[1,]`, `[,1]`, `[1 2]`, `[`, `]`, `[[[]]]`, `[[[]]`,
	`{}`, `{ }`, `{"a":1}`, `{"a":1,}`, `{"a"}`, `{"a":}`, `{a:1}`, `{"a":1 "b":2}`, `{"a":1}}`,
	`{"a":[1,{"b":null}],"c":"d"}`, ` {"a" : [ 1 , 2.5e-3 ] } `, `{"\u0061":1,"a":2}`, `{"a":"\q"}`,
	`{"a":1}x`, `1 2`, `"a" "b"`,
}

// TestMatchesEncodingJSON checks Value and String against encoding/json on the seeds.
func TestMatchesEncodingJSON(t *testing.T) {
	for _, s := range seeds {
		checkValue(t, []byte(s))
	}
}

// TestDepth checks the nesting bound against encoding/json's: MaxDepth nested arrays are
// valid JSON, one more is not; a smaller depth refuses what is deeper.
func TestDepth(t *testing.T) {
	for _, tt := range []struct {
		nest, depth int
		ok          bool
	}{
		{0, 0, true}, {1, 0, false}, {1, 1, true}, {3, 2, false}, {3, 3, true},
		{MaxDepth, MaxDepth, true}, {MaxDepth + 1, MaxDepth, false},
	} {
		b := []byte(strings.Repeat("[", tt.nest) + "0" + strings.Repeat("]", tt.nest))
		if _, ok := Value(b, 0, tt.depth); ok != tt.ok {
			t.Errorf("%d nested arrays, depth %d: ok %v, want %v", tt.nest, tt.depth, ok, tt.ok)
		}
		if tt.depth == MaxDepth && json.Valid(b) != tt.ok {
			t.Errorf("%d nested arrays: encoding/json says %v", tt.nest, json.Valid(b))
		}
	}
}

func TestValueEnd(t *testing.T) {
	for _, tt := range []struct {
		in  string
		i   int
		end int
		ok  bool
	}{
		{`  [1, 2] ,`, 0, 8, true},
		{`{"a":1},{"b":2}`, 8, 15, true},
		{`"x"y`, 0, 3, true},
		{`123abc`, 0, 3, true},
		{`truex`, 0, 4, true},
		{`[1,2`, 0, 0, false},
	} {
		end, ok := Value([]byte(tt.in), tt.i, MaxDepth)
		if ok != tt.ok || (ok && end != tt.end) {
			t.Errorf("Value(%q, %d) = %d, %v; want %d, %v", tt.in, tt.i, end, ok, tt.end, tt.ok)
		}
	}
}

func TestString(t *testing.T) {
	for _, tt := range []struct {
		in         string
		end        int
		plain, ok  bool
		lenientEnd int // StringEnd of the content, -1 when none
	}{
		{`"abc"`, 5, true, true, 4},
		{`"abcdefghijklmnop"rest`, 18, true, true, 17},
		{`"é"`, 4, true, true, 3},
		{"\"\xff\"", 3, false, true, 2},
		{"\"0123456789\xff\"", 13, false, true, 12},
		{`"a\nb"`, 6, false, true, 5},
		{`"a\"b"`, 6, false, true, 5},
		{`"0123456\\"x`, 11, false, true, 10},
		{`"0123456\\\"x"`, 14, false, true, 13},
		{"\"a\tb\"", 0, false, false, 4},
		{`"a\xb"`, 0, false, false, 5},
		{`"\u00"`, 0, false, false, 5},
		{`"abc`, 0, false, false, -1},
		{`"abc\"`, 0, false, false, -1},
	} {
		end, plain, ok := String([]byte(tt.in), 0)
		if ok != tt.ok || (ok && (end != tt.end || plain != tt.plain)) {
			t.Errorf("String(%q) = %d, %v, %v; want %d, %v, %v", tt.in, end, plain, ok, tt.end, tt.plain, tt.ok)
		}
		if got := StringEnd([]byte(tt.in), 1); got != tt.lenientEnd {
			t.Errorf("StringEnd(%q) = %d, want %d", tt.in, got, tt.lenientEnd)
		}
	}
}

func TestInt(t *testing.T) {
	for _, tt := range []struct {
		in  string
		n   int64
		end int
		ok  bool
	}{
		{`0`, 0, 1, true},
		{`-0`, 0, 2, true},
		{`1764000000000,`, 1764000000000, 13, true},
		{`-42}`, -42, 3, true},
		{`922337203685477579`, 922337203685477579, 18, true},
		{`9223372036854775807`, 0, 0, false}, // 19 digits: refused, not rounded
		{`01`, 0, 0, false},
		{`1.0`, 0, 0, false},
		{`1e3`, 0, 0, false},
		{`-`, 0, 0, false},
		{`x`, 0, 0, false},
	} {
		n, end, ok := Int([]byte(tt.in), 0)
		if ok != tt.ok || (ok && (n != tt.n || end != tt.end)) {
			t.Errorf("Int(%q) = %d, %d, %v; want %d, %d, %v", tt.in, n, end, ok, tt.n, tt.end, tt.ok)
		}
	}
}

func TestSpace(t *testing.T) {
	for _, tt := range []struct {
		in   string
		i    int
		want int
	}{
		{"", 0, 0}, {" \t\r\n", 0, 4}, {" x ", 0, 1}, {"x  ", 1, 3}, {"\v", 0, 0}, {"\u00a0", 0, 0},
	} {
		if got := Space([]byte(tt.in), tt.i); got != tt.want {
			t.Errorf("Space(%q, %d) = %d, want %d", tt.in, tt.i, got, tt.want)
		}
	}
}

// checkValue checks one input against encoding/json: Value accepts exactly the valid JSON
// texts; a string String accepts decodes (its content as is when plain, or through
// jsonstring) to what encoding/json decodes, and StringEnd finds its end; an integer Int
// accepts is a number Number reads to the same end, with encoding/json's value.
func checkValue(t *testing.T, b []byte) {
	t.Helper()
	end, ok := Value(b, 0, MaxDepth)
	if got, want := ok && Space(b, end) == len(b), json.Valid(b); got != want {
		t.Fatalf("Value(%q): valid %v, encoding/json %v", b, got, want)
	}
	if ok && !json.Valid(b[:end]) {
		t.Fatalf("Value(%q) read %q, which encoding/json rejects", b, b[:end])
	}
	i := Space(b, 0)
	if i < len(b) && b[i] == '"' {
		end, plain, ok := String(b, i)
		var want string
		werr := json.Unmarshal(b[i:max(end, i+1)], &want)
		if ok {
			content := b[i+1 : end-1]
			if werr != nil {
				t.Fatalf("String(%q) accepted %q, encoding/json: %v", b, b[i:end], werr)
			}
			if plain && string(content) != want {
				t.Fatalf("String(%q): plain content %q, encoding/json decodes %q", b, content, want)
			}
			if got, err := jsonstring.Unescape(content); err != nil || string(got) != want {
				t.Fatalf("String(%q): jsonstring decodes %q (%v), encoding/json %q", b, got, err, want)
			}
			if got := StringEnd(b, i+1); got != end-1 {
				t.Fatalf("StringEnd(%q) = %d, String ends at %d", b, got, end-1)
			}
		} else if e := StringEnd(b, i+1); e >= 0 && json.Valid(b[i:e+1]) {
			t.Fatalf("String(%q) refused %q, which encoding/json accepts", b, b[i:e+1])
		}
	}
	if n, end, ok := Int(b, i); ok {
		var want int64
		if err := json.Unmarshal(b[i:end], &want); err != nil || want != n {
			t.Fatalf("Int(%q) = %d, encoding/json %d (%v)", b, n, want, err)
		}
		if nend, ok := Number(b, i); !ok || nend != end {
			t.Fatalf("Int(%q) ends at %d, Number at %d (%v)", b, end, nend, ok)
		}
	}
}

// FuzzValue holds the strict grammar to encoding/json (see checkValue).
func FuzzValue(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkValue(t, b)
	})
}

// TestDigits checks the eight-bytes-at-a-time digit run against the byte loop, with every
// byte value placed at every position of runs of every length up to 20.
func TestDigits(t *testing.T) {
	for n := 0; n <= 20; n++ {
		for pos := 0; pos <= n; pos++ {
			for c := 0; c < 256; c++ {
				b := []byte(strings.Repeat("7", n) + "0123456789")
				b[pos] = byte(c)
				want := 0
				for want < len(b) && b[want] >= '0' && b[want] <= '9' {
					want++
				}
				if got := Digits(b, 0); got != want {
					t.Fatalf("Digits(%q) = %d, want %d", b, got, want)
				}
			}
		}
	}
}
