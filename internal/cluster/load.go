package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// Load reads, defaults and validates the cluster config in file. On any problem it returns
// Problems listing every one of them.
func Load(file string) (*Config, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("read cluster config: %w", err)
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, MaxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("read cluster config: %w", err)
	}
	if len(src) > MaxConfigSize {
		return nil, fmt.Errorf("%s: the file is over %d MiB, far more than any cluster config (fix: check that it is the cluster config; files that large for the machines belong at a URL a Butane snippet names)", file, MaxConfigSize>>20)
	}
	return Parse(file, src)
}

// MaxConfigSize is the largest cluster config Load reads: far above any real one, Butane
// snippets included, and small enough that a wrong or hostile file is refused before parsing.
const MaxConfigSize = 4 << 20

// Parse is Load for bytes already read; file is used in messages only.
func Parse(file string, src []byte) (*Config, error) {
	lines := indexLines(src)
	c, probs := decode(file, src, lines)
	if c == nil {
		return nil, probs
	}
	c.Default()
	probs = append(probs, c.validate(file, lines)...)
	if len(probs) > 0 {
		return c, probs
	}
	return c, nil
}

var decodeErrLine = regexp.MustCompile(`^line (\d+): (.*)$`)
var unknownField = regexp.MustCompile(`^field (\S+) not found in type`)

// decode is strict: unknown fields and type mismatches are problems, all of them reported.
func decode(file string, src []byte, lines lineIndex) (*Config, Problems) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	err := dec.Decode(&c)
	if err == nil {
		// A second document is almost always a mistake (two clusters pasted into one file).
		var extra yaml.Node
		if err := dec.Decode(&extra); err == nil {
			return &c, Problems{{File: file, Line: extra.Line, Msg: "more than one YAML document", Hint: "keep one cluster per file"}}
		} else if !errors.Is(err, io.EOF) {
			// Not silently ignored: whatever follows the first document is not even YAML.
			return &c, Problems{{File: file, Msg: "more than one YAML document, and a later one is broken: " + err.Error(), Hint: "keep one cluster per file"}}
		}
		return &c, nil
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		// Syntax error or empty file: nothing typed to go on.
		msg := err.Error()
		if errors.Is(err, io.EOF) {
			msg = "the file is empty"
		}
		return nil, Problems{{File: file, Msg: msg, Hint: "see configs/local.yaml for a complete example"}}
	}
	var probs Problems
	for _, e := range te.Errors {
		p := Problem{File: file, Msg: e}
		if m := decodeErrLine.FindStringSubmatch(e); m != nil {
			p.Line, _ = strconv.Atoi(m[1])
			p.Msg = m[2]
			if f := unknownField.FindStringSubmatch(m[2]); f != nil {
				p.Path = lines.pathAt(p.Line, f[1])
				p.Msg = "unknown field " + strconv.Quote(f[1])
				p.Hint = "remove it or check its spelling against configs/local.yaml"
			} else {
				p.Path = lines.pathOn(p.Line)
			}
		}
		probs = append(probs, p)
	}
	return &c, probs
}
