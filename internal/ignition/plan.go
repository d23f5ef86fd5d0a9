package ignition

import "io/fs"

// Plan is everything one machine (or one role) gets, before it is encoded as Ignition.
type Plan struct {
	Name  string // machine name, or the role for a role config
	Role  string
	Dirs  []Dir
	Files []File
	Units []Unit
	// Butane are the user's snippets to merge, in order (role, then machine).
	Butane []Snippet
}

// File is one file to write.
type File struct {
	Path string
	Mode fs.FileMode
	Data []byte
}

// Dir is one directory to create.
type Dir struct {
	Path string
	Mode fs.FileMode
}

// Unit is one systemd unit. Empty Contents enables a unit the image already has.
type Unit struct {
	Name     string
	Enabled  bool
	Contents string
}

// Snippet is a user Butane snippet and where in the cluster config it came from.
type Snippet struct {
	Source string // field path, for errors
	Text   string
}

func (p *Plan) file(path string, mode fs.FileMode, data []byte) {
	p.Files = append(p.Files, File{Path: path, Mode: mode, Data: data})
}

func (p *Plan) dir(path string, mode fs.FileMode) {
	p.Dirs = append(p.Dirs, Dir{Path: path, Mode: mode})
}
