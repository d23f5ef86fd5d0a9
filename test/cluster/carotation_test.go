//go:build e2e

package cluster

import (
	"context"
	"encoding/hex"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"kubeup.dev/kubeup/internal/agent"
	"kubeup.dev/kubeup/internal/carotation"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/test/testenv"
)

// TestCARotation rotates the CAs of a booted master and node (configs/local.yaml, default
// certificate lifetimes). Not at the end of TestCertRotation: there the kubelets' certificates
// live 8 minutes, and a kubelet whose client certificate expires while the API server restarts
// (a minute and more each on TCG) can no longer renew it; with real lifetimes the restarts are
// nothing next to the 10 to 30% of the lifetime a kubelet has left to renew in.
func TestCARotation(t *testing.T) {
	e := up(t, 1)
	rotateCAs(t, e, "configs/local.yaml")
}

// rotateCAs runs a whole CA rotation on the booted cluster, from the host as an operator
// would (`kubeup certs rotate-ca start`, then `finish` once `status` has nothing
// blocking), and checks what only booted machines show: every machine's agent moves its trust
// (node-1 following kube-root-ca.crt) and its kubelet's certificates onto the new CA, so
// `finish` is not refused; the API server reaches both kubelets with its new certificate
// (logs of a pod on each machine); node-1 stays Ready throughout; kubectl with the host's
// admin.conf is never refused; and at the end every machine trusts the new CA alone and every
// phase passes again.
func rotateCAs(t *testing.T, e *env, config string) {
	ctx := context.Background()
	kubeup := testenv.Build(t, "./kubeup", filepath.Join(t.TempDir(), "kubeup"))
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(kubeup, append([]string{"certs", "rotate-ca"}, append(args, "--config", config, "--state", e.state, "--kubeconfig", e.kubeconfig)...)...)
		cmd.Dir = testenv.RepoRoot()
		out, err := cmd.CombinedOutput()
		t.Logf("kubeup certs rotate-ca %s:\n%s", args[0], out)
		if err != nil {
			t.Fatalf("kubeup certs rotate-ca %s: %v", args[0], err)
		}
		return string(out)
	}
	start := time.Now()
	run("start")
	news, err := pki.RotationCAs(e.state)
	if err != nil {
		t.Fatal(err)
	}
	newID := keyID(t, news[0].Cert)
	// start made kubeup's host copy of admin.conf trust both CAs, so the operator's kubectl
	// keeps working through the rotation with its old-CA certificate (accepted until finish).
	cfg, err := clientcmd.BuildConfigFromFlags("", e.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(cfg.CAData), string(news[0].Cert)) {
		t.Fatalf("%s after start does not trust the new CA", e.kubeconfig)
	}
	cfg.Timeout = 15 * time.Second
	dual := kubernetes.NewForConfigOrDie(cfg)
	// The operator's kubectl through the whole rotation: the host copy as it is on disk then.
	stopKubectl := testenv.SteadyClient(ctx, e.kubeconfig, 5*time.Second, 15*time.Second)
	defer stopKubectl()

	var notReady []string
	watchReady := func(c kubernetes.Interface) {
		if n, err := c.CoreV1().Nodes().Get(ctx, "node-1", metav1.GetOptions{}); err == nil {
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status != corev1.ConditionTrue {
					notReady = append(notReady, time.Now().Format(time.TimeOnly)+" "+cond.Reason)
				}
			}
		}
	}
	seen := "nothing yet"
	deadline := time.Now().Add(30 * time.Minute)
	for {
		watchReady(dual)
		st, err := carotation.GetStatus(ctx, dual)
		var blockers []string
		if err == nil && st != nil {
			blockers, err = carotation.Blockers(ctx, dual, news)
			seen = fmt.Sprintf("stage %s: %s; blockers: %v", st.Stage, st.Message, blockers)
		} else {
			seen = fmt.Sprintf("status: %v (last: %s)", err, seen)
		}
		if err == nil && st != nil && st.Stage == carotation.ReadyToFinish && len(blockers) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rotation did not reach %s with nothing blocking in 30 minutes; last seen: %s", carotation.ReadyToFinish, seen)
		}
		time.Sleep(5 * time.Second) // polling the agents' reports
	}
	t.Logf("%v after start: %s", time.Since(start).Round(time.Second), seen)
	for _, m := range []string{"master", "node-1"} {
		if trust := trustOf(ctx, t, dual, m); !strings.Contains(trust, newID) || strings.Count(trust, ",") != 1 {
			t.Errorf("%s publishes trust %q at %s, want old and new CA", m, trust, carotation.ReadyToFinish)
		}
	}
	// The API server, on its new kubelet client certificate, reaches each kubelet (which
	// trusts the new CA and serves a certificate from it).
	podLogs(ctx, t, dual)

	run("finish", "--timeout", "20m")
	// Requests fail while etcd and the API server restart; none may be refused (the copy's
	// client certificate, or the API server's certificate).
	for _, a := range stopKubectl() {
		if testenv.Refused(a.Err) {
			t.Errorf("kubectl with %s was refused during the rotation at %s: %v", e.kubeconfig, a.At.Format(time.TimeOnly), a.Err)
		}
	}
	// finish rewrote the host's admin.conf: new CA, new certificate.
	if cfg, err = clientcmd.BuildConfigFromFlags("", e.kubeconfig); err != nil {
		t.Fatal(err)
	}
	cfg.Timeout = 15 * time.Second
	host := kubernetes.NewForConfigOrDie(cfg)
	deadline = time.Now().Add(10 * time.Minute)
	for {
		watchReady(host)
		trust := trustOf(ctx, t, host, "node-1")
		seen = "node-1 trusts " + trust
		if trust == newID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node-1 did not follow to the new CA alone in 10 minutes: %s", seen)
		}
		time.Sleep(5 * time.Second) // polling node-1's agent's report
	}
	t.Logf("the whole CA rotation took %v", time.Since(start).Round(time.Second))
	if trust := trustOf(ctx, t, host, "master"); trust != newID {
		t.Errorf("the master publishes trust %q after finish, want the new CA %s alone", trust, newID)
	}
	podLogs(ctx, t, host)
	// Every phase passes again: CoreDNS, flannel and metrics-server (which read their CA once,
	// at start) were restarted onto the new CA and still reach the API server and the kubelets.
	e.checkAll(t, ctx)
	if len(notReady) > 0 {
		t.Errorf("node-1 was not Ready during the CA rotation at: %v", notReady)
	}
	evs, err := host.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs.Items {
		if strings.HasPrefix(ev.Reason, "CARotation") {
			t.Logf("%s %s: %s: %s", ev.LastTimestamp.Format(time.TimeOnly), ev.InvolvedObject.Name, ev.Reason, ev.Message)
		}
	}
}

