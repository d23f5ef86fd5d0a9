package controlplane

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kubeup.dev/kubeup/internal/etcdsnapshot"
)

// checkSnapshot saves a snapshot of the running etcd as `kubeup etcd snapshot save --endpoint`
// does, and checks that it holds a write made before it, is 0600, is never overwritten, and
// that a damaged copy is caught.
func checkSnapshot(t *testing.T, ctx context.Context, e *env) {
	cm, err := e.adminCS.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "before-snapshot"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	written, err := strconv.ParseInt(cm.ResourceVersion, 10, 64) // etcd's revision of the write
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := etcdsnapshot.ClientTLS(e.bundle)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "snap.db")
	res, err := etcdsnapshot.Save(ctx, "127.0.0.1:2379", tlsCfg, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("snapshot: %+v", res)
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() != res.Size || res.Size < 64<<10 {
		t.Errorf("snapshot file: %v, %v; want 0600 and the %d bytes saved (an etcd database is over 64 KiB)", st.Mode(), err, res.Size)
	}
	if res.Revision < written || !strings.HasPrefix(res.EtcdVersion, "3.") || len(res.SHA256) != 64 {
		t.Errorf("snapshot %+v: want a revision at least the ConfigMap's %d, an etcd 3 version and a SHA-256", res, written)
	}
	if _, err := etcdsnapshot.Save(ctx, "127.0.0.1:2379", tlsCfg, path); err == nil || !strings.Contains(err.Error(), "never overwritten") {
		t.Errorf("second save to %s: %v, want a refusal", path, err)
	}
	// A copy with one byte changed fails the check a restore would make.
	data, _ := os.ReadFile(path)
	data[len(data)/2] ^= 0xff
	bad := filepath.Join(t.TempDir(), "bad.db")
	if err := os.WriteFile(bad, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := etcdsnapshot.Check(bad); err == nil {
		t.Errorf("a damaged snapshot passed the check")
	}
	// Without the bundle's client certificate, etcd refuses.
	noCert := tlsCfg.Clone()
	noCert.Certificates = nil
	start := time.Now()
	if _, err := etcdsnapshot.Save(ctx, "127.0.0.1:2379", noCert, filepath.Join(t.TempDir(), "x.db")); err == nil || !strings.Contains(err.Error(), "did not answer") || time.Since(start) > time.Minute {
		t.Errorf("a snapshot without a client certificate: %v after %v, want a refusal within a minute", err, time.Since(start))
	}
}
