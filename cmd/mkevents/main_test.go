package main

import (
	"io"
	"testing"
)

// TestEventsUpToDate fails when the committed events/ differ from what the generator
// writes from events/raw.
func TestEventsUpToDate(t *testing.T) {
	if err := run("../../events", true, io.Discard); err != nil {
		t.Fatal(err)
	}
}
