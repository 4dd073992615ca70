package memlimit

import (
	"math"
	"runtime/debug"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLimit(t *testing.T) {
	for _, c := range []struct {
		name    string
		env     map[string]string
		want    int64
		wantErr bool
	}{
		{"256 MB keeps a tenth", map[string]string{EnvMemorySize: "256"}, 256<<20 - (256<<20)/10, false},
		{"1024 MB", map[string]string{EnvMemorySize: "1024"}, 1024<<20 - (1024<<20)/10, false},
		{"128 MB keeps at least 16 MiB", map[string]string{EnvMemorySize: "128"}, 112 << 20, false},
		{"GOMEMLIMIT set on the function wins", map[string]string{EnvMemorySize: "256", "GOMEMLIMIT": "100MiB"}, 0, false},
		{"outside Lambda", map[string]string{}, 0, false},
		{"not a number", map[string]string{EnvMemorySize: "256MB"}, 0, true},
		{"zero", map[string]string{EnvMemorySize: "0"}, 0, true},
		{"too small for the headroom", map[string]string{EnvMemorySize: "16"}, 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Limit(env(c.env))
			if got != c.want || (err != nil) != c.wantErr {
				t.Errorf("Limit = %d, %v; want %d, error %v", got, err, c.want, c.wantErr)
			}
		})
	}
}

func TestApplySetsTheRuntimeLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })

	got, err := Apply(env(map[string]string{EnvMemorySize: "512"}))
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(512<<20 - (512<<20)/10); got != want || debug.SetMemoryLimit(-1) != want {
		t.Errorf("Apply = %d, runtime limit %d; want %d", got, debug.SetMemoryLimit(-1), want)
	}

	debug.SetMemoryLimit(math.MaxInt64)
	if got, err := Apply(env(map[string]string{})); got != 0 || err != nil || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		t.Errorf("outside Lambda: Apply = %d, %v, runtime limit %d; want it untouched", got, err, debug.SetMemoryLimit(-1))
	}
}
