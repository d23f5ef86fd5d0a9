package aws_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"kubeup.dev/kubeup/internal/manifests"
	"kubeup.dev/kubeup/internal/provider/aws/awstest"
	"kubeup.dev/kubeup/test/testenv"
)

// imdsAddress is where EC2's instance metadata service answers, and where Ignition's aws
// provider looks for it: the address is compiled into Ignition, with no flag or variable to
// change it (and Ignition's HTTP client ignores HTTP_PROXY). So the mock gets that very address,
// in a network namespace of its own, and Ignition runs in the same namespace.
const imdsAddress = "169.254.169.254"

// TestNodeFirstBootFetchesItsUserData: a node's first boot on EC2, with the real parts. The
// launch template's user-data as Up made it is served by amazon-ec2-metadata-mock (aemm) with
// IMDSv2 required, and the real Ignition binary's aws platform (ignition.platform.id=aws; the
// dracut generator passes it as --platform) fetches it in its fetch stage and writes it into a
// root in its files stage, as on an instance.
//
// Ignition reads user-data at /2019-10-01/user-data; aemm serves it at /latest/user-data by
// default, but the path is aemm configuration (userdata.paths.userdata in its config file), so
// no rewriting front is needed. Everything else Ignition asks (the token at /latest/api/token,
// the region at /latest/meta-data/placement/region) is at aemm's defaults.
func TestNodeFirstBootFetchesItsUserData(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root: the metadata address lives in a network namespace made for the test; run `sudo make test` (CI runs it as root)")
	}
	aemm := testenv.AEMM(t)
	ignition := filepath.Join(testenv.IgnitionDir(t), "ignition")
	for _, tool := range []string{"unshare", "nsenter", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: run `hack/tools.sh aemm` (it installs util-linux and iproute2)", tool)
		}
	}

	// The user-data of the nodes' launch template, as Up made it: the node role's config inline.
	srv := awstest.New(t, region)
	var out bytes.Buffer
	s := spec(t, "alpha", awstest.AddressPlan(0))
	if _, err := newClient(t, srv, &out).Up(context.Background(), s, false); err != nil {
		t.Fatalf("up: %v\n%s", err, out.String())
	}
	userData := srv.LaunchTemplates()[0].UserData
	_, want := testenv.IgnitionFiles(t, userData)
	if _, ok := want[manifests.BootstrapKubeconf]; !ok {
		t.Fatalf("the launch template's user-data is not the node config (no %s)", manifests.BootstrapKubeconf)
	}

	dir := t.TempDir()
	pid := startAEMM(t, aemm, dir, userData)

	// IMDSv2 is required: a request without a session token is refused.
	if code := tokenlessGet(t, pid, "/2019-10-01/user-data"); code != http.StatusUnauthorized {
		t.Errorf("user-data without an IMDSv2 token: HTTP %d, want 401", code)
	}

	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	stage := func(name string) string {
		cmd := exec.Command("nsenter", "--net=/proc/"+fmt.Sprint(pid)+"/ns/net", "--", ignition, "--platform=aws", "--stage="+name,
			"--root="+root, "--config-cache="+filepath.Join(dir, "ignition.json"), "--state-file="+filepath.Join(dir, "state"),
			"--neednet="+filepath.Join(dir, "neednet"), "--log-to-stdout")
		// As on an instance: none of the test's AWS_* settings (newProvider disables IMDS for the SDK).
		for _, e := range os.Environ() {
			if !strings.HasPrefix(e, "AWS_") {
				cmd.Env = append(cmd.Env, e)
			}
		}
		log, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("ignition --stage=%s: %v\n%s", name, err, log)
		}
		return string(log)
	}
	fetchLog := stage("fetch")
	stage("files")
	if strings.Contains(fetchLog, "failed to determine EC2 region") {
		t.Errorf("Ignition did not get the region from the metadata service:\n%s", fetchLog)
	}
	for _, w := range []string{"PUT http://" + imdsAddress + "/latest/api/token", "GET http://" + imdsAddress + "/2019-10-01/user-data",
		"GET result: OK"} {
		if !strings.Contains(fetchLog, w) {
			t.Errorf("Ignition's fetch log lacks %q:\n%s", w, fetchLog)
		}
	}

	// Every file of the node config is in the root as the config says; the bootstrap
	// kubeconfig names the master's private endpoint; no private key landed.
	for path, data := range want {
		got, err := os.ReadFile(filepath.Join(root, path))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: not written as the user-data says (%v)", path, err)
		}
	}
	boot, _ := os.ReadFile(filepath.Join(root, manifests.BootstrapKubeconf))
	if !bytes.Contains(boot, []byte("server: https://"+s.Endpoint+"\n")) || !bytes.Contains(boot, []byte("token: ")) {
		t.Errorf("bootstrap kubeconfig:\n%s", boot)
	}
	if st, err := os.Stat(filepath.Join(root, manifests.BootstrapKubeconf)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("bootstrap kubeconfig mode: %v %v", st.Mode(), err)
	}
	privateKey := regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`)
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if data, _ := os.ReadFile(p); privateKey.Match(data) || strings.HasSuffix(p, ".key") {
				t.Errorf("the node's root holds a private key: %s", strings.TrimPrefix(p, root))
			}
		}
		return err
	})
}

// startAEMM runs aemm in a new network namespace whose loopback has the metadata address, serving
// userData with IMDSv2 required, and returns its pid (the namespace is /proc/<pid>/ns/net). It
// returns once aemm listens, read from the namespace's own socket table.
func startAEMM(t *testing.T, aemm, dir string, userData []byte) int {
	t.Helper()
	cfg, _ := json.Marshal(map[string]any{
		"imdsv2": true,
		"server": map[string]string{"hostname": imdsAddress, "port": "80"},
		"userdata": map[string]any{
			"paths":  map[string]string{"userdata": "/2019-10-01/user-data"},
			"values": map[string]string{"userdata": base64.StdEncoding.EncodeToString(userData)},
		},
	})
	cfgPath := filepath.Join(dir, "aemm.json")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "aemm.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command("unshare", "--net", "--", "sh", "-c",
		`ip link set lo up && ip addr add `+imdsAddress+`/32 dev lo && exec "$0" -c "$1"`, aemm, cfgPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// HOME: aemm would also read $HOME/aemm-config.json and write nothing there, but keep it ours.
	cmd.Env = append(os.Environ(), "HOME="+dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	// 169.254.169.254:80 in /proc/net/tcp: FEA9FEA9:0050, state 0A (LISTEN).
	deadline := time.Now().Add(30 * time.Second)
	last := ""
	for {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", cmd.Process.Pid))
		last = fmt.Sprint(err)
		if err == nil {
			last = string(data)
			sc := bufio.NewScanner(bytes.NewReader(data))
			for sc.Scan() {
				if f := strings.Fields(sc.Text()); len(f) > 3 && f[1] == "FEA9FEA9:0050" && f[3] == "0A" {
					return cmd.Process.Pid
				}
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("aemm does not listen on %s:80 after 30 s; its namespace's sockets:\n%s\naemm's log:\n%s", imdsAddress, last, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tokenlessGet sends one plain GET, without an IMDSv2 token, to the metadata address in the
// namespace of pid, and returns the HTTP status. The request is made on an OS thread that has
// joined the namespace and is never given back to the runtime (it exits with its goroutine), and
// on a connection dialled from that thread, since a socket belongs to the namespace it is
// created in.
func tokenlessGet(t *testing.T, pid int, path string) int {
	t.Helper()
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // not unlocked: the thread must not run anything else afterwards
		fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/net", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			done <- result{err: fmt.Errorf("setns: %w", err)}
			return
		}
		conn, err := net.DialTimeout("tcp", imdsAddress+":80", 10*time.Second)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		req, _ := http.NewRequest(http.MethodGet, "http://"+imdsAddress+path, nil)
		if err := req.Write(conn); err != nil {
			done <- result{err: err}
			return
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), req)
		if err != nil {
			done <- result{err: err}
			return
		}
		resp.Body.Close()
		done <- result{code: resp.StatusCode}
	}()
	r := <-done
	if r.err != nil {
		t.Fatalf("GET %s in the metadata namespace: %v", path, r.err)
	}
	return r.code
}
