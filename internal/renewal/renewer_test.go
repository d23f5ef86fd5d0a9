package renewal_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/manifests"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/internal/renewal"
)

// master lays a fresh secrets bundle out under a scratch root as the master's Ignition config
// does (/etc/kubernetes is the bundle's own layout) and returns the root.
func master(t *testing.T) string {
	t.Helper()
	cfg, err := cluster.Load("../../configs/local.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "bundle")
	if _, err := pki.Ensure(dir, cfg, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := os.CopyFS(filepath.Join(root, manifests.KubernetesDir), os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	// As Ignition writes them: keys and kubeconfigs 0600 (CopyFS makes every file 0644).
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			os.Chmod(p, 0o600)
		}
		return err
	})
	return root
}

// shorten re-issues the named items with a short lifetime, as if they were near their end.
func shorten(t *testing.T, root string, life time.Duration, names ...string) {
	t.Helper()
	r := &renewal.Renewer{Root: root, Items: renewal.MasterItems, Share: 1, Lifetime: life,
		Restart: func(context.Context, string) error { return nil },
		Healthy: func(context.Context, string, time.Time) error { return nil }}
	r.Items = slices.DeleteFunc(slices.Clone(renewal.MasterItems), func(it renewal.Item) bool { return !slices.Contains(names, it.Name) })
	if out, err := r.RenewDue(t.Context()); err != nil || len(out) == 0 {
		t.Fatalf("shorten: %v %+v", err, out)
	}
}

func read(t *testing.T, root string) map[string]renewal.Cert {
	t.Helper()
	r := &renewal.Renewer{Root: root, Items: renewal.MasterItems}
	certs, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]renewal.Cert{}
	for _, c := range certs {
		out[c.Name] = c
	}
	return out
}

// recorder is a Renewer's Restart and Healthy for the unit tests: the control-plane test runs
// the real components and the real health checks.
type recorder struct {
	restarts  []string
	unhealthy map[string]int // component -> how many checks fail
}

func (r *recorder) restart(_ context.Context, comp string) error {
	r.restarts = append(r.restarts, comp)
	return nil
}

func (r *recorder) healthy(_ context.Context, comp string, _ time.Time) error {
	if r.unhealthy[comp] > 0 {
		r.unhealthy[comp]--
		return errors.New("refuses the new certificate")
	}
	return nil
}

func renewer(root string, rec *recorder) *renewal.Renewer {
	return &renewal.Renewer{Root: root, Items: renewal.MasterItems, Restart: rec.restart, Healthy: rec.healthy, HealthTimeout: 3 * time.Second}
}

// Only certificates with less than a third of their life left are renewed; the new ones keep
// the key, the names and the usages, get a full lifetime, keep the file's mode, and only the
// components that read them are restarted, in order.
func TestRenewDue(t *testing.T) {
	root := master(t)
	shorten(t, root, 10*time.Second, "apiserver", "scheduler.conf", "admin.conf")
	before := read(t, root)
	// A mode the bundle does not use, to see that the renewal keeps whatever it finds.
	os.Chmod(before["apiserver"].File(root), 0o640)
	rec := &recorder{}
	r := renewer(root, rec)
	r.Now = func() time.Time { return time.Now().Add(8 * time.Second) } // 2 s of 10 left
	out, err := r.RenewDue(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var renewed []string
	for _, o := range out {
		if o.Err != nil {
			t.Errorf("%s: %v", o.Component, o.Err)
		}
		renewed = append(renewed, o.Renewed...)
	}
	if want := []string{"admin.conf", "apiserver", "scheduler.conf"}; !slices.Equal(renewed, want) {
		t.Errorf("renewed %v, want %v", renewed, want)
	}
	if want := []string{renewal.APIServer, renewal.Scheduler}; !slices.Equal(rec.restarts, want) {
		t.Errorf("restarted %v, want %v", rec.restarts, want)
	}
	after := read(t, root)
	for name, old := range before {
		now := after[name]
		if !slices.Contains(renewed, name) {
			if !bytes.Equal(now.Raw, old.Raw) {
				t.Errorf("%s changed but was not due", name)
			}
			continue
		}
		if now.Cert.SerialNumber.Cmp(old.Cert.SerialNumber) == 0 {
			t.Errorf("%s: same serial after renewal", name)
		}
		if !bytes.Equal(now.Cert.RawSubjectPublicKeyInfo, old.Cert.RawSubjectPublicKeyInfo) {
			t.Errorf("%s: the key changed", name)
		}
		if now.Cert.Subject.String() != old.Cert.Subject.String() || !slices.Equal(now.Cert.DNSNames, old.Cert.DNSNames) ||
			len(now.Cert.IPAddresses) != len(old.Cert.IPAddresses) || !slices.Equal(now.Cert.ExtKeyUsage, old.Cert.ExtKeyUsage) {
			t.Errorf("%s: names or usages changed: %v %v %v -> %v %v %v", name, old.Cert.Subject, old.Cert.DNSNames, old.Cert.ExtKeyUsage, now.Cert.Subject, now.Cert.DNSNames, now.Cert.ExtKeyUsage)
		}
		// shorten gave them 10 s; a renewal keeps the lifetime it finds.
		if life := time.Until(now.Cert.NotAfter); life > 30*time.Second || life < 10*time.Second {
			t.Errorf("%s: renewed for %v, want the 10 s lifetime it had", name, life)
		}
		want := os.FileMode(0o600)
		if name == "apiserver" {
			want = 0o640
		}
		if fi, _ := os.Stat(now.File(root)); fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v as it was", name, fi.Mode().Perm(), want)
		}
		verifyChain(t, root, now)
	}
	// Nothing left to do: a second pass renews nothing and restarts nothing.
	rec.restarts = nil
	shortLived := renewer(root, rec)
	shortLived.Share = 0.01
	if out, err := shortLived.RenewDue(t.Context()); err != nil || len(out) != 0 || len(rec.restarts) != 0 {
		t.Errorf("second pass: %+v %v, restarts %v; want nothing done", out, err, rec.restarts)
	}
}

