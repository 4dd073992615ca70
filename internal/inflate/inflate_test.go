package inflate

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// corpus returns inputs of every kind a compressor treats differently: empty, tiny,
// random (stored and Huffman-only blocks), text-like with long and overlapping matches,
// runs of one byte (distance 1), short periods (distances 2 to 7), and sizes past the
// buffer so that the history slides.
func corpus() map[string][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	words := []string{`{"kind":"Event"`, `"verb":"create"`, `"reason":"Forbidden"`, `\"user\":{`, "system:serviceaccount:", "kube-system", "\n", " ", "0123456789"}
	text := func(n int) []byte {
		var b bytes.Buffer
		for b.Len() < n {
			b.WriteString(words[r.IntN(len(words))])
			if r.IntN(5) == 0 {
				fmt.Fprintf(&b, "%d", r.Uint64())
			}
		}
		return b.Bytes()[:n]
	}
	period := func(p, n int) []byte {
		unit := random(p)
		b := make([]byte, n)
		for i := range b {
			b[i] = unit[i%p]
		}
		return b
	}
	c := map[string][]byte{
		"empty":     nil,
		"one":       {'x'},
		"short":     []byte("forbidden"),
		"random 1k": random(1000),
		"random 1M": random(1 << 20),
		"text 64k":  text(64 << 10),
		"text 2M":   text(2 << 20),
		"run":       bytes.Repeat([]byte{'a'}, 100_000),
	}
	// Most matches reach back exactly 32 KiB, the most DEFLATE allows: the history kept
	// when the buffer slides must be all of it. The buffer slides at a different place of
	// the period in each.
	unit := random(32 << 10)
	for _, skip := range []int{0, 1, 2, 3, 100, 5000} {
		c[fmt.Sprintf("period 32K from %d", skip)] = bytes.Repeat(unit, 12)[skip:]
	}
	for p := 2; p <= 9; p++ {
		c[fmt.Sprintf("period %d", p)] = period(p, 5000+p)
	}
	// A mix: text with random spans, so matches reach back across the buffer's slide.
	var mix []byte
	for len(mix) < 3<<20 {
		mix = append(mix, text(r.IntN(40_000))...)
		mix = append(mix, random(r.IntN(3000))...)
	}
	c["mix 3M"] = mix
	return c
}

