package carotation

import (
	"cmp"
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"kubeup.dev/kubeup/internal/agent"
	"kubeup.dev/kubeup/internal/fsutil"
	"kubeup.dev/kubeup/internal/manifests"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/internal/renewal"
)

// Master is the master agent's side of a rotation: on every pass (Step) it reads the Secret and
// takes the master through as many stages as it can, one component restart at a time, each
// followed by the renewal's health check. What it did is reported on the Secret
// (StageAnnotation, MessageAnnotation) and, through Event, on the master's Node. A stage that
// fails is tried again on the next pass: every stage writes whole files and restarts, so doing
// it twice is doing it once.
type Master struct {
	// Root prefixes every path ("/" on a machine).
	Root   string
	Client kubernetes.Interface
	// Renewer re-issues leaves (its Reissue) and restarts components (its RestartHealthy,
	// with its Restart and Healthy).
	Renewer *renewal.Renewer
	// RestartKubelet, if set, restarts the machine's kubelet, which reads the CA data of its
	// kubeconfig only when it starts (on a machine: systemctl restart kubelet; the static pods
	// keep running meanwhile). Nil where no kubelet runs (the control-plane test).
	RestartKubelet func(ctx context.Context) error
	// Node is the master's own Node, which NodesTrust does not wait on: the master's trust is
	// the one this writes.
	Node string
	// PodsTimeout bounds how long PodsTrust waits with no progress in the add-ons' restarts
	// (default DefaultPodsTimeout): a workload whose new pods never become available (no room
	// for them) must not hold the rotation for ever. What did not restart is reported.
	PodsTimeout time.Duration
	// Now, if set, is the clock (tests).
	Now func() time.Time
	// Event, if set, reports each stage done or failed.
	Event func(ctx context.Context, ok bool, reason, msg string)
	// Log, if set, is told about every step.
	Log func(format string, args ...any)
}

// DefaultPodsTimeout is how long PodsTrust waits for the add-ons' restarts to make progress
// (a DaemonSet restarts a pod per node at a time, so a large cluster takes long, but moves).
const DefaultPodsTimeout = 10 * time.Minute

// state is the master's own record of the rotation it is in (WorkDir/state.json).
type state struct {
	ID    string `json:"id"`
	Stage Stage  `json:"stage"`
	// PodsSeen is what PodsTrust last saw still restarting, and PodsSince since when.
	PodsSeen  string    `json:"podsSeen,omitempty"`
	PodsSince time.Time `json:"podsSince,omitzero"`
}

func (m *Master) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Master) logf(format string, args ...any) {
	if m.Log != nil {
		m.Log(format, args...)
	}
}

func (m *Master) stateFile() string { return m.path(WorkDir + "/state.json") }

func (m *Master) load() (state, error) {
	var st state
	data, err := os.ReadFile(m.stateFile())
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(data, &st)
}

func (m *Master) save(st state) error {
	data, _ := json.Marshal(st)
	return fsutil.ReplaceFile(m.stateFile(), append(data, '\n'), 0o600)
}

// Step takes the rotation the Secret names as far as it can go now. With no Secret there is
// nothing to do. busy says a rotation is in progress and waits on others (the nodes, or the
// operator's finish): the agent looks again soon.
func (m *Master) Step(ctx context.Context) (busy bool, err error) {
	st, err := m.step(ctx)
	return st != "" && st != Finished, err
}

