package cluster

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestParseUnknownFields(t *testing.T) {
	src := mutate(t, validBase,
		r("kind: Cluster\n", "kind: Cluster\nnmae: test\n"),
		r(`mac: "52:54:00:aa:00:11"`, `macc: "52:54:00:aa:00:11"`),
		r("podCIDR:", "podCidr:"),
	)
	_, probs := problemsOf(t, "test.yaml", src)
	checkProblems(t, src, probs, []want{
		{path: "nmae", msg: `unknown field "nmae"`, hint: "check its spelling", at: "nmae:"},
		{path: "machines[1].macc", msg: `unknown field "macc"`, hint: "check its spelling", at: "macc:"},
		{path: "network.podCidr", msg: `unknown field "podCidr"`, at: "podCidr:"},
	})
	// The line is in the message too, as file:line.
	_, err := Parse("test.yaml", []byte(src))
	if want := "test.yaml:" + strconv.Itoa(lineOf(t, src, "macc:")) + ": machines[1].macc: unknown field"; !strings.Contains(err.Error(), want) {
		t.Errorf("error lacks %q:\n%v", want, err)
	}
}

// The same unknown field in two machines is reported twice, each with its own line and path.
func TestParseUnknownFieldInEveryMachine(t *testing.T) {
	src := mutate(t, validBase,
		r(`mac: "52:54:00:aa:00:10"`, `mack: "52:54:00:aa:00:10"`),
		r(`mac: "52:54:00:aa:00:11"`, `mack: "52:54:00:aa:00:11"`),
	)
	_, probs := problemsOf(t, "test.yaml", src)
	checkProblems(t, src, probs, []want{
		{path: "machines[0].mack", msg: `unknown field "mack"`, line: 19},
		{path: "machines[1].mack", msg: `unknown field "mack"`, line: 23},
	})
}

func TestParseTypeMismatch(t *testing.T) {
	tests := []struct {
		name  string
		edits []edit
		want  []want
	}{
		{"cpus is a string", []edit{r("qemu:\n", "qemu:\n  cpus: \"two\"\n")},
			[]want{{path: "qemu.cpus", msg: "`two` into int", at: "cpus:"}}},
		{"cpus is an unquoted word", []edit{r("qemu:\n", "qemu:\n  cpus: two\n")},
			[]want{{path: "qemu.cpus", msg: "`two` into int", at: "cpus:"}}},
		{"network is a list", []edit{r("network:\n  podCIDR: 10.244.0.0/16\n  serviceCIDR: 10.96.0.0/12\n  dnsDomain: cluster.local\n  cni: flannel\n", "network: [a, b]\n")},
			[]want{{path: "network", msg: "!!seq into cluster.Network", at: "network: [a, b]"}}},
		{"a machine's name is a list", []edit{r("  - name: node-1\n", "  - name: [node-1]\n")},
			[]want{{path: "machines[1].name", msg: "!!seq into string", at: "name: [node-1]"}, {path: "machines[1].name", msg: "name is required", at: "name: [node-1]"}}},
		{"name is a map", []edit{r("name: test", "name: {first: a}")},
			// The field stays empty, so validation also reports it missing.
			[]want{{path: "name", msg: "!!map into string", at: "first: a"}, {path: "name", msg: "name is required", at: "first: a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := mutate(t, validBase, tt.edits...)
			_, probs := problemsOf(t, "test.yaml", src)
			checkProblems(t, src, probs, tt.want)
		})
	}
}

func TestParseMultipleDocuments(t *testing.T) {
	tests := []struct {
		name, src string
		line      int
	}{
		{"two clusters", validBase + "---\n" + validBase, 25},
		{"trailing empty document", validBase + "---\n", 25},
		{"broken second document", validBase + "---\nname: [unclosed\n", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, probs := problemsOf(t, "two.yaml", tt.src)
			checkProblems(t, tt.src, probs, []want{{msg: "more than one YAML document", hint: "one cluster per file", line: tt.line}})
		})
	}
	// A document end marker alone is not a second document.
	if _, err := Parse("one.yaml", []byte(validBase+"...\n")); err != nil {
		t.Errorf("document end marker: %v", err)
	}
}

func TestParseEmpty(t *testing.T) {
	for _, src := range []string{"", "\n\n", "   \n", "# nothing here\n# at all\n"} {
		c, err := Parse("empty.yaml", []byte(src))
		if c != nil {
			t.Errorf("%q: got a config", src)
		}
		if err == nil || !strings.Contains(err.Error(), "empty.yaml: the file is empty") {
			t.Errorf("%q: error = %v, want one saying the file is empty", src, err)
		}
	}
}

func TestParseInvalidYAML(t *testing.T) {
	for _, src := range []string{
		"name: [unclosed\n",
		"name: \"unclosed\n",
		"\tname: test\n",
		"apiVersion: a\n\tkind: b\n",
		"a:\n  b: 1\n c: 2\n",
		"a: b: c\n",
		"key: *undefined\n",
		"- [\n",
		"{",
		"%YAML 9.9\n---\na: 1\n",
		"\xff\xfe\x00",
	} {
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("%q: Parse panicked: %v", src, p)
				}
			}()
			_, err := Parse("bad.yaml", []byte(src))
			if err == nil {
				t.Errorf("%q: no error", src)
				return
			}
			var probs Problems
			if !errors.As(err, &probs) || len(probs) == 0 || probs[0].File != "bad.yaml" || probs[0].Hint == "" {
				t.Errorf("%q: error %#v is not a Problems naming the file with a hint", src, err)
			}
		}()
	}
}

func TestParseNotAMapping(t *testing.T) {
	for _, src := range []string{"- a\n- b\n", "just a string\n", "42\n"} {
		_, probs := problemsOf(t, "list.yaml", src)
		if len(probs) == 0 || !strings.Contains(probs[0].Msg, "into cluster.Config") || probs[0].Line != 1 {
			t.Errorf("%q: first problem = %v, want a type error on line 1", src, probs)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte(validBase), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(good)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Name != "test" || len(c.Machines) != 2 {
		t.Errorf("Load gave %+v", c)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(mutate(t, validBase, r("cni: flannel", "cni: calico"))), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), bad+":10: network.cni") {
		t.Errorf("Load(bad) = %v, want a problem naming %s:10", err, bad)
	}

	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}

	// A valid config padded past the limit with a comment is refused unread.
	huge := filepath.Join(dir, "huge.yaml")
	if err := os.WriteFile(huge, []byte(validBase+"# "+strings.Repeat("x", MaxConfigSize)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(huge); err == nil || !strings.Contains(err.Error(), huge+": the file is over 4 MiB") {
		t.Errorf("Load(huge) = %v, want a refusal naming the file and the limit", err)
	}
}
