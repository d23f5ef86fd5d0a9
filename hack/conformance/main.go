// Command conformance holds the two steps of `make conformance` that are plain bookkeeping, so
// that the suite can run in shards that each fit this machine:
//
//	conformance shard -shard I/N REPORT.json
//	    prints the e2e.test flags that pick shard I of N of the specs a dry run selected
//	    (REPORT.json: Ginkgo's JSON report of `e2e.test --ginkgo.dry-run --ginkgo.focus=...`):
//	    one --ginkgo.focus-file=FILE:LINE per spec, the specs sorted by file and line and dealt
//	    round-robin, so that each shard gets a share of every area of the suite.
//	conformance push -repo HOST/PATH -bins DIR -userland DIR -source DIR [-ca FILE] [-username USER]
//	    builds every image the [Conformance] specs run (testImages: from binaries built from
//	    source, Debian's packages and the release's test/images files) and pushes each to
//	    HOST/PATH/NAME:TAG, the suite's names under kubeup's own repository; with -username the
//	    password is read from standard input. It prints what each image holds.
//	conformance prepull -repo HOST/PATH
//	    prints a namespace and a DaemonSet that pull the test images the specs share onto every
//	    machine before the suite starts (the images with a Prepull command in testImages).
//	conformance registry -dir DIR [-listen 127.0.0.1:5000] [-guest 10.0.2.100:5000] [-username USER]
//	    writes distribution's registry config into a new DIR: its own CA, a certificate for the
//	    guest address the machines reach it at and for the loopback address it listens on, one
//	    user with a random password (DIR/password, 0600; bcrypt in DIR/htpasswd), storage in
//	    DIR/data.
//	conformance summary DIR
//	    merges the JUnit reports of every shard under DIR (DIR/*/junit.xml, each beside the
//	    run.json that says which commit, release and shard ran it) into the counts, and names
//	    every failed spec; shards of different commits, releases or focuses are refused, as are
//	    two runs of one shard.
package main

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/onsi/ginkgo/v2/reporters"
	"github.com/onsi/ginkgo/v2/types"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		os.Exit(1)
	}
}

const usage = "usage: conformance shard -shard I/N REPORT.json | conformance push -repo HOST/PATH -bins DIR -userland DIR -source DIR [-ca FILE] [-username USER] | conformance prepull -repo HOST/PATH | conformance registry -dir DIR | conformance summary DIR"

func run(args []string, out io.Writer) error {
	switch {
	case len(args) == 4 && args[0] == "shard" && args[1] == "-shard":
		i, n, err := parseShard(args[2])
		if err != nil {
			return err
		}
		flags, err := shardFlags(args[3], i, n)
		if err != nil {
			return err
		}
		for _, f := range flags {
			fmt.Fprintln(out, f)
		}
		return nil
	case len(args) > 0 && args[0] == "push":
		return pushCommand(args[1:], os.Stdin, out)
	case len(args) > 0 && args[0] == "prepull":
		return prepullCommand(args[1:], out)
	case len(args) > 0 && args[0] == "registry":
		return registryCommand(args[1:], out)
	case len(args) == 2 && args[0] == "summary":
		s, err := summarize(args[1])
		if err != nil {
			return err
		}
		s.print(out)
		return nil
	}
	return errors.New(usage)
}

// parseShard reads I/N, 1 <= I <= N.
func parseShard(s string) (i, n int, err error) {
	a, b, ok := strings.Cut(s, "/")
	i, erri := strconv.Atoi(a)
	n, errn := strconv.Atoi(b)
	if !ok || erri != nil || errn != nil || n < 1 || i < 1 || i > n {
		return 0, 0, fmt.Errorf("-shard %q: write I/N with 1 <= I <= N, such as 2/4", s)
	}
	return i, n, nil
}

// shardFlags deals the specs the dry run in report selected into n shards and returns shard
// i's focus-file flags.
func shardFlags(report string, i, n int) ([]string, error) {
	data, err := os.ReadFile(report)
	if err != nil {
		return nil, err
	}
	var reports []types.Report
	if err := json.Unmarshal(data, &reports); err != nil {
		return nil, fmt.Errorf("%s: not Ginkgo's JSON report (--ginkgo.json-report): %w", report, err)
	}
	var specs []types.CodeLocation
	for _, r := range reports {
		for _, s := range r.SpecReports {
			// In a dry run the selected specs pass without running; the others are skipped.
			if s.LeafNodeType == types.NodeTypeIt && s.State == types.SpecStatePassed {
				specs = append(specs, s.LeafNodeLocation)
			}
		}
	}
	if len(specs) == 0 {
		return nil, fmt.Errorf("%s: the dry run selected no spec", report)
	}
	slices.SortFunc(specs, func(a, b types.CodeLocation) int {
		if c := strings.Compare(a.FileName, b.FileName); c != 0 {
			return c
		}
		return a.LineNumber - b.LineNumber
	})
	specs = slices.Compact(specs)
	var flags []string
	for k := i - 1; k < len(specs); k += n {
		// A file filter is a regular expression: the path is quoted, and anchored at its end.
		flags = append(flags, fmt.Sprintf("--ginkgo.focus-file=%s$:%d", quoteMeta(specs[k].FileName), specs[k].LineNumber))
	}
	return flags, nil
}