func (m *Master) step(ctx context.Context) (Stage, error) {
	sec, err := m.Client.CoreV1().Secrets(Namespace).Get(ctx, SecretName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("CA rotation: read secret %s/%s: %w", Namespace, SecretName, err)
	}
	id := string(sec.Data[IDKey])
	st, err := m.load()
	if err != nil {
		return "", fmt.Errorf("CA rotation: %s: %w", m.stateFile(), err)
	}
	if st.ID != id || id == "" {
		if st.ID != "" && st.Stage != Finished {
			err := fmt.Errorf("the master is in CA rotation %s (stage %s) but secret %s/%s names rotation %q: finish %s first", st.ID, st.Stage, Namespace, SecretName, clip(id), st.ID)
			m.report(ctx, sec, st.Stage, "", err)
			return st.Stage, err
		}
		if err := m.begin(sec); err != nil {
			m.report(ctx, sec, TrustBoth, "", err)
			return TrustBoth, err
		}
		st = state{ID: id, Stage: TrustBoth}
		if err := m.save(st); err != nil {
			return TrustBoth, err
		}
		m.logf("CA rotation %s: new CAs received", id)
	}
	for {
		from := st.Stage
		msg, err := m.do(ctx, sec, &st)
		if err == nil && st.Stage != from {
			err = m.save(st)
		}
		m.report(ctx, sec, st.Stage, msg, err)
		if err != nil {
			return st.Stage, fmt.Errorf("CA rotation %s, stage %s: %w", id, from, err)
		}
		if st.Stage == from {
			return st.Stage, nil
		}
		if m.Event != nil {
			m.Event(ctx, true, "CARotation"+string(from), msg)
		}
	}
}

// do runs one stage and moves st on when it is done, returning what it did.
func (m *Master) do(ctx context.Context, sec *corev1.Secret, st *state) (string, error) {
	switch st.Stage {
	case TrustBoth:
		msg, err := m.trustBoth(ctx)
		if err == nil {
			st.Stage = NodesTrust
		}
		return msg, err
	case NodesTrust:
		waiting, err := m.untrusting(ctx)
		if err != nil {
			return "", err
		}
		if len(waiting) > 0 {
			return "waiting for every node to trust the new CA before the API server presents a certificate from it: " + strings.Join(waiting, "; "), nil
		}
		st.Stage = PodsTrust
		return "every node trusts the new CA", nil
	case PodsTrust:
		pending, err := m.restartAddons(ctx, st.ID+"-both")
		if err != nil {
			return "", err
		}
		if seen := strings.Join(pending, "; "); seen != st.PodsSeen || st.PodsSince.IsZero() {
			st.PodsSeen, st.PodsSince = seen, m.now().UTC()
			if err := m.save(*st); err != nil {
				return "", err
			}
		}
		timeout := cmp.Or(m.PodsTimeout, DefaultPodsTimeout)
		if len(pending) > 0 && m.now().Sub(st.PodsSince) < timeout {
			return "waiting for the add-ons' pods to restart on old+new trust: " + st.PodsSeen, nil
		}
		st.Stage = Reissue
		if len(pending) > 0 {
			msg := fmt.Sprintf("no progress for %v, going on without: %s (a pod from before may refuse the API server's new certificate: restart it)", timeout, st.PodsSeen)
			if m.Event != nil {
				m.Event(ctx, false, "CARotationPodsNotRestarted", msg)
			}
			return msg, nil
		}
		return fmt.Sprintf("the add-ons' pods (namespaces %s) restarted on old+new trust", strings.Join(manifests.AddonNamespaces, ", ")), nil
	case Reissue:
		msg, err := m.reissue(ctx)
		if err == nil {
			st.Stage = SwitchSigner
		}
		return msg, err
	case SwitchSigner:
		if err := m.writeSigner("new"); err != nil {
			return "", err
		}
		msg, err := m.restart(ctx, renewal.ControllerManager)
		if err == nil {
			st.Stage = ReadyToFinish
			msg = "the controller-manager signs kubelet certificates with the new CA (" + msg + ")"
		}
		return msg, err
	case ReadyToFinish:
		const waiting = "every certificate of the master is from the new CA; waiting for `kubeup certs rotate-ca finish`"
		switch v, ok := sec.Annotations[FinishAnnotation]; {
		case v == "requested":
			st.Stage = Finishing
			return "finish requested", nil
		case ok:
			return fmt.Sprintf("%s (%s is %q, not \"requested\": ignored)", waiting, FinishAnnotation, clip(v)), nil
		}
		return waiting, nil
	case Finishing:
		msg, err := m.finish(ctx, st.ID)
		if err == nil {
			st.Stage = Finished
		}
		return msg, err
	case Finished:
		return "the old CAs are trusted nowhere on the master", nil
	}
	return "", fmt.Errorf("unknown stage %q in %s", st.Stage, m.stateFile())
}

