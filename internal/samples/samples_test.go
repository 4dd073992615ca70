package samples_test

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/eks-unauthorized-access/detector/internal/samples"
)

func TestLines(t *testing.T) {
	lines, err := samples.Lines(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	// The external samples alone hold over 200 lines; most lines are JSON objects.
	objects := 0
	for _, l := range lines {
		var v map[string]any
		if json.Unmarshal(l, &v) == nil {
			objects++
		}
	}
	if len(lines) < 200 || objects < len(lines)/2 {
		t.Errorf("%d lines, %d JSON objects", len(lines), objects)
	}
	if _, err := samples.Lines(filepath.Join("no", "such", "root")); err != nil {
		t.Errorf("a root without samples: %v, want no lines and no error", err)
	}
}
