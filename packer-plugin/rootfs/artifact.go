package rootfs

import (
	"fmt"
	"os"
)

// Artifact is the image directory: disk.raw, vmlinuz, initrd.img (and rootfs.img with
// netboot_image).
type Artifact struct {
	Dir   string
	files []string
}

func (a *Artifact) BuilderId() string { return BuilderID }
func (a *Artifact) Files() []string   { return a.files }
func (a *Artifact) Id() string        { return a.Dir }
func (a *Artifact) String() string {
	return fmt.Sprintf("kubeup machine image in %s (%d files)", a.Dir, len(a.files))
}
func (a *Artifact) State(string) any { return nil }
func (a *Artifact) Destroy() error   { return os.RemoveAll(a.Dir) }
