package bundle

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

// DirFiles reads a root filesystem (a userland built by hack/userland.sh) as image files:
// regular files with their modes, and symlinks. Directories come from the files' parents.
func DirFiles(root string) ([]File, error) {
	// The cache names each userland through a symlink to its versioned directory.
	root, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, err
	}
	var out []File
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		f := File{Path: path.Join("/", filepath.ToSlash(rel))}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			if f.Link, err = os.Readlink(p); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			f.Mode = int64(info.Mode().Perm())
			if f.Data, err = os.ReadFile(p); err != nil {
				return err
			}
		default:
			return nil // devices, fifos: not in an image
		}
		out = append(out, f)
		return nil
	})
	return out, err
}
