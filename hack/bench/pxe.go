package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"kubeup.dev/kubeup/internal/agent"
)

// Goals of the bare-metal issue, beside the raw figures.
const (
	goalPXERatio = 3.0
	goalPXEP99   = 50 * time.Millisecond
)

// benchPXE drives both boot servers, one after the other, with the same machines: `kubeup pxe
// serve` (the real command) and matchbox v0.11.0 (built from the module proxy into the cache).
// clients goroutines on loopback each play one machine booting again and again for dur. The
// compared mix is the same on both, three plain-HTTP requests: /boot.ipxe → the machine's iPXE
// script → its config (matchbox's /ignition; kubeup's hash-pinned pointer). kubeup's full chain,
// which then fetches the real config over HTTPS with the machine's token, is its own line. A
// chain is one machine's boot; chains/s is the figure compared. Each server's own CPU use is
// printed beside it: the clients share the same cores, so the latencies are bounded by both.
// Then kubeup's peak RSS with a tenth of the machines, for "flat as machines grow".
func benchPXE(machines, clients int, dur time.Duration) error {
	matchbox, err := exec.Command("hack/tools.sh", "matchbox").Output()
	if err != nil {
		return fmt.Errorf("hack/tools.sh matchbox: %w", err)
	}
	dir, err := os.MkdirTemp("", "kubeup-bench-pxe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for _, c := range []string{"ignition-gen", "kubeup"} {
		if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, c), "./"+c).CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %v\n%s", c, err, out)
		}
	}
	fmt.Printf("PXE boot servers, %d machines, %d concurrent clients on loopback, %v each\n", machines, clients, dur)
	small, err := pxeSetup(dir, "small", machines/10)
	if err != nil {
		return err
	}
	big, err := pxeSetup(dir, "big", machines)
	if err != nil {
		return err
	}

	k, err := runKubeupPXE(dir, big, clients, dur, false)
	if err != nil {
		return err
	}
	m, err := runMatchbox(strings.TrimSpace(string(matchbox)), dir, big, clients, dur)
	if err != nil {
		return err
	}
	kFull, err := runKubeupPXE(dir, big, clients, dur, true)
	if err != nil {
		return err
	}
	kSmall, err := runKubeupPXE(dir, small, clients, dur, true)
	if err != nil {
		return err
	}
	fmt.Printf("  kubeup pxe serve, 3 plain-HTTP requests:     %s\n", k)
	fmt.Printf("  matchbox v0.11.0, 3 plain-HTTP requests:     %s\n", m)
	fmt.Printf("  kubeup pxe serve, full chain (+1 over HTTPS): %s\n", kFull)
	fmt.Printf("  kubeup/matchbox, the same mix: %.2fx the chains per second (goal %.0fx); kubeup p99 %v, full chain %v (goal < %v)\n",
		k.chainsPerSec()/m.chainsPerSec(), goalPXERatio, k.p99.Round(time.Microsecond), kFull.p99.Round(time.Microsecond), goalPXEP99)
	// Each client sends its next request as soon as the last is answered (a closed loop), so a
	// request's mean latency is the clients over the requests per second (Little's law): the
	// latencies are bounded by the throughput the server gets on the cores it shares with them.
	fmt.Printf("  closed loop: mean latency = clients / requests per second = %v for kubeup's 3 requests, on cores the server shares with the clients (it got %.2f of %d cores)\n",
		time.Duration(float64(clients)/k.requestsPerSec()*float64(time.Second)).Round(time.Microsecond), k.cpu.Seconds()/k.dur.Seconds(), runtime.NumCPU())
	fmt.Printf("  kubeup peak RSS: %.1f MiB with %d machines, %.1f MiB with %d (%.2fx for %dx the machines)\n",
		float64(kSmall.rss)/(1<<20), small.n, float64(k.rss)/(1<<20), big.n, float64(k.rss)/float64(kSmall.rss), big.n/small.n)
	return nil
}

// pxeFleet is one cluster config with its rendered configs.
type pxeFleet struct {
	n                  int
	config, state, out string
	macs               []string
}

func pxeSetup(dir, name string, n int) (pxeFleet, error) {
	f := pxeFleet{n: n, config: filepath.Join(dir, name+".yaml"), state: filepath.Join(dir, name+"-state"), out: filepath.Join(dir, name+"-out")}
	var b strings.Builder
	b.WriteString("apiVersion: kubeup.dev/v1alpha1\nkind: Cluster\nname: bench\ntarget: metal\ncontrolPlane:\n  endpoint: 10.10.0.10:6443\nmetal:\n  pxeServer: https://127.0.0.1:18443\nmachines:\n")
	for i := range n {
		role, mname := "node", fmt.Sprintf("node-%d", i)
		if i == 0 {
			role, mname = "master", "master"
		}
		mac := fmt.Sprintf("52:54:00:20:%02x:%02x", i/256, i%256)
		f.macs = append(f.macs, mac)
		fmt.Fprintf(&b, "  - name: %s\n    role: %s\n    mac: %q\n", mname, role, mac)
		if i == 0 {
			b.WriteString("    address: 10.10.0.10/16\n")
		}
	}
	if err := os.WriteFile(f.config, []byte(b.String()), 0o644); err != nil {
		return f, err
	}
	out, err := exec.Command(filepath.Join(dir, "ignition-gen"), "--config", f.config, "--state", f.state, "--out", f.out).CombinedOutput()
	if err != nil {
		return f, fmt.Errorf("ignition-gen: %v\n%s", err, out)
	}
	return f, nil
}