// begin keeps the new CAs from the Secret and a copy of the old ones (first certificate of each
// trust file, and its key) in WorkDir. Everything is read and checked before anything is
// written: a Secret refused leaves the master as it was.
func (m *Master) begin(sec *corev1.Secret) error {
	cas, err := CAsOf(sec, m.now())
	if err != nil {
		return err
	}
	type file struct {
		path string
		data []byte
	}
	var files []file
	current := map[string]pki.CA{} // the public keys of the master's CAs now
	for _, c := range cas {
		oldPEM, old, err := readFirst(m.trustFile(c.CA))
		if err != nil {
			return err
		}
		current[string(old.RawSubjectPublicKeyInfo)] = c.CA
		oldKey, err := os.ReadFile(m.keyFile(c.CA))
		if err != nil {
			return err
		}
		files = append(files, file{m.caFile("new", c.CA, ".crt"), c.Cert}, file{m.caFile("new", c.CA, ".key"), c.Key},
			file{m.caFile("old", c.CA, ".crt"), oldPEM}, file{m.caFile("old", c.CA, ".key"), oldKey})
	}
	for _, n := range cas {
		if _, cert, _ := firstCert(n.Cert); cert != nil {
			if ca, ok := current[string(cert.RawSubjectPublicKeyInfo)]; ok {
				return secretError(dataKey(n.CA, ".crt"), "the key of the master's current %s: a rotation needs new keys", ca)
			}
		}
	}
	for _, d := range []string{"new", "old"} {
		if err := fsutil.MkdirAll(m.path(WorkDir+"/"+d), 0o700); err != nil {
			return err
		}
	}
	for _, f := range files {
		if err := createOrSame(f.path, f.data); err != nil {
			return err
		}
	}
	return nil
}

