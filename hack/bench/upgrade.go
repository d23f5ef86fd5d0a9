package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// upgradeDone is kubeup upgrade's last line: the total and each step's time.
var upgradeDone = regexp.MustCompile(`upgrade to (\S+) done in (\S+) \((.*)\)`)

// benchUpgrade runs the upgrade under load that `make e2e-upgrade` proves (TestUpgrade: a
// master and two nodes at the older release, a workload asked every 500 ms through the API
// server's service proxy, `kubeup upgrade` to the newer release) and prints its figures: the
// total, each machine's time, and the workload's failed requests. There is no peer: kubeadm's
// in-place upgrade is another operation, not the same one done another way. With raw set,
// the run's whole output and the summary also go into that directory.
func benchUpgrade(raw string) error {
	results, err := os.MkdirTemp("", "kubeup-bench-upgrade-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(results)
	out := io.Writer(os.Stdout)
	if raw != "" {
		if err := os.MkdirAll(raw, 0o755); err != nil {
			return err
		}
		f, err := os.Create(filepath.Join(raw, "upgrade.log"))
		if err != nil {
			return err
		}
		defer f.Close()
		out = io.MultiWriter(os.Stdout, f)
	}
	fmt.Fprintf(out, "upgrade under load at %s: make e2e-upgrade (TestUpgrade)\n", commit())
	cmd := exec.Command("make", "e2e-upgrade")
	cmd.Env = append(os.Environ(), "KUBEUP_TEST_RESULTS="+results)
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return err
	}
	var done []string
	sc := bufio.NewScanner(pipe)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fmt.Fprintln(out, sc.Text())
		if m := upgradeDone.FindStringSubmatch(sc.Text()); m != nil {
			done = m
		}
	}
	runErr := cmd.Wait()
	var summary strings.Builder
	if done != nil {
		fmt.Fprintf(&summary, "upgrade to %s: %s in all; each step: %s\n", done[1], done[2], done[3])
	}
	if load, err := os.ReadFile(filepath.Join(results, "upgrade.txt")); err == nil {
		summary.Write(load)
	}
	fmt.Print("\n" + summary.String())
	if raw != "" {
		if err := os.WriteFile(filepath.Join(raw, "summary.txt"), []byte(summary.String()), 0o644); err != nil {
			return err
		}
	}
	if runErr != nil {
		return fmt.Errorf("make e2e-upgrade: %w (its output is above)", runErr)
	}
	if done == nil {
		return fmt.Errorf("make e2e-upgrade passed, but kubeup upgrade's last line was not in its output")
	}
	return nil
}
