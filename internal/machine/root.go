package machine

import (
	"fmt"
	"os"
	"path/filepath"
)

// ResolveIn follows the symbolic link p inside the image at root as the machine would see it:
// an absolute link target (Debian's alternatives, /vmlinuz) is taken inside root, never on the
// build host. It returns the resolved file's path under root.
func ResolveIn(root, p string) (string, error) {
	for range 10 {
		full := filepath.Join(root, p)
		target, err := os.Readlink(full)
		if err != nil {
			if _, statErr := os.Stat(full); statErr != nil {
				return "", statErr
			}
			return full, nil
		}
		if filepath.IsAbs(target) {
			p = target
		} else {
			p = filepath.Join(filepath.Dir(p), target)
		}
	}
	return "", fmt.Errorf("%s: too many levels of symbolic links", p)
}
