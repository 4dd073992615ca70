package detect_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/eks-unauthorized-access/detector/internal/audit"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/golden"
)

var modes = []detect.Mode{detect.ModeSeed, detect.ModeAuthz, detect.ModeBroad}

// detectionCase is one file of testdata/cases: an audit line and what each mode decides.
type detectionCase struct {
	Description  string               `json:"description"`
	LogTimestamp time.Time            `json:"logTimestamp"`
	Event        json.RawMessage      `json:"event"` // kept verbatim, escapes included
	Expect       map[detect.Mode]bool `json:"expect"`
	Match        *struct {
		Fields   detect.Fields `json:"fields"`
		Time     time.Time     `json:"time"`
		Decision string        `json:"decision"`
	} `json:"match"`
}

func TestEvaluateCases(t *testing.T) {
	files, err := filepath.Glob("testdata/cases/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	matched := 0
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			var c detectionCase
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(raw, &c); err != nil {
				t.Fatalf("read case: %v", err)
			}
			if len(c.Expect) != len(modes) {
				t.Fatalf("case must state the outcome of every mode, got %v", c.Expect)
			}
			ev, err := audit.Parse(c.Event)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			for _, mode := range modes {
				m, ok := detect.Evaluate(ev, c.LogTimestamp, mode)
				if ok != c.Expect[mode] {
					t.Errorf("%s: matched=%v, want %v (%s)", mode, ok, c.Expect[mode], c.Description)
					continue
				}
				if !ok {
					continue
				}
				matched++
				if c.Match == nil {
					t.Fatal("case matches but states no expected match")
				}
				if !reflect.DeepEqual(m.Fields, c.Match.Fields) {
					got, _ := json.MarshalIndent(m.Fields, "", "  ")
					t.Errorf("%s: fields:\n%s", mode, got)
				}
				if !m.Time.Equal(c.Match.Time) || m.Time.Location() != time.UTC {
					t.Errorf("%s: time %v, want %v in UTC", mode, m.Time, c.Match.Time)
				}
				if m.Decision != c.Match.Decision {
					t.Errorf("%s: decision %q, want %q", mode, m.Decision, c.Match.Decision)
				}
			}
		})
	}
	if matched == 0 {
		t.Error("no case matched in any mode")
	}
}

// TestExternalSamples classifies every line of the public samples in testdata/external
// and compares with the golden file beside each: parse outcome and per-mode decision.
func TestExternalSamples(t *testing.T) {
	files, _ := filepath.Glob("testdata/external/*.json*")
	if len(files) != 3 {
		t.Fatalf("want 3 sample files, got %v", files)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			for i, line := range bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n")) {
				fmt.Fprintf(&out, "%d\t%s\n", i+1, classify(line))
			}
			goldenPath := strings.TrimSuffix(file, filepath.Ext(file)) + ".golden"
			golden.Check(t, goldenPath, out.Bytes())
		})
	}
}

func classify(line []byte) string {
	ev, err := audit.Parse(line)
	switch {
	case errors.Is(err, audit.ErrNotAudit):
		return "not_audit"
	case err != nil:
		return "error: " + err.Error()
	}
	var got []string
	for _, mode := range modes {
		if m, ok := detect.Evaluate(ev, time.Time{}, mode); ok {
			got = append(got, fmt.Sprintf("%s(user=%s code=%s)", mode, m.Fields.User, m.Fields.Code))
		}
	}
	if len(got) == 0 {
		return "audit"
	}
	return "audit " + strings.Join(got, " ")
}

func TestParseMode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want detect.Mode
		err  bool
	}{
		{"", detect.ModeSeed, false},
		{"seed", detect.ModeSeed, false},
		{" AuthZ ", detect.ModeAuthz, false},
		{"broad", detect.ModeBroad, false},
		{"strict", "", true},
	} {
		got, err := detect.ParseMode(tc.in)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("ParseMode(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// TestUnknownModeActsAsSeed: a mode that slipped past ParseMode must not disable detection.
func TestUnknownModeActsAsSeed(t *testing.T) {
	ev, err := audit.Parse([]byte(`{"apiVersion":"audit.k8s.io/v1","kind":"Event","verb":"create","responseStatus":{"reason":"Forbidden","code":403}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := detect.Evaluate(ev, time.Time{}, detect.Mode("typo")); !ok {
		t.Error("unknown mode did not match a seed match")
	}
}
