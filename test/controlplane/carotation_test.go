package controlplane

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/certificate/csr"

	"kubeup.dev/kubeup/internal/agent"
	"kubeup.dev/kubeup/internal/carotation"
	"kubeup.dev/kubeup/internal/manifests"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/internal/renewal"
	"kubeup.dev/kubeup/test/testenv"
)

// A CA rotation of the real control plane, driven as an operator would: `kubeup certs
// rotate-ca` plan, start, status and finish against the bundle the control plane was made from,
// and the master agent's certificate loop (CertWatch with carotation.Master, restarting the
// processes as the kubelet would on a changed manifest, with the renewal's health checks).
// A client making a request every second with admin.conf as it is on disk sees failures only
// while etcd or the API server restarts; at the end every certificate of the master and the
// bundle chains to the new CAs only, a client certificate from the old CA is refused, pods'
// kube-root-ca.crt holds the new CA only, the controller-manager signs with the new CA, and
// running start (mid-rotation) and finish (after) again changes nothing.
func TestCARotation(t *testing.T) {
	e := setup(t)
	ctx := t.Context()
	m := &agent.Master{Config: e.agentCfg, Root: e.root, Reporter: &agent.Reporter{Machine: "master", Console: testWriter{t}}}
	if _, err := m.Bootstrap(ctx, apiTimeout); err != nil {
		t.Fatal(err)
	}
	t.Logf("control plane up and bootstrapped %v after start", time.Since(e.startedAt).Round(time.Second))
	if _, err := e.adminCS.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "master"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	oldCA, oldKey := e.bundle.File("pki/ca.crt"), e.bundle.File("pki/ca.key")
	node := newRotationNode(t, e, "node-1", oldCA, oldKey)
	oldClient := clientCertFrom(t, oldCA, oldKey)
	if code := getWithCert(t, e, oldCA, oldClient); code != http.StatusOK {
		t.Fatalf("a cluster-admin certificate from the CA: %d before the rotation", code)
	}

	bin := testenv.Build(t, "./kubeup", filepath.Join(t.TempDir(), "kubeup"))
	rotate := func(args ...string) (string, error) {
		args = append(args, "--config", "testdata/cluster.yaml", "--state", e.bundle.Dir, "--kubeconfig", filepath.Join(e.bundle.Dir, "admin.conf"))
		out, err := exec.CommandContext(ctx, bin, append([]string{"certs", "rotate-ca"}, args...)...).CombinedOutput()
		t.Logf("kubeup certs rotate-ca %s:\n%s", strings.Join(args[:1], " "), out)
		return string(out), err
	}

	// The client: one request a second with admin.conf as it is on disk.
	stopClient := testenv.SteadyClient(ctx, filepath.Join(e.root, "etc/kubernetes/admin.conf"), time.Second, 3*time.Second)
	var answers, hostAnswers []testenv.Answer
	stopHost := func() []testenv.Answer { return nil }
	var mu sync.Mutex // windows are recorded by the agent's goroutine

	// The master's agent: its certificate loop, with restarts recorded as windows. A restart
	// starts the process from its manifest as it is now (the rotation changes the
	// controller-manager's signer flags), as the kubelet does.
	type window struct {
		comp       string
		start, end time.Time
	}
	var windows []window
	health := renewal.LocalHealth(e.root, "https://127.0.0.10:6443")
	r := &renewal.Renewer{Root: e.root, Items: renewal.MasterItems, HealthTimeout: 2 * time.Minute, Log: t.Logf,
		Restart: func(_ context.Context, comp string) error {
			args, err := manifestCommand(e.root, comp+".yaml")
			if err != nil {
				return err
			}
			if comp == renewal.APIServer {
				args = append(args, "--endpoint-reconciler-type=none")
			}
			mu.Lock()
			windows = append(windows, window{comp: comp, start: time.Now()})
			mu.Unlock()
			p := e.procs[comp]
			p.stop()
			p.args = args
			p.run(t)
			return nil
		},
		Healthy: func(ctx context.Context, comp string, since time.Time) error {
			err := health.Check(ctx, comp, since)
			if err == nil {
				mu.Lock()
				if w := &windows[len(windows)-1]; w.end.IsZero() {
					w.end = time.Now()
				}
				mu.Unlock()
			}
			return err
		},
	}
	reloading, err := agent.ReloadingConfig(filepath.Join(e.root, "etc/kubernetes/admin.conf"))
	if err != nil {
		t.Fatal(err)
	}
	agentClient := kubernetes.NewForConfigOrDie(reloading)
	w := &agent.CertWatch{Machine: "master", Root: e.root, Renewer: r,
		Reporter: &agent.Reporter{Machine: "master", Console: testWriter{t}, Client: agentClient, Events: agent.NewEvents(t.Context(), agentClient)}}
	w.CARotation = append(w.CARotation, (&carotation.Master{Root: e.root, Client: agentClient, Renewer: r, Node: "master", Log: t.Logf, Event: w.Say,
		// No kubelet runs here, so a Deployment that keeps its old pod until a new one is
		// available (metrics-server's maxUnavailable: 0) never finishes restarting.
		PodsTimeout: 30 * time.Second}).Step)
	agentCtx, stopAgent := context.WithCancel(ctx)
	var agentDone sync.WaitGroup
	agentDone.Go(func() { w.Run(agentCtx, 2*time.Second) }) // the agent's interval, scaled down
	// The master's agent approves kubelet serving CSRs (node-1 asks for one from the new CA).
	ap := &agent.Approver{Client: agentClient, Log: func(csr string, d agent.Decision, reason string) { t.Logf("CSR %s: %s: %s", csr, d, reason) }}
	agentDone.Go(func() { ap.Run(agentCtx, func(err error) { t.Logf("approver: %v", err) }) })
	stopNode := func() {}
	stopAll := sync.OnceFunc(func() {
		stopNode()
		stopAgent()
		agentDone.Wait()
		answers = stopClient()
		hostAnswers = stopHost()
	})
	defer stopAll()

	// 1. plan, and finish with nothing started.
	if out, err := rotate("plan"); err != nil || !strings.Contains(out, string(carotation.TrustBoth)) || !strings.Contains(out, "finish (refused while") {
		t.Fatalf("plan: %v", err)
	}
	if out, err := rotate("finish"); err == nil || !strings.Contains(out, "no CA rotation") {
		t.Fatalf("finish before start: %v, want a refusal", err)
	}
	// kubeup's host copy of admin.conf (here with the same server), as `kubeup up` keeps one.
	hostCopy := filepath.Join(e.bundle.Dir, "qemu", "admin.conf")
	if err := os.MkdirAll(filepath.Dir(hostCopy), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hostCopy, e.bundle.File("admin.conf"), 0o600); err != nil {
		t.Fatal(err)
	}
	dualConf := filepath.Join(e.bundle.Dir, pki.RotationDir, "admin.conf")
	copyDir := t.TempDir()
	if err := os.CopyFS(copyDir, os.DirFS(e.bundle.Dir)); err != nil {
		t.Fatal(err)
	}
	// CopyFS makes files 0644; a copy of a bundle keeps its 0600 (cp does), or kubeup refuses it.
	if err := filepath.WalkDir(copyDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return os.Chmod(path, 0o600)
	}); err != nil {
		t.Fatal(err)
	}

	// 2. start; again (no-op); from another copy of the bundle (refused).
	if out, err := rotate("start"); err != nil || !strings.Contains(out, "new CAs made") || !strings.Contains(out, "created") {
		t.Fatalf("start: %v", err)
	}
	news, err := pki.RotationCAs(e.bundle.Dir)
	if err != nil {
		t.Fatal(err)
	}
	// kubectl keeps working through the rotation: the host copy and the bundle's dual-trust
	// twin trust old + new CA (checked against the API server at ReadyToFinish, below).
	for _, p := range []string{hostCopy, dualConf} {
		if c, err := clientcmd.BuildConfigFromFlags("", p); err != nil || !bytes.Equal(c.CAData, append(append([]byte{}, oldCA...), news[0].Cert...)) {
			t.Errorf("%s after start: %v; its CA data is not old + new CA", p, err)
		}
	}
	// The operator's kubectl: a request a second with the host copy as it is on disk then.
	stopHost = testenv.SteadyClient(ctx, hostCopy, time.Second, 3*time.Second)
	rotationFiles := snapshotDir(t, e.bundle.Dir)
	secretData := func() map[string][]byte {
		s, err := e.adminCS.CoreV1().Secrets(carotation.Namespace).Get(ctx, carotation.SecretName, metav1.GetOptions{})
		if err != nil {
			return nil
		}
		return s.Data
	}
	before := secretData()
	if out, err := rotate("start"); err != nil || !strings.Contains(out, "already in progress") || !strings.Contains(out, "unchanged") {
		t.Fatalf("start again: %v", err)
	}
	if !equalData(before, secretData()) || !equalSnap(rotationFiles, snapshotDir(t, e.bundle.Dir)) {
		t.Error("start run again changed the bundle or the secret")
	}
	other, err := exec.CommandContext(ctx, bin, "certs", "rotate-ca", "start", "--config", "testdata/cluster.yaml", "--state", copyDir, "--kubeconfig", filepath.Join(e.bundle.Dir, "admin.conf")).CombinedOutput()
	// Another id ("already has CA rotation"), or the same second's id with other CAs.
	if err == nil || !strings.Contains(string(other), "already has CA rotation") && !strings.Contains(string(other), "another copy of the bundle") {
		t.Errorf("start from another copy of the bundle mid-rotation: %v\n%s; want a refusal", err, other)
	}

	// 3. The master's agent moves through the stages. Pods get both CAs once both are trusted.
	statusAt := func() carotation.Status {
		st, err := carotation.GetStatus(ctx, agentClient)
		if err != nil || st == nil {
			return carotation.Status{Message: fmt.Sprint(err)}
		}
		return *st
	}
	// The master trusts both CAs, then waits for node-1, whose agent is not running yet.
	waitFor(t, ctx, "the master waits at "+string(carotation.NodesTrust)+" for node-1", 6*time.Minute, func() error {
		if st := statusAt(); st.Stage != carotation.NodesTrust || !strings.Contains(st.Message, "node node-1 (trusts nothing published") {
			return fmt.Errorf("stage %q: %s", st.Stage, st.Message)
		}
		return nil
	})
	waitFor(t, ctx, "kube-root-ca.crt holds old and new CA", 2*time.Minute, func() error {
		return rootCA(ctx, agentClient, oldCA, news[0].Cert)
	})
	if st := statusAt(); st.Stage != carotation.NodesTrust {
		t.Fatalf("the master went on without node-1: %+v", st)
	}
	// node-1's agent starts: its trust follows kube-root-ca.crt, and the master goes on.
	stopNode = sync.OnceFunc(node.run(t, ctx))
	waitFor(t, ctx, "the master reaches "+string(carotation.ReadyToFinish), 12*time.Minute, func() error {
		if st := statusAt(); st.Stage != carotation.ReadyToFinish {
			return fmt.Errorf("stage %q: %s", st.Stage, st.Message)
		}
		return nil
	})
	if err := node.trusts(t, oldCA, news[0].Cert); err != nil {
		t.Errorf("node-1 at %s: %v", carotation.ReadyToFinish, err)
	}
	rotID := statusAt().ID
	newID := keyIDs(t, news[0].Cert)[0]
	waitFor(t, ctx, "node-1's kubelet certificates from the new CA, and published", 3*time.Minute, func() error {
		if err := node.kubeletCertsFrom(t, news[0].Cert); err != nil {
			return err
		}
		_, issuers, err := published(ctx, agentClient, "node-1")
		if err != nil {
			return err
		}
		for _, it := range renewal.KubeletItems {
			if issuers[it.Name] != newID {
				return fmt.Errorf("node-1 publishes %s issued by %q", it.Name, issuers[it.Name])
			}
		}
		return nil
	})
	if code := getWithCert(t, e, news[0].Cert, oldClient); code != http.StatusOK {
		t.Errorf("during dual trust, a client certificate from the old CA got %d, want 200", code)
	}
	// The API server serves its certificate from the new CA now: the dual-trust kubeconfigs
	// reach it with their old-CA certificate; the bundle's admin.conf (old CA alone) does not.
	for _, p := range []string{hostCopy, dualConf} {
		if err := testenv.GetDefaultNamespace(ctx, p, 3*time.Second); err != nil {
			t.Errorf("kubectl with %s at %s: %v", p, carotation.ReadyToFinish, err)
		}
	}
	if err := testenv.GetDefaultNamespace(ctx, filepath.Join(e.bundle.Dir, "admin.conf"), 3*time.Second); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Errorf("the bundle's admin.conf (old CA alone) at %s: %v, want a refused server certificate", carotation.ReadyToFinish, err)
	}
	if out, err := rotate("status"); err != nil || !strings.Contains(out, string(carotation.ReadyToFinish)) || !strings.Contains(out, "ready to finish") {
		t.Errorf("status at %s: %v", carotation.ReadyToFinish, err)
	}

	// 4. finish is refused while a Node still has a certificate from the old CA.
	stale := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-stale", Annotations: map[string]string{
		agent.CertificatesAnnotation: fmt.Sprintf(`[{"name":"kubelet-client","notAfter":"2030-01-01T00:00:00Z","issuer":%q}]`, hex.EncodeToString(mustCert(t, oldCA).SubjectKeyId))}}}
	if _, err := agentClient.CoreV1().Nodes().Create(ctx, stale, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if out, err := rotate("finish"); err == nil || !strings.Contains(out, "node node-stale: kubelet-client is still issued by the old CA") || !strings.Contains(out, "nothing was changed") {
		t.Errorf("finish with node-stale on the old CA: %v; want a refusal naming it", err)
	}
	if st := statusAt(); st.Stage != carotation.ReadyToFinish || st.Finish {
		t.Errorf("after a refused finish the master is at %+v", st)
	}
	if err := agentClient.CoreV1().Nodes().Delete(ctx, "node-stale", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	// 5. finish; again (no-op). kubeup's host copy of admin.conf gets the new CA and
	// certificate; the dual-trust twin is removed.
	if out, err := rotate("finish"); err != nil || !strings.Contains(out, "finished") {
		t.Fatalf("finish: %v", err)
	}
	finished := snapshotDir(t, e.bundle.Dir)
	if out, err := rotate("finish"); err != nil || !strings.Contains(out, "nothing to do") {
		t.Errorf("finish again: %v", err)
	}
	if !equalSnap(finished, snapshotDir(t, e.bundle.Dir)) {
		t.Error("finish run again changed the bundle")
	}
	// node-1 follows to the new CA alone and still reaches the API server as itself.
	waitFor(t, ctx, "node-1 trusts the new CA alone, and publishes that", 3*time.Minute, func() error {
		if err := node.trusts(t, news[0].Cert); err != nil {
			return err
		}
		if trust, _, err := published(ctx, agentClient, "node-1"); err != nil || trust != newID {
			return fmt.Errorf("node-1 publishes trust %q (%v), want %s", trust, err, newID)
		}
		return nil
	})
	if _, err := node.client.CoreV1().Nodes().Get(ctx, "node-1", metav1.GetOptions{}); err != nil {
		t.Errorf("node-1's agent, as the node, after the rotation: %v", err)
	}
	stopAll()
	oldID := keyIDs(t, oldCA)[0]
	t.Logf("node-1's kubelet restarts, with the trust each started on: %v", node.restarts)
	if len(node.restarts) < 3 || node.restarts[0] != oldID+","+newID || node.restarts[len(node.restarts)-1] != newID {
		t.Errorf("node-1's kubelet restarts %v: want the first on old+new (%s,%s), one after its certificates moved, the last on the new CA alone", node.restarts, oldID, newID)
	}

	// The client's view of the whole rotation.
	for _, w := range windows {
		t.Logf("%s restarted: unavailable-to-healthy window %v", w.comp, w.end.Sub(w.start).Round(time.Millisecond))
		if w.end.IsZero() || w.end.Sub(w.start) > maxWindow {
			t.Errorf("%s took %v to be healthy, over the %v bound", w.comp, w.end.Sub(w.start), maxWindow)
		}
	}
	// Neither the agent's admin.conf nor the host's copy (kubeconfigs start made trust both,
	// given a certificate from the new CA by finish) is ever refused: requests fail only while
	// etcd or the API server restarts.
	for _, client := range []struct {
		name    string
		answers []testenv.Answer
	}{{"admin.conf on the master", answers}, {"kubeup's host copy of admin.conf", hostAnswers}} {
		failed := 0
		for _, a := range client.answers {
			if a.Err == nil {
				continue
			}
			failed++
			if testenv.Refused(a.Err) {
				t.Errorf("%s: request at %s refused: %v", client.name, a.At.Format(time.TimeOnly), a.Err)
			} else if !slices.ContainsFunc(windows, func(w window) bool {
				return (w.comp == renewal.Etcd || w.comp == renewal.APIServer) &&
					!a.At.Before(w.start.Add(-restartSlack)) && !a.At.After(w.end.Add(restartSlack))
			}) {
				t.Errorf("%s: request at %s failed outside any etcd or API server restart: %v", client.name, a.At.Format(time.TimeOnly), a.Err)
			}
		}
		t.Logf("%s: %d requests, %d failed (all during restarts), %d restarts", client.name, len(client.answers), failed, len(windows))
		if len(client.answers) < 60 {
			t.Errorf("%s: only %d requests were made", client.name, len(client.answers))
		}
	}

	// Every certificate of the master chains to the new CAs and not the old; every trust file
	// holds the new CA only; the controller-manager signs from pki/ca.crt again.
	newPool := map[pki.CA]*x509.CertPool{}
	for _, n := range news {
		newPool[n.CA] = x509.NewCertPool()
		newPool[n.CA].AppendCertsFromPEM(n.Cert)
		if got, _ := os.ReadFile(filepath.Join(e.root, manifests.PKIDir, string(n.CA)+".crt")); !bytes.Equal(got, n.Cert) {
			t.Errorf("pki/%s.crt on the master is not the new CA alone", n.CA)
		}
	}
	certs, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	oldPool := x509.NewCertPool()
	oldPool.AppendCertsFromPEM(oldCA)
	for _, c := range certs {
		if _, err := c.Cert.Verify(x509.VerifyOptions{Roots: newPool[c.CA], KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("%s does not chain to the new %s: %v", c.Name, c.CA, err)
		}
		if c.CA == pki.ClusterCA {
			if _, err := c.Cert.Verify(x509.VerifyOptions{Roots: oldPool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err == nil {
				t.Errorf("%s still chains to the old CA", c.Name)
			}
		}
	}
	cm, _ := os.ReadFile(filepath.Join(e.root, manifests.ManifestsDir, "kube-controller-manager.yaml"))
	if !strings.Contains(string(cm), "--cluster-signing-cert-file="+manifests.PKIDir+"/ca.crt") {
		t.Error("the controller-manager's signer is not pki/ca.crt again")
	}
	if _, err := os.Stat(filepath.Join(e.root, carotation.WorkDir, "old")); err == nil {
		t.Error("the master still keeps the old CA keys")
	}

	// From the operator's side: the old CA's client certificate is refused, the bundle holds
	// the new CAs and its admin.conf works, the secret with the CA keys is gone.
	if code := getWithCert(t, e, news[0].Cert, oldClient); code != http.StatusUnauthorized {
		t.Errorf("a client certificate from the old CA got %d after the rotation, want 401", code)
	}
	b, err := pki.Load(e.bundle.Dir, e.cfg)
	if err != nil {
		t.Fatalf("the bundle after the rotation: %v", err)
	}
	for _, n := range news {
		if !bytes.Equal(b.File("pki/"+string(n.CA)+".crt"), n.Cert) {
			t.Errorf("the bundle's pki/%s.crt is not the new CA", n.CA)
		}
	}
	bundleAdmin, err := clientcmd.BuildConfigFromFlags("", filepath.Join(e.bundle.Dir, "admin.conf"))
	if err != nil {
		t.Fatal(err)
	}
	operator := kubernetes.NewForConfigOrDie(bundleAdmin)
	// Every add-on workload was asked to restart its pods on the new CA alone.
	for _, ns := range manifests.AddonNamespaces {
		ds, err := operator.AppsV1().DaemonSets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		deps, err := operator.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		templates := map[string]map[string]string{}
		for _, d := range ds.Items {
			templates["daemonset "+ns+"/"+d.Name] = d.Spec.Template.Annotations
		}
		for _, d := range deps.Items {
			templates["deployment "+ns+"/"+d.Name] = d.Spec.Template.Annotations
		}
		for name, ann := range templates {
			if ann[carotation.RestartAnnotation] != rotID+"-new" {
				t.Errorf("%s: pod template annotation %s=%q, want %q", name, carotation.RestartAnnotation, ann[carotation.RestartAnnotation], rotID+"-new")
			}
		}
	}

	if _, err := operator.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
		t.Errorf("the bundle's admin.conf after the rotation: %v", err)
	}
	if copyCfg, err := clientcmd.BuildConfigFromFlags("", hostCopy); err != nil || !bytes.Equal(copyCfg.CAData, news[0].Cert) {
		t.Errorf("kubeup's host copy of admin.conf after finish: %v; its CA data is not the new CA", err)
	} else if _, err := kubernetes.NewForConfigOrDie(copyCfg).CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
		t.Errorf("kubeup's host copy of admin.conf after finish: %v", err)
	}
	if _, err := os.Stat(dualConf); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s after finish: %v, want it removed (its certificate is from the old CA)", dualConf, err)
	}
	if _, err := operator.CoreV1().Secrets(carotation.Namespace).Get(ctx, carotation.SecretName, metav1.GetOptions{}); err == nil {
		t.Error("the rotation's secret (CA keys) is still there")
	}
	waitFor(t, ctx, "kube-root-ca.crt holds the new CA only", 2*time.Minute, func() error {
		return rootCA(ctx, operator, news[0].Cert)
	})

	// The controller-manager signs kubelet client certificates with the new CA: a node's
	// bootstrap CSR, auto-approved, comes back signed by it.
	boot := &rest.Config{Host: bundleAdmin.Host, BearerToken: e.bundle.Token.ID + "." + e.bundle.Token.Secret,
		TLSClientConfig: rest.TLSClientConfig{CAData: news[0].Cert}, Timeout: 15 * time.Second}
	csrPEM, key := nodeCSR(t, "node-2", nil, nil)
	usages := []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}
	bc := kubernetes.NewForConfigOrDie(boot)
	name, uid, err := csr.RequestCertificateWithContext(ctx, bc, csrPEM, "", certificatesv1.KubeAPIServerClientKubeletSignerName, nil, usages, key)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	signed, err := csr.WaitForCertificate(wctx, bc, name, uid)
	if err != nil {
		t.Fatalf("node CSR after the rotation: %v", err)
	}
	if err := mustCert(t, signed).CheckSignatureFrom(mustCert(t, news[0].Cert)); err != nil {
		t.Errorf("a kubelet client certificate signed after the rotation is not from the new CA: %v", err)
	}
	waitFor(t, ctx, "an Event on Node master for every stage of the CA rotation", 30*time.Second, func() error {
		reasons := eventReasons(ctx, t, operator)
		for _, s := range []carotation.Stage{carotation.TrustBoth, carotation.NodesTrust, carotation.Reissue, carotation.SwitchSigner, carotation.Finishing} {
			if reasons["CARotation"+string(s)] == 0 {
				return fmt.Errorf("no CARotation%s event on Node master: %v", s, reasons)
			}
		}
		return nil
	})
}

