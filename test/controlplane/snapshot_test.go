package controlplane

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"kubeup.dev/kubeup/internal/etcdsnapshot"
	"kubeup.dev/kubeup/internal/manifests"
	"kubeup.dev/kubeup/test/testenv"
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
	checkRestore(t, ctx, e, path, bad, res.Revision)
	// Without the bundle's client certificate, etcd refuses.
	noCert := tlsCfg.Clone()
	noCert.Certificates = nil
	start := time.Now()
	if _, err := etcdsnapshot.Save(ctx, "127.0.0.1:2379", noCert, filepath.Join(t.TempDir(), "x.db")); err == nil || !strings.Contains(err.Error(), "did not answer") || time.Since(start) > time.Minute {
		t.Errorf("a snapshot without a client certificate: %v after %v, want a refusal within a minute", err, time.Since(start))
	}
}

// checkRestore makes a data directory from the snapshot at path as `kubeup etcd snapshot restore`
// does (with etcd's own restore code, a release newer than the cluster's etcd), then restores it
// over a member as a master's agent does when its config carries the snapshot, and starts the
// toolchain's etcd, the cluster's release, on that: the ConfigMap written before the snapshot is
// there, and the revision is past the snapshot's by etcdsnapshot.RevisionBump. A damaged
// snapshot and a used directory are refused.
func checkRestore(t *testing.T, ctx context.Context, e *env, path, bad string, revision int64) {
	m := e.cfg.Master()
	member := etcdsnapshot.Member{Name: m.Name, PeerURL: manifests.EtcdPeerURL(m.IP().String())}
	dir := filepath.Join(t.TempDir(), "etcd")
	if err := etcdsnapshot.Restore(bad, dir, member); err == nil {
		t.Errorf("a damaged snapshot was restored")
	}
	if err := etcdsnapshot.Restore(path, dir, member); err != nil {
		t.Fatal(err)
	}
	if err := etcdsnapshot.Restore(path, dir, member); err == nil {
		t.Errorf("a second restore into %s was not refused", dir)
	}
	// On the machine, an upgrade's rollback restores over the member the master has, with the
	// agent's restore-etcd as its unit runs it: the etcd below starts on that directory.
	dir = filepath.Join(t.TempDir(), "etcd")
	if err := os.MkdirAll(filepath.Join(dir, "member"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "member", "touched"), []byte("the new release's data"), 0o600); err != nil {
		t.Fatal(err)
	}
	inConfig := filepath.Join(t.TempDir(), "snapshot.db")
	if data, err := os.ReadFile(path); err != nil || os.WriteFile(inConfig, data, 0o600) != nil {
		t.Fatal(err)
	}
	agentBin := testenv.Build(t, "./kubeup-agent", filepath.Join(t.TempDir(), "kubeup-agent"))
	out, err := exec.CommandContext(ctx, agentBin, "restore-etcd", "--snapshot", inConfig, "--data-dir", dir,
		"--name", member.Name, "--peer-url", member.PeerURL).CombinedOutput()
	if err != nil {
		t.Fatalf("kubeup-agent restore-etcd: %v\n%s", err, out)
	}
	t.Logf("kubeup-agent restore-etcd: %s", out)
	if _, err := os.Stat(inConfig); !os.IsNotExist(err) {
		t.Errorf("the restored snapshot %s is still there: a later boot would restore it again", inConfig)
	}
	if kept, err := os.ReadFile(filepath.Join(dir, etcdsnapshot.KeptMember, "touched")); err != nil || string(kept) != "the new release's data" {
		t.Errorf("the member the restore replaced is not kept in %s: %v", etcdsnapshot.KeptMember, err)
	}
	// Its own ports and plain HTTP: the cluster's etcd still runs beside it.
	const client, peer = "127.0.0.1:23790", "127.0.0.1:23800"
	portsFree(t, client, peer)
	start(t, e.toolchain, []string{"etcd", "--name=" + member.Name, "--data-dir=" + dir,
		"--listen-client-urls=http://" + client, "--advertise-client-urls=http://" + client,
		"--listen-peer-urls=http://" + peer}, t.TempDir())
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://" + client}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got *clientv3.GetResponse
	var last error
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		got, last = c.Get(ctx, "/registry/configmaps/default/before-snapshot")
		return last == nil, nil
	})
	if err != nil {
		t.Fatalf("the restored etcd does not answer within a minute: %v", last)
	}
	if len(got.Kvs) != 1 {
		t.Errorf("the restored etcd holds %d copies of the ConfigMap written before the snapshot, want 1", len(got.Kvs))
	}
	if want := revision + etcdsnapshot.RevisionBump; got.Header.Revision < want {
		t.Errorf("the restored etcd's revision is %d, want at least %d (the snapshot's %d, bumped)", got.Header.Revision, want, revision)
	}
	// An old revision is compacted: a client resuming a watch from before the loss lists again.
	if _, err := c.Get(ctx, "/registry/configmaps/default/before-snapshot", clientv3.WithRev(revision)); err == nil || !strings.Contains(err.Error(), "compacted") {
		t.Errorf("a read at the snapshot's revision %d: %v, want it compacted", revision, err)
	}
}