// podLogs reads a line of a kube-system pod's log on each machine: the API server's
// connection to that kubelet (client certificate, serving certificate, both trusts). Pods come
// and go (the rotation restarts the add-ons), so it polls until a read on each machine
// succeeds, and reports the last error of each machine that never answered.
func podLogs(ctx context.Context, t *testing.T, c kubernetes.Interface) {
	t.Helper()
	lastErr := map[string]string{"master": "no running kube-system pod", "node-1": "no running kube-system pod"}
	deadline := time.Now().Add(3 * time.Minute)
	for len(lastErr) > 0 && time.Now().Before(deadline) {
		var pods []corev1.Pod
		if l, err := c.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{}); err != nil {
			t.Logf("list kube-system pods: %v", err)
		} else {
			pods = l.Items
		}
		for _, p := range pods {
			m := p.Spec.NodeName
			if _, want := lastErr[m]; !want || p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
				continue
			}
			lines := int64(1)
			if _, err := c.CoreV1().Pods("kube-system").GetLogs(p.Name, &corev1.PodLogOptions{TailLines: &lines}).DoRaw(ctx); err != nil {
				lastErr[m] = fmt.Sprintf("logs of %s: %v", p.Name, err)
				continue
			}
			delete(lastErr, m)
		}
		if len(lastErr) > 0 {
			time.Sleep(5 * time.Second) // polling: pods restart
		}
	}
	for m, err := range lastErr {
		t.Errorf("no kube-system pod's log read through %s's kubelet in 3 minutes; last: %s", m, err)
	}
}

// trustOf is the trust a machine's agent publishes on its Node.
func trustOf(ctx context.Context, t *testing.T, c kubernetes.Interface, node string) string {
	n, err := c.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return "unknown: " + err.Error()
	}
	return n.Annotations[agent.TrustAnnotation]
}

func keyID(t *testing.T, certPEM []byte) string {
	t.Helper()
	cs, err := pki.CertsPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(cs[0].SubjectKeyId)
}