func readFirst(path string) ([]byte, *x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	p, c, err := firstCert(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, c, nil
}

func (m *Master) read(dir string, ca pki.CA, ext string) ([]byte, error) {
	return os.ReadFile(m.caFile(dir, ca, ext))
}

// setTrust writes each CA's trust file as the CAs of dirs in that order (the first one signs:
// renewals and kubeadm read the first certificate with pki/<ca>.key), its key as the first's,
// and the kubeconfigs' CA data as the cluster CAs of dirs.
func (m *Master) setTrust(dirs ...string) error {
	for _, ca := range pki.CAs {
		var bundle []byte
		for _, d := range dirs {
			c, err := m.read(d, ca, ".crt")
			if err != nil {
				return err
			}
			bundle = append(bundle, c...)
		}
		key, err := m.read(dirs[0], ca, ".key")
		if err != nil {
			return err
		}
		if err := replaceKeepingMode(m.keyFile(ca), key); err != nil {
			return err
		}
		if err := replaceKeepingMode(m.trustFile(ca), bundle); err != nil {
			return err
		}
	}
	var clusterCA []byte
	for _, d := range dirs {
		c, err := m.read(d, pki.ClusterCA, ".crt")
		if err != nil {
			return err
		}
		clusterCA = append(clusterCA, c...)
	}
	return setKubeconfigCA(m.kubeconfigs(), clusterCA)
}

// writeSigner makes the signer files the cluster CA of dir ("old" or "new").
func (m *Master) writeSigner(dir string) error {
	for ext, dst := range map[string]string{".crt": SignerCert, ".key": SignerKey} {
		data, err := m.read(dir, pki.ClusterCA, ext)
		if err != nil {
			return err
		}
		if err := fsutil.ReplaceFile(m.path(dst), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// restart restarts components one at a time, each checked healthy before the next.
func (m *Master) restart(ctx context.Context, comps ...string) (string, error) {
	var done []string
	for _, c := range comps {
		d, err := m.Renewer.RestartHealthy(ctx, c)
		if err != nil {
			return strings.Join(done, ", "), fmt.Errorf("%s: %w", c, err)
		}
		done = append(done, fmt.Sprintf("%s healthy after %v", c, d.Round(time.Second)))
		m.logf("CA rotation: %s restarted, healthy in %v", c, d.Round(time.Millisecond))
	}
	return strings.Join(done, ", "), nil
}

// trustBoth: the controller-manager signs from the signer files (still the old CA), every trust
// file and kubeconfig holds old and new CA, and every component restarts on them. The
// controller-manager goes first: it is the one that cannot read a two-certificate ca.crt as
// its signer, and it publishes the trust file to pods (kube-root-ca.crt).
func (m *Master) trustBoth(ctx context.Context) (string, error) {
	if err := m.writeSigner("old"); err != nil {
		return "", err
	}
	if err := m.setSigner(SignerCert, SignerKey); err != nil {
		return "", err
	}
	if err := m.setTrust("old", "new"); err != nil {
		return "", err
	}
	msg, err := m.restart(ctx, renewal.ControllerManager, renewal.Etcd, renewal.APIServer, renewal.Scheduler)
	if err != nil {
		return msg, err
	}
	kmsg, err := m.restartKubelet(ctx)
	return "old and new CAs trusted everywhere on the master: " + msg + kmsg, err
}

// restartKubelet restarts the kubelet on its kubeconfig's new CA data, when there is one.
func (m *Master) restartKubelet(ctx context.Context) (string, error) {
	if m.RestartKubelet == nil {
		return "", nil
	}
	if err := m.RestartKubelet(ctx); err != nil {
		return "", fmt.Errorf("restart the kubelet: %w", err)
	}
	return ", kubelet restarted", nil
}

// untrusting lists the Nodes (but the master's) whose agent has not published that its machine
// trusts the new cluster CA (agent.TrustAnnotation): moving the API server to the new CA now
// would cut them off.
func (m *Master) untrusting(ctx context.Context) ([]string, error) {
	news, err := m.newCAs()
	if err != nil {
		return nil, err
	}
	ski := hex.EncodeToString(news[pki.ClusterCA].SubjectKeyId)
	nodes, err := m.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []string
	for i := range nodes.Items {
		n := &nodes.Items[i]
		if n.Name == m.Node || slices.Contains(strings.Split(n.Annotations[agent.TrustAnnotation], ","), ski) {
			continue
		}
		have := clip(n.Annotations[agent.TrustAnnotation]) // what a node publishes goes into the Secret's report
		if have == "" {
			have = "nothing published"
		}
		out = append(out, fmt.Sprintf("node %s (trusts %s; a machine that is gone: delete its Node)", n.Name, have))
	}
	return out, nil
}

// newCAs are the rotation's new CA certificates by CA.
func (m *Master) newCAs() (map[pki.CA]*x509.Certificate, error) {
	out := map[pki.CA]*x509.Certificate{}
	for _, ca := range pki.CAs {
		data, err := m.read("new", ca, ".crt")
		if err != nil {
			return nil, err
		}
		if _, out[ca], err = firstCert(data); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// OnOldCA lists the master's certificates not issued by the new CAs.
func (m *Master) onOldCA() ([]string, error) {
	news, err := m.newCAs()
	if err != nil {
		return nil, err
	}
	certs, err := m.Renewer.Read()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range certs {
		if c.Cert.CheckSignatureFrom(news[c.CA]) != nil {
			out = append(out, c.Name)
		}
	}
	return out, nil
}

// reissue: the new CA signs (first in every trust file, its key in pki/<ca>.key), and every leaf
// still from the old CA is re-issued from it, same key and names, component by component with
// the renewal's restart, health check and rollback.
func (m *Master) reissue(ctx context.Context) (string, error) {
	if err := m.setTrust("new", "old"); err != nil {
		return "", err
	}
	news, err := m.newCAs()
	if err != nil {
		return "", err
	}
	outs, err := m.Renewer.Reissue(ctx, func(c renewal.Cert) bool { return c.Cert.CheckSignatureFrom(news[c.CA]) != nil })
	if err != nil {
		return "", err
	}
	var done []string
	var errs []error
	for _, o := range outs {
		if o.Err != nil {
			errs = append(errs, o.Err)
			continue
		}
		s := strings.Join(o.Renewed, ", ")
		if o.Component != "" {
			s += fmt.Sprintf(" (%s healthy after %v)", o.Component, o.Window.Round(time.Second))
		}
		done = append(done, s)
	}
	msg := "re-issued from the new CAs: " + strings.Join(done, "; ")
	if len(errs) > 0 {
		return msg, errors.Join(errs...)
	}
	if left, err := m.onOldCA(); err != nil || len(left) > 0 {
		return msg, fmt.Errorf("still from the old CA after re-issuing: %v %v", left, err)
	}
	return msg, nil
}

// finish drops the old CAs: trust files and kubeconfigs hold the new ones only, the
// controller-manager signs from pki/ca.crt and pki/ca.key again, everything restarts, and the
// rotation's copies of the keys go.
func (m *Master) finish(ctx context.Context, id string) (string, error) {
	if left, err := m.onOldCA(); err != nil || len(left) > 0 {
		return "", fmt.Errorf("refusing to drop the old CAs: %v still from them %v", left, err)
	}
	if err := m.setTrust("new"); err != nil {
		return "", err
	}
	if err := m.setSigner(manifests.PKIDir+"/ca.crt", manifests.PKIDir+"/ca.key"); err != nil {
		return "", err
	}
	msg, err := m.restart(ctx, renewal.Etcd, renewal.APIServer, renewal.ControllerManager, renewal.Scheduler)
	if err != nil {
		return msg, err
	}
	kmsg, err := m.restartKubelet(ctx)
	if err != nil {
		return msg, err
	}
	msg += kmsg
	// The add-ons' pods restart on the new trust alone, once the controller-manager has
	// published it (it does within seconds of starting).
	rootCA := m.waitRootCA(ctx, 2*time.Minute)
	if _, err := m.restartAddons(ctx, id+"-new"); err != nil {
		return msg, fmt.Errorf("restart the add-ons' pods: %w", err)
	}
	msg += "; the add-ons' pods restart" + rootCA
	for _, p := range []string{WorkDir + "/new", WorkDir + "/old", SignerCert, SignerKey} {
		if err := os.RemoveAll(m.path(p)); err != nil {
			return msg, err
		}
	}
	return "only the new CAs are trusted on the master: " + msg, nil
}

// waitRootCA waits until kube-system's kube-root-ca.crt holds what pki/ca.crt holds, and
// says so if it did not in time.
func (m *Master) waitRootCA(ctx context.Context, timeout time.Duration) string {
	want, err := os.ReadFile(m.trustFile(pki.ClusterCA))
	if err != nil {
		return " (" + err.Error() + ")"
	}
	wantCerts, _ := pki.CertsPEM(want)
	var last string
	// Polling the controller-manager's publisher.
	err = wait.PollUntilContextTimeout(ctx, 2*time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		cm, err := m.Client.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, RootCAConfigMap, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		got, _ := pki.CertsPEM([]byte(cm.Data["ca.crt"]))
		last = fmt.Sprintf("it holds %s", describe(got))
		return sameCerts(got, wantCerts), nil
	})
	switch {
	case err == nil:
		return ""
	case ctx.Err() != nil:
		return " (" + ctx.Err().Error() + ")"
	}
	return fmt.Sprintf(" (kube-root-ca.crt was not yet the new CA after %v: %s; pods starting before it is may trust the old CA too)", timeout, last)
}

// report puts the stage and what happened on the Secret, when it changed.
func (m *Master) report(ctx context.Context, sec *corev1.Secret, stage Stage, msg string, err error) {
	if err != nil {
		msg = "failed, retrying on the next pass: " + err.Error()
		if m.Event != nil {
			m.Event(ctx, false, "CARotationFailed", fmt.Sprintf("stage %s: %v", stage, err))
		}
	}
	if sec.Annotations[StageAnnotation] == string(stage) && sec.Annotations[MessageAnnotation] == msg {
		return
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{
		StageAnnotation: string(stage), MessageAnnotation: msg}}})
	got, perr := m.Client.CoreV1().Secrets(Namespace).Patch(ctx, SecretName, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "kubeup-agent"})
	if perr != nil {
		m.logf("CA rotation: could not report stage %s on the secret: %v", stage, perr)
		return
	}
	sec.Annotations = got.Annotations
}