// quoteMeta escapes a path for Ginkgo's file filter, which splits at ':' before compiling the
// regular expression: a path with ':' cannot be named.
func quoteMeta(path string) string {
	return strings.NewReplacer(".", `\.`, "+", `\+`, "(", `\(`, ")", `\)`, "[", `\[`, "]", `\]`).Replace(path)
}

// Run is a shard's run.json, written by the run beside its junit.xml.
type Run struct {
	Commit  string `json:"commit"`
	Release string `json:"release"`
	Shard   string `json:"shard"` // I/N
	// Focus is the specs' regular expression, \[Conformance\] for the whole suite.
	Focus string `json:"focus"`
}

type summary struct {
	Run
	Shards                  []string
	Passed, Failed, Skipped int
	Failures                []string
	MissingShards           []string
}

func summarize(dir string) (summary, error) {
	var s summary
	runs, err := filepath.Glob(filepath.Join(dir, "*", "run.json"))
	if err != nil || len(runs) == 0 {
		return s, fmt.Errorf("%s: no shard's run.json under it", dir)
	}
	total := 0
	for _, path := range runs {
		var r Run
		data, err := os.ReadFile(path)
		if err == nil {
			err = json.Unmarshal(data, &r)
		}
		if err != nil {
			return s, fmt.Errorf("%s: %w", path, err)
		}
		_, n, err := parseShard(r.Shard)
		if err != nil {
			return s, fmt.Errorf("%s: %w", path, err)
		}
		switch {
		case s.Commit == "":
			s.Run, total = r, n
		case r.Commit != s.Commit || r.Release != s.Release || n != total || r.Focus != s.Focus:
			return s, fmt.Errorf("%s: shard %s ran %s %s at commit %s, another %s %s at %s (of %d shards): merge shards of one commit, release and focus only",
				path, r.Shard, r.Release, r.Focus, r.Commit, s.Release, s.Focus, s.Commit, total)
		}
		if slices.Contains(s.Shards, r.Shard) {
			return s, fmt.Errorf("%s: shard %s ran twice: keep one of its folders", path, r.Shard)
		}
		s.Shards = append(s.Shards, r.Shard)
		junit := filepath.Join(filepath.Dir(path), "junit.xml")
		if err := s.add(junit); err != nil {
			return s, err
		}
	}
	s.Run.Shard = ""
	slices.Sort(s.Shards)
	for i := 1; i <= total; i++ {
		if sh := fmt.Sprintf("%d/%d", i, total); !slices.Contains(s.Shards, sh) {
			s.MissingShards = append(s.MissingShards, sh)
		}
	}
	slices.Sort(s.Failures)
	return s, nil
}

// add counts the specs of one JUnit report: Ginkgo's, whose suite nodes (BeforeSuite and the
// like) are test cases too and are left out unless they failed.
func (s *summary) add(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var suites reporters.JUnitTestSuites
	if err := xml.Unmarshal(data, &suites); err != nil {
		return fmt.Errorf("%s: not a JUnit report: %w", path, err)
	}
	specs := 0
	for _, suite := range suites.TestSuites {
		for _, tc := range suite.TestCases {
			spec := strings.HasPrefix(tc.Name, "[It]")
			if spec {
				specs++
			}
			switch {
			case tc.Failure != nil || tc.Error != nil:
				s.Failed++
				s.Failures = append(s.Failures, tc.Name)
			case !spec:
			case tc.Skipped != nil:
				s.Skipped++
			default:
				s.Passed++
			}
		}
	}
	if specs == 0 {
		// Every shard has specs: none reported means the suite stopped before them.
		return fmt.Errorf("%s: no spec ran: the suite failed before its specs (its run.log says why); run the shard again", path)
	}
	return nil
}

func (s summary) print(w io.Writer) {
	fmt.Fprintf(w, "Kubernetes %s, the specs of %s, at commit %s, shards %s\n", s.Release, s.Focus, s.Commit, strings.Join(s.Shards, ", "))
	fmt.Fprintf(w, "passed %d, failed %d, skipped %d\n", s.Passed, s.Failed, s.Skipped)
	if len(s.MissingShards) > 0 {
		fmt.Fprintf(w, "incomplete: shards %s have not run\n", strings.Join(s.MissingShards, ", "))
	}
	for _, f := range s.Failures {
		fmt.Fprintf(w, "FAILED %s\n", f)
	}
}