func gz(t testing.TB, data []byte, level int) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := gzip.NewWriterLevel(&b, level)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// readAll reads r with reads of size step (0: whatever is left of a 64 KiB buffer).
func readAll(r io.Reader, step int) ([]byte, error) {
	var out []byte
	buf := make([]byte, 64<<10)
	for {
		p := buf
		if step > 0 {
			p = buf[:step]
		}
		n, err := r.Read(p)
		out = append(out, p[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// stdlib inflates in with compress/gzip: the reference.
func stdlib(in []byte) ([]byte, error) {
	r, err := gzip.NewReader(bytes.NewReader(in))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func inflate(in []byte, step int) ([]byte, error) {
	var z Reader
	if err := z.Reset(in); err != nil {
		return nil, err
	}
	return readAll(&z, step)
}

func TestInflateMatchesCompressGzip(t *testing.T) {
	levels := []int{gzip.NoCompression, gzip.HuffmanOnly, gzip.BestSpeed, 5, gzip.BestCompression}
	for name, data := range corpus() {
		for _, level := range levels {
			comp := gz(t, data, level)
			for _, step := range []int{0, 1 << 10, 7} {
				if step == 7 && len(data) > 100_000 {
					continue
				}
				// A new Reader each time: a reused buffer could hold the right bytes
				// already and hide a copy that reads before it writes.
				got, err := inflate(comp, step)
				if err != nil {
					t.Fatalf("%s level %d reads of %d: %v", name, level, step, err)
				}
				if !bytes.Equal(got, data) {
					t.Fatalf("%s level %d reads of %d: %d bytes differ from the %d written", name, level, step, len(got), len(data))
				}
			}
		}
	}
}

// TestInflateReuse inflates every input with one Reader: Reset leaves nothing behind.
func TestInflateReuse(t *testing.T) {
	c := corpus()
	names := slices.Sorted(maps.Keys(c))
	var z Reader
	for _, name := range append(names, names...) {
		if err := z.Reset(gz(t, c[name], gzip.BestSpeed)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := readAll(&z, 0)
		if err != nil || !bytes.Equal(got, c[name]) {
			t.Fatalf("%s after others: %v, %d bytes of %d", name, err, len(got), len(c[name]))
		}
	}
}

// TestInflateMembers checks a multistream: each member's matches may reach back only to
// its own start, and the header fields compress/gzip reads are skipped.
func TestInflateMembers(t *testing.T) {
	a := bytes.Repeat([]byte("abcdefgh"), 20_000)
	b := []byte("second member")
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Name, w.Comment, w.Extra = "name.json", "a comment", []byte{1, 2, 3}
	for _, data := range [][]byte{a, b} {
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		w.Reset(&buf)
	}
	got, err := inflate(buf.Bytes(), 0)
	if err != nil || !bytes.Equal(got, append(append([]byte(nil), a...), b...)) {
		t.Fatalf("two members: %d bytes, %v", len(got), err)
	}

	// A second member whose first match reaches into the first member: compress/gzip
	// refuses it, and so must this reader.
	// A second member whose match reaches into the first member: compress/gzip refuses
	// it, and so must this reader. With a first member of 270,000 bytes and a second of
	// a 30,000-byte stored block, the buffer slides inside the second member, so this
	// also checks that the member's start moves with the slide.
	for _, c := range []struct {
		first  int
		stored []byte
	}{
		{len(a), nil},
		{len(a), []byte("abc")},
		{270_000, bytes.Repeat([]byte{'s'}, 30_000)},
	} {
		first := corpus()["text 2M"][:c.first]
		bad := append(gz(t, first, 6), crossMember(c.stored, first[len(first)-1])...)
		// Without and with a member after it: the last bytes of the input are decoded
		// one symbol at a time, the others by the fast loop.
		for _, in := range [][]byte{bad, append(bad, gz(t, []byte("a third member"), 6)...)} {
			_, werr := stdlib(in)
			_, gerr := inflate(in, 0)
			if werr == nil || !errors.Is(gerr, ErrCorrupt) {
				t.Errorf("a match into the previous member (%d, %d): compress/gzip %v, inflate %v; both must fail", c.first, len(c.stored), werr, gerr)
			}
		}
		// The same member alone is refused for the same reason.
		if _, err := inflate(crossMember(c.stored, 0), 0); !errors.Is(err, ErrCorrupt) {
			t.Errorf("a match before the start (%d): %v", len(c.stored), err)
		}
	}
}

// crossMember is a gzip member of a stored block holding stored (none if nil), then a
// fixed Huffman block whose only match copies 3 bytes from one byte before the member's
// start. Its trailer is that of what a reader that allowed the match would give, with
// prev the previous member's last byte, so that only the distance check can refuse it.
func crossMember(stored []byte, prev byte) []byte {
	var deflate []byte
	if stored != nil {
		deflate = append(deflate, 0) // BFINAL=0, BTYPE=00, then the rest of the byte
		deflate = binary.LittleEndian.AppendUint16(deflate, uint16(len(stored)))
		deflate = binary.LittleEndian.AppendUint16(deflate, ^uint16(len(stored)))
		deflate = append(deflate, stored...)
	}
	// BFINAL=1, BTYPE=01; length 3 is symbol 257, the 7-bit code 0000001; the distance
	// code (5 bits) and its extra bits; the end of block, symbol 256, is 0000000.
	d := len(stored) + 1
	code, extra, nextra := 0, 0, 0
	for c := range distBase {
		if int(distBase[c]) <= d {
			code, extra, nextra = c, d-int(distBase[c]), int(distExtra[c])
		}
	}
	var bits, n uint64
	put := func(v, k uint64) { bits |= v << n; n += k }
	putRev := func(c, k uint64) {
		for i := int(k) - 1; i >= 0; i-- {
			put(c>>uint(i)&1, 1)
		}
	}
	put(1, 1)
	put(1, 2)
	putRev(1, 7)
	putRev(uint64(code), 5)
	put(uint64(extra), uint64(nextra))
	putRev(0, 7)
	for i := range (n + 7) / 8 {
		deflate = append(deflate, byte(bits>>(8*i)))
	}
	// What a reader that allowed the match would give: the previous byte, then the
	// member's bytes, each copied byte taken d back.
	ext := append([]byte{prev}, stored...)
	for range 3 {
		ext = append(ext, ext[len(ext)-d])
	}
	return member(deflate, ext[1:])
}

// member wraps raw DEFLATE data in a gzip header and a trailer for want.
func member(deflate, want []byte) []byte {
	out := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}
	out = append(out, deflate...)
	out = binary.LittleEndian.AppendUint32(out, crc32.ChecksumIEEE(want))
	return binary.LittleEndian.AppendUint32(out, uint32(len(want)))
}

// TestInflateHeader checks the optional header fields and their rules.
func TestInflateHeader(t *testing.T) {
	data := []byte("payload")
	var raw bytes.Buffer
	fw, err := flate.NewWriter(&raw, 6)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	withHeader := func(h []byte) []byte {
		out := append(append([]byte(nil), h...), raw.Bytes()...)
		out = binary.LittleEndian.AppendUint32(out, crc32.ChecksumIEEE(data))
		return binary.LittleEndian.AppendUint32(out, uint32(len(data)))
	}
	base := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}
	flags := func(f byte, rest ...byte) []byte {
		h := append([]byte(nil), base...)
		h[3] = f
		return append(h, rest...)
	}
	hcrc := flags(2)
	sum := crc32.ChecksumIEEE(hcrc)
	hcrc = binary.LittleEndian.AppendUint16(hcrc, uint16(sum))
	badHcrc := binary.LittleEndian.AppendUint16(flags(2), uint16(sum)+1)
	name := func(n int) []byte { return append(flags(8, bytes.Repeat([]byte{'n'}, n)...), 0) }
	cases := map[string][]byte{
		"plain":            withHeader(base),
		"extra":            withHeader(flags(4, 3, 0, 'a', 'b', 'c')),
		"name and comment": withHeader(append(flags(8|16, 'f', 0), 'c', 0)),
		"header CRC":       withHeader(hcrc),
		"bad header CRC":   withHeader(badHcrc),
		"name of 511":      withHeader(name(511)),
		"name of 512":      withHeader(name(512)),
		"not gzip":         withHeader(append([]byte{0x1f, 0x8c}, base[2:]...)),
		"not deflate":      withHeader(append([]byte{0x1f, 0x8b, 7}, base[3:]...)),
		"extra too long":   flags(4, 9, 0, 'a'),
		"name unended":     flags(8, 'a', 'b'),
		"short":            base[:5],
		"empty":            {},
		"trailing garbage": append(withHeader(base), 1, 2, 3),
		"trailing zeros":   append(withHeader(base), make([]byte, 20)...),
	}
	for name, in := range cases {
		want, werr := stdlib(in)
		got, gerr := inflate(in, 0)
		if (werr == nil) != (gerr == nil) || !bytes.Equal(got, want) && werr == nil {
			t.Errorf("%s: compress/gzip gave %q, %v; inflate %q, %v", name, want, werr, got, gerr)
		}
		if werr != nil && !sameKind(werr, gerr) {
			t.Errorf("%s: compress/gzip failed with %v, inflate with %v", name, werr, gerr)
		}
	}
}

// sameKind reports whether two errors are the same sentinel where compress/gzip uses one.
func sameKind(want, got error) bool {
	for _, e := range []error{io.EOF, io.ErrUnexpectedEOF, gzip.ErrHeader, gzip.ErrChecksum} {
		if errors.Is(want, e) {
			return errors.Is(got, e)
		}
	}
	return got != nil
}

// TestInflateTruncated cuts a stream at every length: each prefix fails, as with
// compress/gzip, with io.ErrUnexpectedEOF, after giving a prefix of the data.
func TestInflateTruncated(t *testing.T) {
	data := corpus()["text 64k"][:20_000]
	for _, level := range []int{gzip.NoCompression, gzip.BestSpeed, gzip.BestCompression} {
		comp := gz(t, data, level)
		for n := range len(comp) {
			got, err := inflate(comp[:n], 0)
			want := io.ErrUnexpectedEOF
			if n == 0 {
				want = io.EOF
			}
			if !errors.Is(err, want) {
				t.Fatalf("level %d cut at %d of %d: %v, want %v", level, n, len(comp), err, want)
			}
			if !bytes.HasPrefix(data, got) {
				t.Fatalf("level %d cut at %d: the %d bytes given are not a prefix of the data", level, n, len(got))
			}
		}
	}
}

// TestInflateCorrupt flips bytes of valid streams: inflate fails exactly when
// compress/gzip does, and otherwise gives the same bytes.
func TestInflateCorrupt(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	data := corpus()["text 64k"]
	for _, level := range []int{gzip.HuffmanOnly, gzip.BestSpeed, gzip.BestCompression} {
		comp := gz(t, data, level)
		for range 300 {
			bad := append([]byte(nil), comp...)
			for range 1 + r.IntN(3) {
				i := 10 + r.IntN(len(bad)-10)
				bad[i] ^= byte(1 + r.IntN(255))
			}
			compare(t, bad)
		}
	}
}

func compare(t *testing.T, in []byte) {
	t.Helper()
	want, werr := stdlib(in)
	got, gerr := inflate(in, 0)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("compress/gzip: %v; inflate: %v (input %x)", werr, gerr, in[:min(len(in), 64)])
	}
	if werr == nil && !bytes.Equal(got, want) {
		t.Fatalf("both succeed with different bytes: %d and %d", len(want), len(got))
	}
}

// FuzzInflate compares inflate with compress/gzip on any input after a gzip header, and
// on the gzip compression of any input.
func FuzzInflate(f *testing.F) {
	base := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}
	for _, data := range [][]byte{nil, []byte("forbidden"), bytes.Repeat([]byte("ab"), 300)} {
		for _, level := range []int{0, -2, 1, 9} {
			comp := gz(f, data, level)
			f.Add(comp[10:], false)
			f.Add(data, true)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, compress bool) {
		if compress {
			for _, level := range []int{gzip.HuffmanOnly, gzip.BestSpeed, gzip.BestCompression} {
				got, err := inflate(gz(t, b, level), 0)
				if err != nil || !bytes.Equal(got, b) {
					t.Fatalf("level %d: %v, %d bytes of %d", level, err, len(got), len(b))
				}
			}
			return
		}
		compare(t, append(append([]byte(nil), base...), b...))
	})
}

// TestInflateFill reads with Fill, keeping at each call a random number of the bytes
// already read (as a decoder keeps a record that runs on): the kept bytes must still be
// the data's, wherever they moved, and the buffer grows for a kept run longer than it.
func TestInflateFill(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for name, data := range corpus() {
		for _, maxFill := range []int{0, 1, 7, 1000} {
			if maxFill > 0 && maxFill < 100 && len(data) > 100_000 {
				continue
			}
			var z Reader
			z.MaxFill = maxFill
			if err := z.Reset(gz(t, data, 6)); err != nil {
				t.Fatal(err)
			}
			off := 0  // the data offset of Bytes()[0]
			keep := 0 // the index in Bytes of the first byte kept
			for {
				room := 1 + r.IntN(64<<10)
				shift, err := z.Fill(keep, room)
				if shift < 0 || shift > keep {
					t.Fatalf("%s: Fill(%d) moved the bytes by %d", name, keep, shift)
				}
				off += shift
				keep -= shift
				b := z.Bytes()
				if off+len(b) > len(data) || !bytes.Equal(b[keep:], data[off+keep:off+len(b)]) {
					t.Fatalf("%s MaxFill %d: the bytes from %d are not the data's", name, maxFill, off+keep)
				}
				if errors.Is(err, io.EOF) {
					if off+len(b) != len(data) {
						t.Fatalf("%s MaxFill %d: EOF after %d bytes of %d", name, maxFill, off+len(b), len(data))
					}
					break
				}
				if err != nil {
					t.Fatalf("%s MaxFill %d: %v", name, maxFill, err)
				}
				// Keep from a random point: mostly the new bytes only, at times a long run.
				switch r.IntN(4) {
				case 0:
					keep = max(0, len(b)-r.IntN(400<<10))
				default:
					keep = max(keep, len(b)-r.IntN(2<<10))
				}
			}
		}
	}
}
