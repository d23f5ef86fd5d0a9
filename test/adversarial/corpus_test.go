package adversarial_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"kubeup.dev/kubeup/internal/versions"
	"kubeup.dev/kubeup/test/testenv"
)

// updateCorpus, set to 1, makes TestConfigCasesSeedTheFuzzer write the corpus files it finds
// missing or stale.
const updateCorpus = "KUBEUP_UPDATE_CORPUS"

// maxSeed is the largest case kept as a seed: the fuzzer mutates its seeds, and a 50 MB one would
// make every run slow without finding more than the size limit it is refused by.
const maxSeed = 64 << 10

// Every hostile config case of TestBadConfigsChangeNothing small enough to be a seed is in the
// config decoder's fuzz corpus (internal/cluster/testdata/fuzz/FuzzParse/adversarial-<case>),
// so FuzzParse, which `make test` runs on its seeds and `make fuzz` mutates, starts from every
// input this suite found worth a case; corpus files of cases that are gone are refused too.
// KUBEUP_UPDATE_CORPUS=1 writes them.
func TestConfigCasesSeedTheFuzzer(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(), "internal/cluster/testdata/fuzz/FuzzParse")
	// The release is the default one, not KUBEUP_KUBERNETES's: the corpus is one set of files.
	want := map[string]string{}
	for _, c := range configCases(fmt.Sprintf(base, versions.Kubernetes)) {
		if len(c.config) > maxSeed {
			continue
		}
		name := "adversarial-" + strings.Trim(regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(strings.ToLower(c.name), "-"), "-")
		want[name] = fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", c.config)
	}
	have, _ := filepath.Glob(filepath.Join(dir, "adversarial-*"))
	update := os.Getenv(updateCorpus) == "1"
	for _, p := range have {
		if _, ok := want[filepath.Base(p)]; ok {
			continue
		}
		if !update {
			t.Errorf("%s: no case of this name any more: run %s=1 go test ./test/adversarial -run %s", p, updateCorpus, t.Name())
		} else if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	for name, data := range want {
		p := filepath.Join(dir, name)
		if got, err := os.ReadFile(p); err == nil && string(got) == data {
			continue
		}
		if !update {
			t.Errorf("%s is missing or not case %q as it is now: run %s=1 go test ./test/adversarial -run %s", p, name, updateCorpus, t.Name())
		} else if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