// loadResult is one server's run.
type loadResult struct {
	chains, requests int64
	dur              time.Duration
	p50, p99         time.Duration
	errors           int64
	// firstError is the first failed chain's error: a count alone does not say what failed.
	firstError string
	rss        int64
	// cpu is the server's own CPU time over the run (user and system).
	cpu time.Duration
}

func (r loadResult) chainsPerSec() float64   { return float64(r.chains) / r.dur.Seconds() }
func (r loadResult) requestsPerSec() float64 { return float64(r.requests) / r.dur.Seconds() }

func (r loadResult) String() string {
	s := fmt.Sprintf("%.0f chains/s, %.0f requests/s, p50 %v, p99 %v, %d errors, server CPU %.2f cores, peak RSS %.1f MiB",
		r.chainsPerSec(), r.requestsPerSec(), r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.errors,
		r.cpu.Seconds()/r.dur.Seconds(), float64(r.rss)/(1<<20))
	if r.firstError != "" {
		s += "; the first error: " + r.firstError
	}
	return s
}

// connPerClient keeps at most one connection per client, as a machine has, and keeps each one
// open between requests: a pool shared by the clients would otherwise open more than the clients
// while connections change hands, and a server that bounds its connections (kubeup's 1024)
// leaves the extra ones unanswered until a client times out.
func connPerClient(tr *http.Transport, clients int) {
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost, tr.MaxConnsPerHost = clients, clients, clients
}

// drive runs clients machines' boot chains against a server until dur passes.
func drive(clients int, dur time.Duration, chain func(c *http.Client, i int, lat func(time.Duration)) error) loadResult {
	tr := &http.Transport{IdleConnTimeout: time.Minute, DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext}
	connPerClient(tr, clients)
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var chains, requests, errs atomic.Int64
	var firstErr sync.Once
	var firstError string
	lats := make([][]time.Duration, clients)
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				err := chain(c, i, func(d time.Duration) { lats[i] = append(lats[i], d); requests.Add(1) })
				if err != nil {
					errs.Add(1)
					firstErr.Do(func() { firstError = err.Error() })
					continue
				}
				chains.Add(1)
			}
		}()
	}
	wg.Wait()
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	r := loadResult{chains: chains.Load(), requests: requests.Load(), errors: errs.Load(), firstError: firstError, dur: time.Since(start)}
	if len(all) > 0 {
		r.p50, r.p99 = all[len(all)/2], all[len(all)*99/100]
	}
	return r
}

// get fetches url, timing it.
func get(c *http.Client, url string, lat func(time.Duration)) ([]byte, error) {
	start := time.Now()
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	lat(time.Since(start))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return body, err
}

// startServer starts a server process and waits until url answers.
func startServer(cmd *exec.Cmd, url string) error {
	log, _ := os.CreateTemp("", "kubeup-bench-server-*.log")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return err
	}
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		resp, err := http.Get(url)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return true, nil
	})
	if err == nil {
		log.Close()
		os.Remove(log.Name())
		return nil
	}
	cmd.Process.Kill()
	out, _ := os.ReadFile(log.Name())
	return fmt.Errorf("%v does not answer at %s: %s", cmd.Args, url, out)
}

// cpuTime is a process's user and system time so far (/proc/PID/stat, in clock ticks of 10 ms:
// Linux's USER_HZ is 100 on every architecture Go runs on).
func cpuTime(pid int) time.Duration {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// measured drives a started server and adds its CPU use over the run.
func measured(cmd *exec.Cmd, run func() loadResult) loadResult {
	before := cpuTime(cmd.Process.Pid)
	r := run()
	r.cpu = cpuTime(cmd.Process.Pid) - before
	return r
}

// stopServer ends a server and returns its peak RSS.
func stopServer(cmd *exec.Cmd) int64 {
	var rss int64
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)); err == nil {
		for _, l := range strings.Split(string(st), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				rss = kb * 1024
			}
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	return rss
}

var pointerArg = regexp.MustCompile(`ignition\.config\.url=(\S+)`)

