package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// docFiles are the README and every Markdown page under docs/, relative to the root.
func docFiles(t *testing.T) []string {
	t.Helper()
	files := []string{"README.md"}
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".md") {
			rel, err := filepath.Rel(root, path)
			if err != nil {
				return err
			}
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

var (
	fence      = regexp.MustCompile("(?ms)^\\s*```.*?^\\s*```[^\\n]*$")
	inlineCode = regexp.MustCompile("`[^`\\n]*`")
	inlineLink = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	refLink    = regexp.MustCompile(`(?m)^\s*\[[^\]]+\]:\s*(\S+)`)
	scheme     = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
	heading    = regexp.MustCompile(`(?m)^#{1,6}\s+(.+?)\s*#*\s*$`)
	mdLink     = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
)

// links are the targets of a Markdown page's links, outside code.
func links(text string) []string {
	text = fence.ReplaceAllString(text, "")
	text = inlineCode.ReplaceAllString(text, "")
	var out []string
	for _, re := range []*regexp.Regexp{inlineLink, refLink} {
		for _, m := range re.FindAllStringSubmatch(text, -1) {
			out = append(out, m[1])
		}
	}
	return out
}

// anchors are the fragments GitHub gives the headings of a Markdown page.
func anchors(text string) map[string]bool {
	text = fence.ReplaceAllString(text, "")
	seen := map[string]int{}
	out := map[string]bool{}
	for _, m := range heading.FindAllStringSubmatch(text, -1) {
		h := mdLink.ReplaceAllString(m[1], "$1")
		var b strings.Builder
		for _, r := range strings.ToLower(h) {
			switch {
			case unicode.IsLetter(r), unicode.IsDigit(r), r == '-', r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteRune('-')
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			out[a+"-"+strconv.Itoa(n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	return out
}

// TestDocLinks checks that every relative link of the README and docs/ points to a file or
// directory that exists, and a fragment into a Markdown page to one of its headings.
func TestDocLinks(t *testing.T) {
	for _, f := range docFiles(t) {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range links(string(data)) {
			if scheme.MatchString(l) {
				continue // http:, https:, mailto:
			}
			path, frag, _ := strings.Cut(l, "#")
			target := filepath.Join(root, f) // a bare #fragment is into the page itself
			if path != "" {
				if strings.HasPrefix(path, "/") {
					t.Errorf("%s: link %q: use a path relative to the page", f, l)
					continue
				}
				target = filepath.Join(filepath.Dir(filepath.Join(root, f)), path)
			}
			if _, err := os.Stat(target); err != nil {
				t.Errorf("%s: link %q: no such file", f, l)
				continue
			}
			if frag != "" && strings.HasSuffix(target, ".md") {
				page, err := os.ReadFile(target)
				if err != nil {
					t.Fatal(err)
				}
				if !anchors(string(page))[frag] {
					t.Errorf("%s: link %q: no heading with that anchor in %s", f, l, path)
				}
			}
		}
	}
}

// repoPath is a code span that names a path in the repository ("docs/pxe.md", "hack/bench/").
var repoPath = regexp.MustCompile("`((?:configs|docs|hack|images|internal|kubeup|kubeup-agent|kubeup-probe|ignition-gen|flannel-cni|packer-plugin|pxe|test)/[A-Za-z0-9_./-]*)`")

var goIdent = regexp.MustCompile(`\.[A-Z][^/]*$`)

// TestDocPaths checks that every repository path the README and docs/ name in a code span
// exists: a moved file leaves no stale mention behind.
func TestDocPaths(t *testing.T) {
	for _, f := range docFiles(t) {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range repoPath.FindAllStringSubmatch(string(data), -1) {
			p := strings.TrimSuffix(m[1], "/")
			if strings.Contains(p, "..") || goIdent.MatchString(p) {
				continue // internal/tokenpool.Pool names Go code, not a file
			}
			if _, err := os.Stat(filepath.Join(root, p)); err != nil {
				t.Errorf("%s: `%s`: no such file or directory in the repository", f, m[1])
			}
		}
	}
}

// TestLayoutListsEveryPackage checks that docs/layout.md has a line for every directory with
// Go code.
func TestLayoutListsEveryPackage(t *testing.T) {
	layout, err := os.ReadFile(filepath.Join(root, "docs", "layout.md"))
	if err != nil {
		t.Fatal(err)
	}
	dirs := map[string]bool{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(name, ".go") {
			rel, err := filepath.Rel(root, filepath.Dir(path))
			if err != nil {
				return err
			}
			dirs[filepath.ToSlash(rel)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for d := range dirs {
		if !strings.Contains(string(layout), "`"+d+"/`") {
			t.Errorf("docs/layout.md has no line for `%s/`", d)
		}
	}
}

// TestReadmeLinksEveryPage checks that the README, the entry point, links every page of docs/.
func TestReadmeLinksEveryPage(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	linked := map[string]bool{}
	for _, l := range links(string(readme)) {
		path, _, _ := strings.Cut(l, "#")
		linked[filepath.Clean(path)] = true
	}
	for _, f := range docFiles(t) {
		if f != "README.md" && !linked[f] {
			t.Errorf("README.md links no %s", f)
		}
	}
}
