package cluster

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// lineIndex maps a field path (machines[1].mac) to the line it stands on in the source file, so
// that validation, which works on typed values, can still point at a line.
type lineIndex map[string]int

func indexLines(src []byte) lineIndex {
	idx := lineIndex{}
	var doc yaml.Node
	if yaml.Unmarshal(src, &doc) != nil || len(doc.Content) == 0 {
		return idx
	}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				idx[p] = k.Line
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, v := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				idx[p] = v.Line
				walk(v, p)
			}
		}
	}
	walk(doc.Content[0], "")
	return idx
}

// line returns the line of path, or of its nearest ancestor that is in the file, or 0.
func (idx lineIndex) line(path string) int {
	for path != "" {
		if l, ok := idx[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// pathOn returns the path of the key on line l, for type errors, which know only the line: of
// the paths there, the shortest that is not a list item (on "name: {first: a}" the error is
// name's; on "- name: [x]" it is the item's name).
func (idx lineIndex) pathOn(l int) string {
	var on []string
	for p, pl := range idx {
		if pl == l {
			on = append(on, p)
		}
	}
	best := ""
	for _, p := range on {
		if strings.HasSuffix(p, "]") && len(on) > 1 {
			continue
		}
		if best == "" || len(p) < len(best) || (len(p) == len(best) && p < best) {
			best = p
		}
	}
	return best
}

// pathAt returns the path of the key named field on line l, for decoder errors that know only
// the line and the field name.
func (idx lineIndex) pathAt(l int, field string) string {
	best := ""
	for p, pl := range idx {
		if pl == l && (p == field || strings.HasSuffix(p, "."+field)) && (best == "" || p < best) {
			best = p
		}
	}
	if best == "" {
		return field
	}
	return best
}
