package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/onsi/ginkgo/v2/reporters"
	"github.com/onsi/ginkgo/v2/types"
)

// dryRun writes a JSON report as a dry run makes it: the selected specs passed, the others
// skipped, and a suite node besides.
func dryRun(t *testing.T) string {
	t.Helper()
	spec := func(file string, line int, state types.SpecState) types.SpecReport {
		return types.SpecReport{LeafNodeType: types.NodeTypeIt, LeafNodeLocation: types.CodeLocation{FileName: file, LineNumber: line}, State: state}
	}
	r := types.Report{SpecReports: types.SpecReports{
		spec("/k8s/test/e2e/network/service.go", 30, types.SpecStatePassed),
		spec("/k8s/test/e2e/apps/deployment.go", 10, types.SpecStatePassed),
		spec("/k8s/test/e2e/apps/deployment.go", 20, types.SpecStateSkipped),
		spec("/k8s/test/e2e/apps/deployment.go", 5, types.SpecStatePassed),
		spec("/k8s/test/e2e/network/dns.go", 7, types.SpecStatePassed),
		spec("/k8s/test/e2e/network/service.go", 10, types.SpecStatePassed),
		{LeafNodeType: types.NodeTypeSynchronizedBeforeSuite, LeafNodeLocation: types.CodeLocation{FileName: "/k8s/test/e2e/e2e.go", LineNumber: 1}, State: types.SpecStatePassed},
	}}
	data, err := json.Marshal([]types.Report{r})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dry-run.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// The shards together are the selected specs, each once, sorted by file and line and dealt
// round-robin; the flags are file filters Ginkgo parses back to those lines.
func TestShardsCoverTheSelectedSpecsOnce(t *testing.T) {
	report := dryRun(t)
	var all []string
	for i := 1; i <= 2; i++ {
		var out bytes.Buffer
		if err := run([]string{"shard", "-shard", []string{"1/2", "2/2"}[i-1], report}, &out); err != nil {
			t.Fatal(err)
		}
		flags := strings.Fields(out.String())
		all = append(all, flags...)
		for _, f := range flags {
			filter := strings.TrimPrefix(f, "--ginkgo.focus-file=")
			if _, err := types.ParseFileFilters([]string{filter}); err != nil {
				t.Errorf("%s: Ginkgo does not parse it: %v", f, err)
			}
		}
	}
	want := []string{
		`--ginkgo.focus-file=/k8s/test/e2e/apps/deployment\.go$:5`,
		`--ginkgo.focus-file=/k8s/test/e2e/network/dns\.go$:7`,
		`--ginkgo.focus-file=/k8s/test/e2e/network/service\.go$:30`,
		`--ginkgo.focus-file=/k8s/test/e2e/apps/deployment\.go$:10`,
		`--ginkgo.focus-file=/k8s/test/e2e/network/service\.go$:10`,
	}
	if !slices.Equal(all, want) {
		t.Errorf("shards 1/2 then 2/2:\n%s\nwant:\n%s", strings.Join(all, "\n"), strings.Join(want, "\n"))
	}
	for _, bad := range []string{"0/2", "3/2", "2", "a/b", "1/0"} {
		if err := run([]string{"shard", "-shard", bad, report}, &bytes.Buffer{}); err == nil {
			t.Errorf("-shard %s was taken", bad)
		}
	}
}

// writeShard writes one shard's run.json and a JUnit report of specs named by their status.
func writeShard(t *testing.T, dir, name string, r Run, cases map[string]string) {
	t.Helper()
	d := filepath.Join(dir, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(r)
	if err := os.WriteFile(filepath.Join(d, "run.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	suite := reporters.JUnitTestSuite{Name: "Kubernetes e2e suite"}
	suite.TestCases = append(suite.TestCases, reporters.JUnitTestCase{Name: "[SynchronizedBeforeSuite]", Status: "passed"})
	for n, status := range cases {
		tc := reporters.JUnitTestCase{Name: "[It] " + n, Status: status}
		switch status {
		case "failed":
			tc.Failure = &reporters.JUnitFailure{Message: "boom"}
		case "skipped":
			tc.Skipped = &reporters.JUnitSkipped{Message: "skipped"}
		}
		suite.TestCases = append(suite.TestCases, tc)
	}
	data, err := xml.Marshal(reporters.JUnitTestSuites{TestSuites: []reporters.JUnitTestSuite{suite}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "junit.xml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// The summary adds the shards of one commit up, names each failure and the shards not run yet;
// shards of another commit or focus, or one shard twice, are refused.
func TestSummaryMergesTheShardsOfOneCommit(t *testing.T) {
	dir := t.TempDir()
	r := Run{Commit: "abc1234", Release: "v1.37.2", Focus: `\[Conformance\]`}
	r.Shard = "1/3"
	writeShard(t, dir, "shard-1", r, map[string]string{"a": "passed", "b": "failed", "c": "skipped"})
	r.Shard = "3/3"
	writeShard(t, dir, "shard-3", r, map[string]string{"d": "passed", "e": "passed"})
	var out bytes.Buffer
	if err := run([]string{"summary", dir}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`v1.37.2, the specs of \[Conformance\], at commit abc1234, shards 1/3, 3/3`, "passed 3, failed 1, skipped 1",
		"incomplete: shards 2/3 have not run", "FAILED [It] b"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	r.Shard, r.Commit = "2/3", "def5678"
	writeShard(t, dir, "shard-2", r, map[string]string{"f": "passed"})
	if err := run([]string{"summary", dir}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "one commit") {
		t.Errorf("shards of two commits: %v, want a refusal", err)
	}
	r.Shard, r.Commit, r.Focus = "2/3", "abc1234", `\[sig-network\].*\[Conformance\]`
	writeShard(t, dir, "shard-2", r, map[string]string{"f": "passed"})
	if err := run([]string{"summary", dir}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "focus") {
		t.Errorf("shards of two focuses: %v, want a refusal", err)
	}
	r.Shard, r.Focus = "2/3", `\[Conformance\]`
	writeShard(t, dir, "shard-2", r, map[string]string{})
	if err := run([]string{"summary", dir}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "no spec ran") {
		t.Errorf("a shard whose suite stopped before its specs: %v, want a refusal", err)
	}
	r.Shard = "1/3"
	writeShard(t, dir, "shard-2", r, map[string]string{"f": "passed"})
	if err := run([]string{"summary", dir}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "ran twice") {
		t.Errorf("one shard twice: %v, want a refusal", err)
	}
}
