package bench

import (
	"bytes"
	"fmt"
	"testing"
)

func TestScratchFreq(t *testing.T) {
	d := loadPayloads()[0]
	m := d.Message
	fmt.Println("len", len(m), "events", d.Events)
	for _, c := range []byte("forbidenFORBIDEN\\{\"uU") {
		fmt.Printf("%c %d\n", c, bytes.Count(m, []byte{c}))
	}
	for _, s := range []string{`{"id":"`, `"},{"id":"`, `\u`, "dd", "dD", "Dd", "DD", "bid", "rb", "Rb"} {
		fmt.Printf("%q %d\n", s, bytes.Count(m, []byte(s)))
	}
	fmt.Println(string(m[:300]))
}

func BenchmarkScratch(b *testing.B) {
	m := loadPayloads()[0].Message
	for _, s := range []string{`{"id":"`, `"},{"id":"`, `\u`, "dd", "dD", "Dd", "DD", "f", "F", "b", "B"} {
		b.Run(s, func(b *testing.B) {
			b.SetBytes(int64(len(m)))
			for b.Loop() {
				n := 0
				for x := m; ; {
					i := bytes.Index(x, []byte(s))
					if i < 0 {
						break
					}
					n++
					x = x[i+1:]
				}
			}
		})
	}
}