// rootCA checks the default namespace's kube-root-ca.crt holds exactly the CAs of want, in
// any order (the master's trust file is old+new, then new+old once the new CA signs).
func rootCA(ctx context.Context, c kubernetes.Interface, want ...[]byte) error {
	cm, err := c.CoreV1().ConfigMaps("default").Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
	if err != nil {
		return err
	}
	got, err := pki.CertsPEM([]byte(cm.Data["ca.crt"]))
	if err != nil {
		return err
	}
	if len(got) != len(want) {
		return fmt.Errorf("kube-root-ca.crt holds %d certificates, want %d", len(got), len(want))
	}
	for i, w := range want {
		if !slices.ContainsFunc(got, func(c *x509.Certificate) bool { return bytes.Equal(c.Raw, mustCertNoT(w).Raw) }) {
			return fmt.Errorf("kube-root-ca.crt lacks CA %d of %d", i+1, len(want))
		}
	}
	return nil
}

// clientCertFrom issues a cluster-admin client certificate from the CA cert/key given.
func clientCertFrom(t *testing.T, caPEM, caKeyPEM []byte) tls.Certificate {
	t.Helper()
	ca := mustCert(t, caPEM)
	kb, _ := pem.Decode(caKeyPEM)
	caKey, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "old-ca-admin", Organization: []string{pki.ClusterAdminsGroup}},
		NotBefore:    time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// getWithCert GETs the default namespace with a client certificate, trusting serverCA, and
// returns the status code.
func getWithCert(t *testing.T, e *env, serverCA []byte, cert tls.Certificate) int {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(serverCA)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}}
	resp, err := hc.Get(e.admin.Host + "/api/v1/namespaces/default")
	if err != nil {
		t.Errorf("GET with a client certificate: %v", err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func mustCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	c := mustCertNoT(data)
	if c == nil {
		t.Fatal("no certificate")
	}
	return c
}

func mustCertNoT(data []byte) *x509.Certificate {
	cs, err := pki.CertsPEM(data)
	if err != nil {
		return nil
	}
	return cs[0]
}

// snapshotDir maps every regular file under dir to its content.
func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			data, _ := os.ReadFile(p)
			fi, _ := d.Info()
			out[p] = fmt.Sprintf("%s %v %v", data, fi.Mode(), fi.ModTime())
		}
		return err
	})
	return out
}

func equalSnap(a, b map[string]string) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func equalData(a, b map[string][]byte) bool {
	if len(a) == 0 || len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			return false
		}
	}
	return true
}
