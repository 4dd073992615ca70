package cwlogs

import (
	"bytes"
	"strings"
	"testing"
)

// TestIndexRecordStart checks the search for the next record on the cases around it: a
// brace and a quote that do not start a record, escaped quotes after braces, a record
// start cut by the end, and one after a long run of other pairs (jsonscan.IndexPair is
// compared with bytes.Index on random inputs in its own tests).
func TestIndexRecordStart(t *testing.T) {
	for _, b := range []string{
		``,
		`{"`,
		`{"id":"`,
		`x{\"id\":\"1\"}"},{"id":"2"`,
		`{"i{"id{"id":{"id":"`,
		`"},{"id":`,
		strings.Repeat(`{\"user\":{\"a\":{}},{"x":1},`, 40) + `"},{"id":"3`,
		strings.Repeat("y", 33) + `{"id":"`,
	} {
		if got, want := indexRecordStart([]byte(b)), strings.Index(b, string(recordStart)); got != want {
			t.Errorf("indexRecordStart(%q) = %d, want %d", b, got, want)
		}
	}
}

func FuzzIndexRecordStart(f *testing.F) {
	f.Add([]byte(`x{\"id\":\"1\"}"},{"id":"2"`))
	f.Add(bytes.Repeat([]byte(`{"`), 20))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := indexRecordStart(b), bytes.Index(b, recordStart); got != want {
			t.Fatalf("indexRecordStart = %d, want %d", got, want)
		}
	})
}

func BenchmarkIndexRecordStart(b *testing.B) {
	// A record's message as CloudWatch Logs writes an audit event: escaped quotes, a
	// dozen braces, then the next record.
	msg := bytes.Repeat([]byte(`\"user\":{\"username\":\"system:serviceaccount:kube-system:x\",\"groups\":[\"a\"]},`), 16)
	rec := append(append([]byte(nil), msg...), `"},{"id":"123","timestamp":1,"message":"`...)
	b.SetBytes(int64(len(rec)))
	b.Run("bytes.Index", func(b *testing.B) {
		for b.Loop() {
			if !bytes.Contains(rec, recordStart) {
				b.Fatal("no record")
			}
		}
	})
	b.Run("indexRecordStart", func(b *testing.B) {
		for b.Loop() {
			if indexRecordStart(rec) < 0 {
				b.Fatal("no record")
			}
		}
	})
}
