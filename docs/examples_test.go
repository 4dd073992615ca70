package docs_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeAlertExample checks that the alert the README shows is generated output: the
// subject and the head of the e-mail of internal/alert/testdata (the golden files of the
// renderer), up to the cluster lines.
func TestReadmeAlertExample(t *testing.T) {
	subject, err := os.ReadFile("../internal/alert/testdata/subject.golden")
	if err != nil {
		t.Fatal(err)
	}
	email, err := os.ReadFile("../internal/alert/testdata/email.golden")
	if err != nil {
		t.Fatal(err)
	}
	head, _, ok := strings.Cut(string(email), "\nCluster:")
	if !ok {
		t.Fatal("the e-mail golden has no Cluster line")
	}
	// Without the title and the blank line after it (the subject stands for them).
	_, head, _ = strings.Cut(head, "\n\n")
	want := strings.TrimSpace(string(subject)) + "\n\n" + strings.TrimRight(head, "\n") + "\n"
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)## An alert\n.*?```text\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README has no alert example")
	}
	if got := string(m[1]); got != want {
		t.Errorf("README alert example differs from the golden files; want:\n%s\ngot:\n%s", want, got)
	}
}

// TestAlertsEmailExample checks that docs/alerts.md shows the e-mail golden file whole.
func TestAlertsEmailExample(t *testing.T) {
	email, err := os.ReadFile("../internal/alert/testdata/email.golden")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("alerts.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)## Example e-mail\n\n```\n(.*?)```").FindSubmatch(doc)
	if m == nil || string(m[1]) != string(email) {
		t.Error("docs/alerts.md's example e-mail differs from internal/alert/testdata/email.golden: copy it")
	}
}