func verifyChain(t *testing.T, root string, c renewal.Cert) {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(root, manifests.PKIDir, string(c.CA)+".crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	if _, err := c.Cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: c.Cert.ExtKeyUsage}); err != nil {
		t.Errorf("%s does not verify against %s: %v", c.Name, c.CA, err)
	}
}

// A CA key that cannot be read stops the renewal before anything is written: the old, still
// valid certificates stay, nothing restarts, and the error says which and until when.
func TestRenewBrokenCAKey(t *testing.T) {
	root := master(t)
	shorten(t, root, time.Hour, "etcd/server", "etcd/peer")
	before := read(t, root)
	if err := os.WriteFile(filepath.Join(root, manifests.PKIDir, "etcd/ca.key"), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	r := renewer(root, rec)
	r.Now = func() time.Time { return time.Now().Add(45 * time.Minute) } // the hour-long certificates are due
	out, err := r.RenewDue(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].Component != renewal.Etcd || out[0].Err == nil || len(out[0].Renewed) != 0 {
		t.Fatalf("outcome %+v, want one failed etcd renewal", out)
	}
	if msg := out[0].Err.Error(); !strings.Contains(msg, "etcd/server") || !strings.Contains(msg, "the CA key") || !strings.Contains(msg, "stays") {
		t.Errorf("error %q does not say which certificate, what is wrong and that the old one stays", msg)
	}
	if len(rec.restarts) != 0 {
		t.Errorf("restarted %v after a failed renewal", rec.restarts)
	}
	for name, c := range read(t, root) {
		if !bytes.Equal(c.Raw, before[name].Raw) {
			t.Errorf("%s changed", name)
		}
	}
}

// A component that is not healthy on its renewed certificates gets the old ones back and is
// restarted on them.
func TestRenewRollsBack(t *testing.T) {
	root := master(t)
	shorten(t, root, time.Hour, "controller-manager.conf")
	before := read(t, root)
	rec := &recorder{unhealthy: map[string]int{renewal.ControllerManager: 1 << 30}}
	r := renewer(root, rec)
	r.Now = func() time.Time { return time.Now().Add(45 * time.Minute) }
	r.HealthTimeout = 1500 * time.Millisecond
	out, err := r.RenewDue(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].Err == nil || !strings.Contains(out[0].Err.Error(), "the old certificates are back") {
		t.Fatalf("outcome %+v, want a failed renewal that put the old certificates back", out)
	}
	if want := []string{renewal.ControllerManager, renewal.ControllerManager}; !slices.Equal(rec.restarts, want) {
		t.Errorf("restarts %v, want %v (once on the new, once on the old)", rec.restarts, want)
	}
	if now := read(t, root)["controller-manager.conf"]; !bytes.Equal(now.Raw, before["controller-manager.conf"].Raw) {
		t.Error("controller-manager.conf is not the old one")
	}
}

// A component whose renewed files were written by a run that stopped before restarting it is
// restarted first by the next run, even with nothing due; a completed renewal leaves no marker.
func TestRenewPendingRestart(t *testing.T) {
	root := master(t)
	state := t.TempDir()
	shorten(t, root, time.Hour, "scheduler.conf")
	rec := &recorder{}
	r := renewer(root, rec)
	r.StateDir = state
	r.Now = func() time.Time { return time.Now().Add(45 * time.Minute) }
	if out, err := r.RenewDue(t.Context()); err != nil || len(out) != 1 || out[0].Err != nil {
		t.Fatalf("renewal: %+v %v", out, err)
	}
	if left, _ := os.ReadDir(state); len(left) != 0 {
		t.Errorf("markers left after a completed renewal: %v", left)
	}
	// As if an agent had written the controller-manager's files and stopped.
	os.WriteFile(filepath.Join(state, "restart-"+renewal.ControllerManager), []byte("x\n"), 0o600)
	rec.restarts = nil
	r.Now = nil
	out, err := r.RenewDue(t.Context())
	if err != nil || len(out) != 1 || out[0].Component != renewal.ControllerManager || out[0].Err != nil {
		t.Fatalf("next run: %+v %v, want the pending controller-manager restart", out, err)
	}
	if !slices.Equal(rec.restarts, []string{renewal.ControllerManager}) {
		t.Errorf("restarts %v", rec.restarts)
	}
	if left, _ := os.ReadDir(state); len(left) != 0 {
		t.Errorf("markers left after the pending restart: %v", left)
	}
}
