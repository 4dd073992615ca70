// Package samples loads the audit lines that tests and fuzz seed corpora share: the raw
// lines behind the sample events (events/raw), the public samples copied under
// internal/detect/testdata/external (provenance in PROVENANCE.md there), and the events of
// the detection case files (internal/detect/testdata/cases); and builds the typical
// matching line (ForbiddenCreate). Only tests import it.
package samples

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Lines returns every sample line, one per element; root is the repository's root.
func Lines(root string) ([][]byte, error) {
	var lines [][]byte
	for _, pattern := range []string{
		filepath.Join(root, "events", "raw", "*"),
		filepath.Join(root, "internal", "detect", "testdata", "external", "*.jsonl"),
		filepath.Join(root, "internal", "detect", "testdata", "external", "*.json"),
	} {
		names, err := filepath.Glob(pattern)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", pattern, err)
		}
		for _, name := range names {
			b, err := os.ReadFile(name)
			if err != nil {
				return nil, fmt.Errorf("read sample lines: %w", err)
			}
			sc := bufio.NewScanner(bytes.NewReader(b))
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				if len(bytes.TrimSpace(sc.Bytes())) > 0 {
					lines = append(lines, append([]byte(nil), sc.Bytes()...))
				}
			}
			if err := sc.Err(); err != nil {
				return nil, fmt.Errorf("read %s: %w", name, err)
			}
		}
	}
	cases, err := filepath.Glob(filepath.Join(root, "internal", "detect", "testdata", "cases", "*.json"))
	if err != nil {
		return nil, fmt.Errorf("list detection cases: %w", err)
	}
	for _, name := range cases {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("read detection case: %w", err)
		}
		var c struct {
			Event json.RawMessage `json:"event"`
		}
		if err := json.Unmarshal(b, &c); err != nil {
			return nil, fmt.Errorf("parse %s: %w", name, err)
		}
		lines = append(lines, c.Event)
	}
	return lines, nil
}

// MinLines is the fewest sample lines the repository holds; fewer means a path is wrong.
const MinLines = 100

// LinesForTest returns Lines(root), failing t when they cannot be read or are fewer than
// MinLines (a seed corpus that silently shrank would fuzz nothing real).
func LinesForTest(t testing.TB, root string) [][]byte {
	t.Helper()
	lines, err := Lines(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) < MinLines {
		t.Fatalf("only %d sample lines found under %s", len(lines), root)
	}
	return lines
}

// ForbiddenCreate returns a denied create of a secret in kube-system by user from ip,
// received at at, as kube-apiserver writes it (DESIGN.md section 7): the rule matches it.
// Its auditID is derived from user and at; extra is merged into the event's top level
// (auditID, requestObject, user overrides, ...). It fails t only if extra cannot be
// encoded.
func ForbiddenCreate(t testing.TB, user, ip string, at time.Time, extra map[string]any) string {
	t.Helper()
	at = at.UTC()
	ev := map[string]any{
		"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
		"auditID": fmt.Sprintf("a-%s-%d", user, at.UnixNano()), "stage": "ResponseComplete",
		"requestURI": "/api/v1/namespaces/kube-system/secrets", "verb": "create",
		"user":      map[string]any{"username": user, "uid": "aws-iam-authenticator:111122223333:" + user, "groups": []string{"system:authenticated"}},
		"sourceIPs": []string{ip}, "userAgent": "kubectl/v1.34.2",
		"objectRef": map[string]any{"resource": "secrets", "namespace": "kube-system", "apiVersion": "v1"},
		"responseStatus": map[string]any{
			"metadata": map[string]any{}, "status": "Failure", "reason": "Forbidden", "code": 403,
			"message": fmt.Sprintf(`secrets is forbidden: User %q cannot create resource "secrets" in API group "" in the namespace "kube-system"`, user),
		},
		"requestReceivedTimestamp": at.Format("2006-01-02T15:04:05.000000Z"),
		"stageTimestamp":           at.Add(time.Millisecond).Format("2006-01-02T15:04:05.000000Z"),
		"annotations":              map[string]string{"authorization.k8s.io/decision": "forbid", "authorization.k8s.io/reason": ""},
	}
	for k, v := range extra {
		ev[k] = v
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