// runKubeupPXE drives `kubeup pxe serve`: each chain is the three plain-HTTP requests, and with
// full the real config over HTTPS after them.
func runKubeupPXE(dir string, f pxeFleet, clients int, dur time.Duration, full bool) (loadResult, error) {
	// The server logs every request at info level: to a file, as it would in production.
	cmd := exec.CommandContext(context.Background(), filepath.Join(dir, "kubeup"), "pxe", "serve", "--config", f.config, "--state", f.state,
		"--ignition", f.out, "--assets", dir, "--advertise", "127.0.0.1", "--listen", "127.0.0.1:18080", "--tls-listen", "127.0.0.1:18443")
	if err := startServer(cmd, "http://127.0.0.1:18080/boot.ipxe"); err != nil {
		return loadResult{}, err
	}
	ca, err := os.ReadFile(filepath.Join(f.state, "pki/ca.crt"))
	if err != nil {
		return loadResult{}, err
	}
	tlsClient, err := agent.HTTPClientFor(ca)
	if err != nil {
		return loadResult{}, err
	}
	// Keep a connection per client: a machine makes one TLS handshake per boot, not per request.
	tlsClient.Timeout = 30 * time.Second
	connPerClient(tlsClient.Transport.(*http.Transport), clients)
	mac := func(i int) string { return strings.ReplaceAll(f.macs[i%f.n], ":", "-") }
	r := measured(cmd, func() loadResult {
		return drive(clients, dur, func(c *http.Client, i int, lat func(time.Duration)) error {
			if _, err := get(c, "http://127.0.0.1:18080/boot.ipxe", lat); err != nil {
				return err
			}
			script, err := get(c, "http://127.0.0.1:18080/ipxe?mac="+mac(i)+"&uuid=&hostname=&serial=", lat)
			if err != nil {
				return err
			}
			m := pointerArg.FindSubmatch(script)
			if m == nil {
				return fmt.Errorf("no pointer in %s", script)
			}
			ptr, err := get(c, string(m[1]), lat)
			if err != nil || !full {
				return err
			}
			var p struct {
				Ignition struct {
					Config struct {
						Replace struct{ Source string }
					}
				}
			}
			if err := json.Unmarshal(ptr, &p); err != nil {
				return err
			}
			_, err = get(tlsClient, p.Ignition.Config.Replace.Source, lat)
			return err
		})
	})
	r.rss = stopServer(cmd)
	return r, nil
}

func runMatchbox(bin, dir string, f pxeFleet, clients int, dur time.Duration) (loadResult, error) {
	data := filepath.Join(dir, "matchbox-"+strconv.Itoa(f.n))
	for _, d := range []string{"groups", "profiles", "ignition"} {
		if err := os.MkdirAll(filepath.Join(data, d), 0o755); err != nil {
			return loadResult{}, err
		}
	}
	// One profile and one group per machine, as a per-machine Ignition config needs in matchbox.
	for i := range f.n {
		name := "master"
		if i > 0 {
			name = fmt.Sprintf("node-%d", i)
		}
		raw, err := os.ReadFile(filepath.Join(f.out, name+".ign"))
		if err != nil {
			return loadResult{}, err
		}
		profile := fmt.Sprintf(`{"id":%q,"boot":{"kernel":"/assets/debian/vmlinuz","initrd":["/assets/debian/initrd.img"],"args":["console=ttyS0","ignition.platform.id=metal","ignition.config.url=http://127.0.0.1:18090/ignition?mac=${mac:hexhyp}"]},"ignition_id":%q}`, name, name+".ign")
		group := fmt.Sprintf(`{"id":%q,"profile":%q,"selector":{"mac":%q}}`, name, name, f.macs[i])
		for path, content := range map[string][]byte{"profiles/" + name + ".json": []byte(profile), "groups/" + name + ".json": []byte(group), "ignition/" + name + ".ign": raw} {
			if err := os.WriteFile(filepath.Join(data, path), content, 0o644); err != nil {
				return loadResult{}, err
			}
		}
	}
	cmd := exec.Command(bin, "-address", "127.0.0.1:18090", "-data-path", data, "-assets-path", dir, "-log-level", "warn")
	if err := startServer(cmd, "http://127.0.0.1:18090/boot.ipxe"); err != nil {
		return loadResult{}, err
	}
	r := measured(cmd, func() loadResult {
		return drive(clients, dur, func(c *http.Client, i int, lat func(time.Duration)) error {
			mac := f.macs[i%f.n]
			if _, err := get(c, "http://127.0.0.1:18090/boot.ipxe", lat); err != nil {
				return err
			}
			if _, err := get(c, "http://127.0.0.1:18090/ipxe?mac="+mac, lat); err != nil {
				return err
			}
			_, err := get(c, "http://127.0.0.1:18090/ignition?mac="+mac, lat)
			return err
		})
	})
	r.rss = stopServer(cmd)
	return r, nil
}
