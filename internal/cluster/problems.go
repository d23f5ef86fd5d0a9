package cluster

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with a cluster config, located as precisely as we can.
type Problem struct {
	File string
	Line int // 0 when unknown (e.g. a missing field)
	Path string
	Msg  string
	Hint string
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Path != "" {
		b.WriteString(p.Path + ": ")
	}
	b.WriteString(p.Msg)
	if p.Hint != "" {
		b.WriteString(" (fix: " + p.Hint + ")")
	}
	return b.String()
}

// Problems is every problem found in a config; as an error it lists them all, one per line.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return fmt.Sprintf("%d problem(s) in cluster config:\n  %s", len(ps), strings.Join(lines, "\n  "))
}

// reporter collects problems, filling in file and line from the path.
type reporter struct {
	file  string
	lines lineIndex
	out   Problems
}

func (r *reporter) add(path, hint, format string, args ...any) {
	r.out = append(r.out, Problem{File: r.file, Line: r.lines.line(path), Path: path, Msg: fmt.Sprintf(format, args...), Hint: hint})
}
