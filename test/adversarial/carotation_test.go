package adversarial_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kubeup.dev/kubeup/internal/agent"
	"kubeup.dev/kubeup/internal/carotation"
	"kubeup.dev/kubeup/internal/carotation/carotationtest"
	"kubeup.dev/kubeup/internal/manifests"
)

const masterConfig = "../../configs/local.yaml"

// secret reads the rotation's Secret.
func secret(t *testing.T, f *carotationtest.Master) *corev1.Secret {
	t.Helper()
	s, err := f.M.Client.CoreV1().Secrets(carotation.Namespace).Get(t.Context(), carotation.SecretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func update(t *testing.T, f *carotationtest.Master, s *corev1.Secret) {
	t.Helper()
	if _, err := f.M.Client.CoreV1().Secrets(carotation.Namespace).Update(t.Context(), s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// The rotation's Secret as an attacker or a broken tool would write it. Each is refused on the
// master's first pass with an error naming the Secret and the data key, reported on the Secret;
// the master's files are as they were (not one directory made) and nothing restarts; and once
// the Secret is put right, the same master goes on as if nothing had happened.
func TestHostileRotationSecrets(t *testing.T) {
	leaf, leafKey := carotationtest.SelfSigned(t, "a leaf", false, time.Now().Add(-time.Hour), time.Now().Add(24*365*time.Hour))
	expired, expiredKey := carotationtest.SelfSigned(t, "expired", true, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
	dying, dyingKey := carotationtest.SelfSigned(t, "expires in an hour", true, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	future, futureKey := carotationtest.SelfSigned(t, "from next week", true, time.Now().Add(7*24*time.Hour), time.Now().Add(24*365*time.Hour))
	intruder := carotationtest.CA(t, "intruder", 24*365*time.Hour)
	cases := []struct {
		name, key string // key: the data key the error must name
		edit      func(f *carotationtest.Master, d map[string][]byte)
	}{
		{"no id", "id", func(_ *carotationtest.Master, d map[string][]byte) { delete(d, "id") }},
		{"an id with a path", "id", func(_ *carotationtest.Master, d map[string][]byte) { d["id"] = []byte("../../etc/kubernetes") }},
		{"a 1 MB id", "id", func(_ *carotationtest.Master, d map[string][]byte) { d["id"] = bytes.Repeat([]byte("9"), 1<<20) }},
		{"a CA key missing", "etcd-ca.key", func(_ *carotationtest.Master, d map[string][]byte) { delete(d, "etcd-ca.key") }},
		{"an empty certificate", "front-proxy-ca.crt", func(_ *carotationtest.Master, d map[string][]byte) { d["front-proxy-ca.crt"] = nil }},
		{"binary garbage", "ca.crt", func(_ *carotationtest.Master, d map[string][]byte) { d["ca.crt"] = []byte{0, 0xff, 0xfe, 7, '\n'} }},
		{"text before the PEM", "ca.crt", func(_ *carotationtest.Master, d map[string][]byte) {
			d["ca.crt"] = append([]byte("trust me\n"), d["ca.crt"]...)
		}},
		{"a second CA smuggled in", "ca.crt", func(_ *carotationtest.Master, d map[string][]byte) { d["ca.crt"] = append(d["ca.crt"], intruder...) }},
		{"a key block in the certificate", "ca.crt", func(_ *carotationtest.Master, d map[string][]byte) { d["ca.crt"] = append(d["ca.crt"], d["ca.key"]...) }},
		{"a truncated certificate", "ca.crt", func(_ *carotationtest.Master, d map[string][]byte) { d["ca.crt"] = d["ca.crt"][:len(d["ca.crt"])/2] }},
		{"a certificate that is not a CA", "ca.crt", func(_ *carotationtest.Master, d map[string][]byte) { d["ca.crt"], d["ca.key"] = leaf, leafKey }},
		{"an expired CA", "etcd-ca.crt", func(_ *carotationtest.Master, d map[string][]byte) {
			d["etcd-ca.crt"], d["etcd-ca.key"] = expired, expiredKey
		}},
		{"a CA that expires within a day", "etcd-ca.crt", func(_ *carotationtest.Master, d map[string][]byte) {
			d["etcd-ca.crt"], d["etcd-ca.key"] = dying, dyingKey
		}},
		{"a CA not valid before next week", "ca.crt", func(_ *carotationtest.Master, d map[string][]byte) { d["ca.crt"], d["ca.key"] = future, futureKey }},
		{"another CA's key", "ca.key", func(_ *carotationtest.Master, d map[string][]byte) { d["ca.key"] = d["front-proxy-ca.key"] }},
		{"two keys", "ca.key", func(_ *carotationtest.Master, d map[string][]byte) {
			d["ca.key"] = append(d["ca.key"], d["etcd-ca.key"]...)
		}},
		{"one CA for two", "front-proxy-ca.crt", func(_ *carotationtest.Master, d map[string][]byte) {
			d["front-proxy-ca.crt"], d["front-proxy-ca.key"] = d["ca.crt"], d["ca.key"]
		}},
		{"the CA the master has now", "ca.crt", func(f *carotationtest.Master, d map[string][]byte) {
			d["ca.crt"] = f.OldCA
			d["ca.key"], _ = os.ReadFile(filepath.Join(f.Bundle, "pki/ca.key"))
		}},
		{"an unknown key", "kubelet.conf", func(_ *carotationtest.Master, d map[string][]byte) { d["kubelet.conf"] = []byte("apiVersion: v1") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := carotationtest.New(t, masterConfig)
			good := secret(t, f)
			bad := good.DeepCopy()
			c.edit(f, bad.Data)
			update(t, f, bad)
			before := tree(t, f.Root)

			_, err := f.M.Step(t.Context())
			if err == nil {
				t.Fatal("Step took the Secret")
			}
			msg := err.Error()
			if !strings.Contains(msg, "secret kube-system/kubeup-ca-rotation") || !strings.Contains(msg, `"`+c.key+`"`) || len(msg) > 1000 {
				t.Errorf("the error does not name the Secret and %q in under 1000 bytes:\n%s", c.key, clip(msg))
			}
			if after := tree(t, f.Root); after != before {
				t.Errorf("the master's files changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if len(f.Restarts) > 0 {
				t.Errorf("restarted %v", f.Restarts)
			}
			if got := secret(t, f).Annotations[carotation.MessageAnnotation]; !strings.Contains(got, c.key) {
				t.Errorf("the Secret's report %q does not say what is wrong", clip(got))
			}

			// Put right, the rotation goes on from the start.
			bad = secret(t, f)
			bad.Data = good.Data
			update(t, f, bad)
			if _, err := f.M.Step(t.Context()); err != nil {
				t.Fatalf("with the Secret put right: %v", err)
			}
			if st := secret(t, f).Annotations[carotation.StageAnnotation]; st != string(carotation.NodesTrust) && st != string(carotation.PodsTrust) {
				t.Errorf("with the Secret put right the master is at %s, want past TrustBoth", st)
			}
		})
	}
}

// The annotations and data an attacker can change mid-rotation move the master no faster: a
// forged stage or an early finish skips nothing, a finish that is not "requested" is ignored
// and said so, CA material swapped in under the same id is never trusted, and a node's trust
// annotation counts only when it names the new CA's key id exactly.
func TestHostileRotationAnnotations(t *testing.T) {
	ctx := t.Context()
	f := carotationtest.New(t, masterConfig)
	trustFile := filepath.Join(f.Root, manifests.PKIDir, "ca.crt")
	newSKI := carotationtest.SKI(t, f.News[0].Cert)
	nodeTrusts := func(v string) {
		t.Helper()
		n, err := f.M.Client.CoreV1().Nodes().Get(ctx, "node-1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n.Annotations[agent.TrustAnnotation] = v
		if _, err := f.M.Client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	stage := func() string { return secret(t, f).Annotations[carotation.StageAnnotation] }

	// A forged "Finished" and an early finish, with node-1 trusting only what it did.
	s := secret(t, f)
	s.Annotations = map[string]string{carotation.StageAnnotation: string(carotation.Finished), carotation.FinishAnnotation: "requested"}
	update(t, f, s)
	for _, v := range []string{"", "x" + newSKI, newSKI + "0", strings.Repeat(newSKI[:8], 10000), " " + newSKI} {
		nodeTrusts(v)
		if _, err := f.M.Step(ctx); err != nil {
			t.Fatal(err)
		}
		if stage() != string(carotation.NodesTrust) {
			t.Fatalf("node-1 publishing %q: the master is at %s, want %s", clip(v), stage(), carotation.NodesTrust)
		}
		if msg := secret(t, f).Annotations[carotation.MessageAnnotation]; len(msg) > 1000 {
			t.Errorf("node-1 publishing %d bytes: the master's report is %d bytes; want what it quotes clipped", len(v), len(msg))
		}
	}
	// Another CA swapped in under the same id: never trusted.
	intruder, intruderKey := carotationtest.SelfSigned(t, "intruder", true, time.Now().Add(-time.Hour), time.Now().Add(24*365*time.Hour))
	s = secret(t, f)
	s.Data["ca.crt"], s.Data["ca.key"] = intruder, intruderKey
	update(t, f, s)
	nodeTrusts(carotationtest.SKI(t, intruder))
	if _, err := f.M.Step(ctx); err != nil || stage() != string(carotation.NodesTrust) {
		t.Fatalf("node-1 trusting the swapped-in CA: %v, at %s; want still %s", err, stage(), carotation.NodesTrust)
	}
	nodeTrusts(carotationtest.SKI(t, f.OldCA) + "," + newSKI)
	s = secret(t, f)
	delete(s.Annotations, carotation.FinishAnnotation)
	update(t, f, s)
	// One pass asks the add-ons to restart, the next (the fake's status says they did) goes on.
	for range 2 {
		if _, err := f.M.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if stage() != string(carotation.ReadyToFinish) {
		t.Fatalf("node-1 trusting the new CA: at %s; want %s", stage(), carotation.ReadyToFinish)
	}
	// A finish that is not "requested": ignored, and said so.
	s = secret(t, f)
	s.Annotations[carotation.FinishAnnotation] = "yes please"
	update(t, f, s)
	if _, err := f.M.Step(ctx); err != nil || stage() != string(carotation.ReadyToFinish) ||
		!strings.Contains(secret(t, f).Annotations[carotation.MessageAnnotation], `"yes please", not "requested": ignored`) {
		t.Fatalf("finish %q: %v, at %s, report %q", "yes please", err, stage(), secret(t, f).Annotations[carotation.MessageAnnotation])
	}
	trust, _ := os.ReadFile(trustFile)
	if !bytes.Contains(trust, f.OldCA) || !bytes.Contains(trust, f.News[0].Cert) || bytes.Contains(trust, intruder) {
		t.Errorf("%s: want the old and the new CA, and not the swapped-in one", trustFile)
	}
}

// kube-root-ca.crt as an attacker with write access to it, or a broken controller, would
// publish it: the node adopts none of it (its trust files unchanged, the kubelet not
// restarted) and says why on its console.
func TestHostileRootCA(t *testing.T) {
	n := carotationtest.NewNode(t)
	leaf, _ := carotationtest.SelfSigned(t, "a leaf", false, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	other := carotationtest.CA(t, "other", time.Hour)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	cases := []struct {
		name   string
		bundle []byte
		want   string // in the console
	}{
		{"empty", nil, "has no ca.crt"},
		{"garbage", []byte("\x00\x01garbage"), "not PEM"},
		{"text around the CAs", cat(n.OldCA, []byte("junk\n"), n.ServerCA), "not PEM"},
		{"a leaf with the CAs", cat(n.OldCA, n.ServerCA, leaf), "more than a rotation's two"},
		{"a leaf", cat(n.OldCA, leaf), "is not a CA certificate"},
		{"a key", cat(n.OldCA, []byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n")), "want CERTIFICATEs only"},
		{"three CAs", cat(n.OldCA, n.ServerCA, other), "more than a rotation's two"},
		{"a CA of the server's alone, sharing none with the node", n.ServerCA, "a rotation keeps one"},
		{"a CA the server does not chain to", cat(n.OldCA, other), "does not verify against them"},
	}
	for _, c := range cases {
		n.Log.Reset()
		n.SetRootCA(t, c.bundle)
		if _, err := n.K.Step(t.Context()); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if err := n.TrustIs(n.OldCA); err != nil || n.Restarts != 0 {
			t.Errorf("%s: %v, %d kubelet restarts; want the trust unchanged", c.name, err, n.Restarts)
		}
		if !strings.Contains(n.Log.String(), c.want) {
			t.Errorf("%s: console %q, want %q", c.name, n.Log.String(), c.want)
		}
	}
}
