// Command bench measures what `make bench` reports:
//   - render: the wall time, peak memory (max RSS) and output bytes of ignition-gen rendering
//     configs for a 1,000- and a 10,000-machine cluster from an existing secrets bundle: the real
//     binary, several runs each, every run, the median and the spread, and how the larger size
//     scales against the smaller;
//   - image: the machine image's size on disk, and one machine's power-on to containerd and to
//     its phase-1 report;
//   - bring-up: power-on to every phase passing for 1 master + 2 nodes in QEMU, by kubeup and,
//     on the same image and VM sizes with the same tuning, by kubeadm: several runs each,
//     alternating which goes first, the median and the spread per phase and the ratio of the
//     medians, and one line for kubeadm with its defaults;
//   - upgrade (only with -only upgrade, about half an hour): `make e2e-upgrade`'s upgrade under load,
//     its total time, each machine's time and the workload's failed requests.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	sizes := flag.String("machines", "1000,10000", "render: cluster sizes, comma-separated (1 master, the rest nodes)")
	runs := flag.Int("runs", 5, "render: timed runs per size")
	only := flag.String("only", "", "run one benchmark: render, pxe, image, bringup, or upgrade (default: all but upgrade)")
	pxeMachines := flag.Int("pxe-machines", 1000, "pxe: machines both boot servers know")
	pxeClients := flag.Int("pxe-clients", 1000, "pxe: concurrent clients, each one machine booting again and again")
	pxeDur := flag.Duration("pxe-duration", 10*time.Second, "pxe: how long each server is driven")
	image := flag.String("image", os.Getenv("KUBEUP_IMAGE"), "bring-up: the image directory (make image prints it)")
	nodes := flag.Int("nodes", 2, "bring-up: nodes besides the master")
	peers := flag.String("peers", "kubeup,kubeadm", "bring-up: which clusters to bring up (the ratio needs both)")
	bringupRuns := flag.Int("bringup-runs", 3, "bring-up: runs per side (kubeup, and kubeadm tuned as kubeup is), alternating which goes first")
	untuned := flag.Int("untuned", 1, "bring-up: runs of kubeadm with its defaults, after the others (0: none)")
	raw := flag.String("raw", "", "bring-up and upgrade: also write every run's output and the summary into this directory (docs/bench/NAME-COMMIT)")
	keep := flag.Bool("keep", false, "bring-up: on a failed check, leave the machines running and wait for ^C (to look at them)")
	flag.Parse()
	if parts := []string{"render", "pxe", "image", "bringup", "upgrade"}; *only != "" && !slices.Contains(parts, *only) {
		fmt.Fprintf(os.Stderr, "bench: -only %s: one of %s\n", *only, strings.Join(parts, ", "))
		os.Exit(2)
	}
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
		err = benchRender(*sizes, *runs)
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
		err = benchBringUp(*image, *nodes, strings.Split(*peers, ","), *bringupRuns, *untuned, *raw, *keep)
	}
	if err == nil && *only == "upgrade" {
		err = benchUpgrade(*raw)
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

// renderRun is one size's result.
type renderRun struct {
	machines int
	median   time.Duration
	peak     int64
	bytes    int64
}

// benchRender renders each size with the real binary and compares the sizes.
func benchRender(sizes string, runs int) error {
	var results []renderRun
	for _, f := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("-machines %q: want sizes like 1000,10000", sizes)
		}
		r, err := bench(n, runs)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	for _, r := range results[1:] {
		base := results[0]
		scale := float64(r.machines) / float64(base.machines)
		fmt.Printf("render scaling %d -> %d machines (%.0fx): time %.2fx, peak RSS %.2fx, output %.2fx (linear would be %.0fx)\n",
			base.machines, r.machines, scale, float64(r.median)/float64(base.median), float64(r.peak)/float64(base.peak),
			float64(r.bytes)/float64(base.bytes), scale)
	}
	return nil
}

func bench(machines, runs int) (renderRun, error) {
	res := renderRun{machines: machines}
	dir, err := os.MkdirTemp("", "kubeup-bench-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "ignition-gen")
	build := exec.Command("go", "build", "-o", bin, "./ignition-gen")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return res, fmt.Errorf("build ignition-gen: %w", err)
	}
	cfg := filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(cfg, []byte(clusterConfig(machines)), 0o644); err != nil {
		return res, err
	}
	out := filepath.Join(dir, "out")
	args := []string{"--config", cfg, "--state", filepath.Join(dir, "state"), "--out", out}
	first, _, err := measure(bin, args)
	if err != nil {
		return res, err
	}
	fmt.Printf("ignition-gen, %d machines (1 master, %d nodes), %s\n", machines, machines-1, cfg)
	fmt.Printf("  first run (creates the bundle): %v\n", first.Round(time.Millisecond))
	var times []time.Duration
	for i := range runs {
		// Every run writes every file: a run over unchanged files would only compare them.
		if err := os.RemoveAll(out); err != nil {
			return res, err
		}
		d, rss, err := measure(bin, args)
		if err != nil {
			return res, err
		}
		times = append(times, d)
		res.peak = max(res.peak, rss)
		fmt.Printf("  run %d: %v, max RSS %.1f MiB\n", i+1, d.Round(time.Millisecond), float64(rss)/(1<<20))
	}
	if res.bytes, err = dirBytes(out); err != nil {
		return res, err
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	res.median = times[len(times)/2]
	// The goals are 2 s and 200 MB for 1,000 machines, scaling linearly with the machines.
	fmt.Printf("render %d machines from an existing bundle: median %v (spread %v-%v; %.2fx the goal of 2 s per 1,000), peak RSS %.1f MiB (%.2fx the goal of 200 MB per 1,000), output %.1f MiB (%.1f KiB per machine)\n",
		machines, res.median.Round(time.Millisecond), times[0].Round(time.Millisecond), times[len(times)-1].Round(time.Millisecond),
		float64(res.median)/float64(goalTime)*1000/float64(machines), float64(res.peak)/(1<<20), float64(res.peak)/float64(goalRSS)*1000/float64(machines),
		float64(res.bytes)/(1<<20), float64(res.bytes)/1024/float64(machines))
	return res, nil
}

// dirBytes is the size of every file under dir.
func dirBytes(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			n += fi.Size()
		}
		return err
	})
	return n, err
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
