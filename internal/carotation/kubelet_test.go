package carotation_test

import (
	"strings"
	"testing"
	"time"

	"kubeup.dev/kubeup/internal/carotation/carotationtest"
)

// A node's trust follows kube-root-ca.crt only when the API server's certificate verifies
// against what it would adopt (carotationtest.Node: a fake clientset for the ConfigMap, an
// httptest TLS server for the certificate); the real node authorizer, kubelet certificates and
// CSRs run in test/controlplane's TestCARotation.
func TestNodeTrustFollowsTheCluster(t *testing.T) {
	n := carotationtest.NewNode(t)
	oldCA, otherCA, serverCA := n.OldCA, carotationtest.CA(t, "other", time.Hour), n.ServerCA

	// The same CA: nothing to do.
	n.SetRootCA(t, oldCA)
	if busy, err := n.K.Step(t.Context()); err != nil || busy || n.Restarts != 0 {
		t.Fatalf("same CA: busy %v, %v, %d restarts; want nothing done", busy, err, n.Restarts)
	}
	// Old + a CA the API server's certificate does not chain to: not adopted.
	n.SetRootCA(t, append(append([]byte{}, oldCA...), otherCA...))
	if _, err := n.K.Step(t.Context()); err != nil || n.Restarts != 0 {
		t.Fatalf("a trust the server does not verify against: %v, %d restarts", err, n.Restarts)
	}
	if err := n.TrustIs(oldCA); err != nil {
		t.Errorf("after refusing: %v", err)
	}
	if !strings.Contains(n.Log.String(), "does not verify against them") {
		t.Errorf("console: %q; want why it was not adopted", n.Log.String())
	}
	// Old + the CA that issued the server's certificate: adopted, the kubelet restarted once.
	both := append(append([]byte{}, oldCA...), serverCA...)
	n.SetRootCA(t, both)
	if busy, err := n.K.Step(t.Context()); err != nil || !busy || n.Restarts != 1 {
		t.Fatalf("old+server CA: busy %v, %v, %d restarts; want busy and one restart", busy, err, n.Restarts)
	}
	if err := n.TrustIs(both); err != nil {
		t.Error(err)
	}
	if _, err := n.K.Step(t.Context()); err != nil || n.Restarts != 1 {
		t.Errorf("again: %v, %d restarts; want nothing more", err, n.Restarts)
	}
	// The server's CA alone (finish): adopted.
	n.SetRootCA(t, serverCA)
	if busy, err := n.K.Step(t.Context()); err != nil || busy || n.Restarts != 2 {
		t.Fatalf("server CA alone: busy %v, %v, %d restarts", busy, err, n.Restarts)
	}
	if err := n.TrustIs(serverCA); err != nil {
		t.Error(err)
	}
}
