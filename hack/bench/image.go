package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/ignition"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/internal/provider/qemu"
)

// goalImage is the image issue's size goal.
const goalImage = 1.5 * (1 << 30)

// benchImageBuild times `packer build images/qemu-debian.pkr.hcl` (through hack/image.sh, which
// gathers its inputs from the cache) cold, with debootstrap fetching from the mirror into an
// empty base cache, and warm, with that base cached. No peer builds this image another way, so
// the figures are raw times.
func benchImageBuild() error {
	dir, err := os.MkdirTemp("", "kubeup-bench-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	build := func(name string) (time.Duration, error) {
		cmd := exec.Command("hack/image.sh")
		cmd.Env = append(os.Environ(), "KUBEUP_IMAGE_OUT="+filepath.Join(dir, name), "KUBEUP_IMAGE_BASE="+filepath.Join(dir, "base"))
		var log bytes.Buffer
		cmd.Stdout, cmd.Stderr = &log, &log
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("hack/image.sh (%s): %v\n%s", name, err, log.String())
		}
		return time.Since(start), nil
	}
	cold, err := build("cold")
	if err != nil {
		return err
	}
	warm, err := build("warm")
	if err != nil {
		return err
	}
	fmt.Printf("image build (packer build, kubeup-rootfs + kubeup-node): cold %.0f s (debootstrap from the mirror), warm %.0f s (base cached)\n",
		cold.Seconds(), warm.Seconds())
	return nil
}

// benchImage reports the image's size on disk and how long one machine takes from power-on to
// containerd running and to its phase-1 report (one VM alone on the host).
func benchImage(imageDir string) error {
	img, err := qemu.ImageIn(imageDir)
	if err != nil {
		return err
	}
	var st syscall.Stat_t
	if err := syscall.Stat(img.Disk, &st); err != nil {
		return err
	}
	used := float64(st.Blocks * 512)
	fmt.Printf("image %s: %.2f GiB on disk (%.2fx the 1.5 GiB goal), %.1f GiB apparent\n",
		img.Disk, used/(1<<30), used/goalImage, float64(st.Size)/(1<<30))

	cfg, err := cluster.Load("test/image/testdata/cluster.yaml")
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "kubeup-bench-boot-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b, err := pki.Ensure(filepath.Join(dir, "state"), cfg, pki.Options{})
	if err != nil {
		return err
	}
	outs, err := ignition.Generate(cfg, b, ignition.Options{OutDir: filepath.Join(dir, "ign")})
	if err != nil {
		return err
	}
	m := cfg.Machines[0]
	spec := &qemu.Spec{Dir: filepath.Join(dir, "vm"), Image: img, Memory: cfg.QEMU.Memory, CPUs: cfg.QEMU.CPUs,
		Machines: []qemu.Machine{{Name: m.Name, Role: m.Role, MAC: m.MAC, Ignition: outs[0].File}}}
	start := time.Now()
	if err := qemu.Up(spec); err != nil {
		return err
	}
	defer qemu.Down(spec.Dir)
	var containerd, report time.Duration
	err = wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 10*time.Minute, true, func(context.Context) (bool, error) {
		if containerd == 0 && consoleHas(spec.SerialLog(m.Name), "Started", "containerd.service") {
			containerd = time.Since(start)
		}
		if c, _ := spec.ReadConsole(m.Name); c.Phase1 != nil {
			report = time.Since(start)
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("boot: no phase-1 report within 10 minutes; see %s", spec.SerialLog(m.Name))
	}
	fmt.Printf("boot, one machine alone: power-on to containerd running %.1f s, to its phase-1 report %.1f s\n",
		containerd.Seconds(), report.Seconds())
	return nil
}

// consoleHas says whether a line of the log holds every one of parts (systemd colours the unit
// name, so "Started containerd.service" is not one substring).
func consoleHas(path string, parts ...string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(sc.Text(), p)
		}
		if all {
			return true
		}
	}
	return false
}
