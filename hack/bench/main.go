// Command bench measures what `make bench` reports:
//   - render: the wall time and peak memory (max RSS) of ignition-gen rendering configs for a
//     1,000-machine cluster from an existing secrets bundle: the real binary, several runs,
//     every run and the median;
//   - image: the machine image's size on disk, and one machine's power-on to containerd and to
//     its phase-1 report;
//   - bring-up: power-on to every phase passing for 1 master + 2 nodes in QEMU, by kubeup and,
//     on the same image and VM sizes, by kubeadm; both times per phase and the ratio.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

func main() {
	machines := flag.Int("machines", 1000, "machines in the cluster (1 master, the rest nodes)")
	runs := flag.Int("runs", 5, "timed runs")
	only := flag.String("only", "", "run one benchmark: render, pxe, image or bringup (default: all)")
	pxeMachines := flag.Int("pxe-machines", 1000, "pxe: machines both boot servers know")
	pxeClients := flag.Int("pxe-clients", 1000, "pxe: concurrent clients, each one machine booting again and again")
	pxeDur := flag.Duration("pxe-duration", 10*time.Second, "pxe: how long each server is driven")
	image := flag.String("image", os.Getenv("KUBEUP_IMAGE"), "bring-up: the image directory (make image prints it)")
	nodes := flag.Int("nodes", 2, "bring-up: nodes besides the master")
	peers := flag.String("peers", "kubeup,kubeadm", "bring-up: which clusters to bring up (the ratio needs both)")
	keep := flag.Bool("keep", false, "bring-up: on a failed check, leave the machines running and wait for ^C (to look at them)")
	flag.Parse()
	var err error
	if *image == "" && (*only == "" || *only == "image" || *only == "bringup") {
		// The cached image, built first if missing (make bench passes it in $KUBEUP_IMAGE).
		out, berr := exec.Command("hack/image.sh").Output()
		if berr != nil {
			fmt.Fprintln(os.Stderr, "bench: hack/image.sh:", berr)
			os.Exit(1)
		}
		*image = strings.TrimSpace(string(out))
	}
	if *only == "" || *only == "render" {
		err = bench(*machines, *runs)
	}
	if err == nil && (*only == "" || *only == "pxe") {
		fmt.Println()
		err = benchPXE(*pxeMachines, *pxeClients, *pxeDur)
	}
	if err == nil && (*only == "" || *only == "image") {
		fmt.Println()
		if err = benchImageBuild(); err == nil {
			err = benchImage(*image)
		}
	}
	if err == nil && (*only == "" || *only == "bringup") {
		fmt.Println()
		err = benchBringUp(*image, *nodes, strings.Split(*peers, ","), *keep)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// Goals from the ignition-gen issue, for the ratios printed beside the raw figures.
const (
	goalTime = 2 * time.Second
	goalRSS  = 200 << 20
)

func bench(machines, runs int) error {
	dir, err := os.MkdirTemp("", "kubeup-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "ignition-gen")
	build := exec.Command("go", "build", "-o", bin, "./ignition-gen")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build ignition-gen: %w", err)
	}
	cfg := filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(cfg, []byte(clusterConfig(machines)), 0o644); err != nil {
		return err
	}
	args := []string{"--config", cfg, "--state", filepath.Join(dir, "state"), "--out", filepath.Join(dir, "out")}
	first, _, err := measure(bin, args)
	if err != nil {
		return err
	}
	fmt.Printf("ignition-gen, %d machines (1 master, %d nodes), %s\n", machines, machines-1, cfg)
	fmt.Printf("  first run (creates the bundle): %v\n", first.Round(time.Millisecond))
	var times []time.Duration
	var peak int64
	for i := range runs {
		d, rss, err := measure(bin, args)
		if err != nil {
			return err
		}
		times = append(times, d)
		peak = max(peak, rss)
		fmt.Printf("  run %d: %v, max RSS %.1f MiB\n", i+1, d.Round(time.Millisecond), float64(rss)/(1<<20))
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	med := times[len(times)/2]
	fmt.Printf("render from an existing bundle: median %v (%.2fx the 2 s goal), peak RSS %.1f MiB (%.2fx the 200 MB goal)\n",
		med.Round(time.Millisecond), float64(med)/float64(goalTime), float64(peak)/(1<<20), float64(peak)/float64(goalRSS))
	return nil
}

// measure runs the command once and returns its wall time and max RSS in bytes.
func measure(bin string, args []string) (time.Duration, int64, error) {
	cmd := exec.Command(bin, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return 0, 0, fmt.Errorf("%v: %w\n%s", cmd.Args, err, out.String())
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return d, ru.Maxrss * 1024, nil // Linux reports KiB
}

func clusterConfig(n int) string {
	var b strings.Builder
	b.WriteString(`apiVersion: kubeup.dev/v1alpha1
kind: Cluster
name: bench
qemu:
  network: 10.10.0.0/16
machines:
`)
	for i := range n {
		role, name := "node", fmt.Sprintf("node-%d", i)
		if i == 0 {
			role, name = "master", "master"
		}
		ip := 10 + i
		fmt.Fprintf(&b, "  - name: %s\n    role: %s\n    mac: \"52:54:00:10:%02x:%02x\"\n    address: 10.10.%d.%d/16\n",
			name, role, ip/256, ip%256, ip/256, ip%256)
	}
	return b.String()
}
