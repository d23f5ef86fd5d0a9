package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/internal/provider/targets"
)

// TestUpOnMetalWritesWhatThePXEServerServes: kubeup up on bare metal, as on every target,
// through the provider: the bundle, every machine's config (0600) where 'kubeup pxe serve
// --ignition' reads it, the host kubeconfig, and what the operator does next; kubeup status
// shows the machines in the same shape as elsewhere, each saying that the PXE server does not
// answer (none runs here; the provider's own tests run the real one); kubeup down removes the
// configs and keeps the bundle. The config's endpoint and PXE server are moved to loopback.
func TestUpOnMetalWritesWhatThePXEServerServes(t *testing.T) {
	src, err := os.ReadFile("../configs/metal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(src), "k8s.example.internal", "127.0.115.10")
	text = strings.ReplaceAll(text, "https://10.20.0.2:8443", "https://127.0.0.1:1")
	if !strings.Contains(text, "127.0.115.10:6443") || !strings.Contains(text, "https://127.0.0.1:1") {
		t.Fatal("configs/metal.yaml no longer has the endpoint and pxeServer this test moves")
	}
	path := filepath.Join(t.TempDir(), "metal.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "state")
	run := func(args ...string) (string, string, error) {
		var out, stderr bytes.Buffer
		cmd := newRootCmd()
		cmd.SetOut(&out)
		cmd.SetErr(&stderr)
		cmd.SetArgs(append(args, "--config", path, "--state", state))
		err := cmd.ExecuteContext(t.Context())
		return out.String(), stderr.String(), err
	}

	out, _, err := run("up", "--timeout", "0")
	t.Logf("up:\n%s", out)
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	dir := targets.Dir(state, cluster.TargetMetal)
	if !strings.Contains(out, "kubeup pxe serve --ignition "+filepath.Join(dir, "ignition")) {
		t.Error("up does not say which directory the PXE server must serve")
	}
	for _, m := range []string{"cp-1", "worker-1", "worker-2"} {
		fi, err := os.Stat(filepath.Join(dir, "ignition", m+".ign"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s's config: %v %v", m, fi, err)
		}
	}
	if _, err := os.Stat(targets.HostKubeconfig(state, cluster.TargetMetal)); err != nil {
		t.Errorf("no host kubeconfig: %v", err)
	}

	out, stderr, err := run("status", "-o", "json")
	if err != nil {
		t.Fatalf("status: %v\n%s%s", err, out, stderr)
	}
	var st clusterStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, out)
	}
	if st.Target != cluster.TargetMetal || st.Endpoint != "https://127.0.115.10:6443" || st.APIOK || len(st.Machines) != 3 {
		t.Fatalf("status: %+v", st)
	}
	for _, m := range st.Machines {
		if m.Stage != "no report yet" || !strings.Contains(m.LastReport, "the PXE server does not answer") {
			t.Errorf("status of %s: %+v", m.Name, m)
		}
	}

	// A master lost with its disks is restored where the provider makes an etcd disk: not here,
	// where a running master's data can only be put back (--overwrite).
	if _, _, err := run("etcd", "snapshot", "restore", filepath.Join(t.TempDir(), "snapshot.db")); err == nil ||
		!strings.Contains(err.Error(), "target metal: kubeup cannot make a master's etcd disk there") || !strings.Contains(err.Error(), "pass --overwrite") {
		t.Errorf("etcd snapshot restore on metal: %v; want a refusal saying why", err)
	}

	// The node token pool needs no sync here: the PXE server reads the token at each boot.
	if out, _, err := run("tokens", "sync"); err != nil || !strings.Contains(out, "nothing to sync: kubeup pxe serve") {
		t.Errorf("tokens sync: %v\n%s", err, out)
	}

	if out, _, err := run("down"); err != nil || !strings.Contains(out, "power them off yourself") {
		t.Fatalf("down: %v\n%s", err, out)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("down left %s: %v", dir, err)
	}
	if _, err := os.Stat(filepath.Join(state, pki.MetaFile)); err != nil {
		t.Errorf("down removed the secrets bundle: %v", err)
	}
}
