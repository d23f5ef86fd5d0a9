package carotation

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kubeup.dev/kubeup/internal/pki"
)

// The Secret that carries a rotation from the operator to the master's agent. A Secret, not a
// new Ignition config: Ignition runs once, at first boot, and there is no SSH, so the API is the
// only way in to a running master; the agent already holds admin.conf, a kube-system Secret is
// readable only by cluster admins, and Secrets are encrypted at rest here. It holds CA keys
// only for the rotation: `finish` deletes it.
const (
	Namespace  = metav1.NamespaceSystem
	SecretName = "kubeup-ca-rotation"
	// IDKey is the rotation's id (pki.Rotation.ID), in the Secret's data.
	IDKey = "id"
	// StageAnnotation and MessageAnnotation are the agent's report of where the master is.
	StageAnnotation   = "kubeup.dev/ca-rotation-stage"
	MessageAnnotation = "kubeup.dev/ca-rotation-message"
	// FinishAnnotation is set to "requested" by `finish`: the operator's go-ahead to drop the
	// old CA, given once nothing depends on it.
	FinishAnnotation = "kubeup.dev/ca-rotation-finish"
)

// Stage is where the master is in a rotation; each is the work the agent does next.
type Stage string

// The stages, in order.
const (
	// TrustBoth: every trust file and kubeconfig gets old and new CA; every component restarts.
	TrustBoth Stage = "TrustBoth"
	// NodesTrust: the master waits until every node's agent has published that its machine
	// trusts the new CA too (nodes follow kube-root-ca.crt: carotation.Kubelet).
	NodesTrust Stage = "NodesTrust"
	// PodsTrust: the add-ons' Deployments and DaemonSets restart their pods, which then trust
	// both CAs (RestartAnnotation says why).
	PodsTrust Stage = "PodsTrust"
	// Reissue: every leaf certificate and kubeconfig is re-issued from the new CA.
	Reissue Stage = "Reissue"
	// SwitchSigner: the controller-manager signs kubelet certificates with the new CA.
	SwitchSigner Stage = "SwitchSigner"
	// ReadyToFinish: the master is on the new CA; waiting for `finish`.
	ReadyToFinish Stage = "ReadyToFinish"
	// Finishing: the old CA leaves every trust file; every component restarts.
	Finishing Stage = "Finishing"
	Finished  Stage = "Finished"
)

// Stages lists them in order.
var Stages = []Stage{TrustBoth, NodesTrust, PodsTrust, Reissue, SwitchSigner, ReadyToFinish, Finishing, Finished}

// dataKey names a CA's file in the Secret (etcd/ca → etcd-ca.crt).
func dataKey(ca pki.CA, ext string) string {
	return strings.ReplaceAll(string(ca), "/", "-") + ext
}

// NewSecret is the Secret that hands rotation id and its new CAs to the master's agent.
func NewSecret(id string, cas []pki.NewCA) *corev1.Secret {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: SecretName, Namespace: Namespace,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "kubeup"}},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{IDKey: []byte(id)},
	}
	for _, c := range cas {
		s.Data[dataKey(c.CA, ".crt")] = c.Cert
		s.Data[dataKey(c.CA, ".key")] = c.Key
	}
	return s
}

// idPattern is the form of a rotation's id: pki.Rotation.ID, its start time.
var idPattern = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z$`)

// clockSkew is how far in the future a new CA may start to be valid: the operator's clock,
// which made it, against the master's.
const clockSkew = 5 * time.Minute

// minValidity is how long a new CA must stay valid: a rotation onto a CA about to expire would
// need another one at once, and one onto an expired CA would cut every client off.
const minValidity = 24 * time.Hour

// secretError is a Secret that is not what `kubeup certs rotate-ca start` writes: what is wrong
// with which data key, and the way out.
func secretError(key, format string, args ...any) error {
	return fmt.Errorf("secret %s/%s, data %q: %s (not what `kubeup certs rotate-ca start` writes: delete the secret and run start again with the bundle)",
		Namespace, SecretName, key, fmt.Sprintf(format, args...))
}

// checkID refuses a rotation id that is not one `kubeup certs rotate-ca start` makes.
func checkID(id string) error {
	if !idPattern.MatchString(id) {
		return secretError(IDKey, "%q is not a rotation id (a UTC time, like 20261206T235500Z)", clip(id))
	}
	return nil
}

// CAsOf reads the new CAs out of the Secret and checks each: its certificate one CA certificate
// valid from now (give or take clockSkew) for at least minValidity, its key that certificate's,
// and every CA's key its own. A Secret with anything else in it is refused whole.
func CAsOf(s *corev1.Secret, now time.Time) ([]pki.NewCA, error) {
	if err := checkID(string(s.Data[IDKey])); err != nil {
		return nil, err
	}
	known := map[string]bool{IDKey: true}
	var out []pki.NewCA
	keys := map[string]pki.CA{} // public key → the CA that has it
	for _, ca := range pki.CAs {
		crt, key := dataKey(ca, ".crt"), dataKey(ca, ".key")
		known[crt], known[key] = true, true
		c := pki.NewCA{CA: ca, Cert: s.Data[crt], Key: s.Data[key]}
		cert, err := checkPair(c.Cert, c.Key, now)
		if err != nil {
			return nil, secretError(err.key(crt, key), "%v", err)
		}
		spki := string(cert.RawSubjectPublicKeyInfo)
		if other, ok := keys[spki]; ok {
			return nil, secretError(crt, "the same key as %s's new CA: each CA needs a key of its own", other)
		}
		keys[spki] = ca
		out = append(out, c)
	}
	for k := range s.Data {
		if !known[k] {
			return nil, secretError(k, "unknown key")
		}
	}
	return out, nil
}

// clip shortens what a message quotes from untrusted input.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// Handover creates the Secret for a rotation, or finds it already there for the same rotation
// (a re-run: nothing changes). A Secret of another rotation is refused: two rotations at once
// would leave the master trusting CAs nobody holds.
func Handover(ctx context.Context, c kubernetes.Interface, id string, cas []pki.NewCA) (created bool, err error) {
	want := NewSecret(id, cas)
	_, err = c.CoreV1().Secrets(Namespace).Create(ctx, want, metav1.CreateOptions{FieldManager: "ignition-gen"})
	if err == nil {
		return true, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return false, fmt.Errorf("create secret %s/%s: %w", Namespace, SecretName, err)
	}
	have, err := c.CoreV1().Secrets(Namespace).Get(ctx, SecretName, metav1.GetOptions{})
	if err != nil {
		return false, err
	}
	if got := string(have.Data[IDKey]); got != id {
		return false, fmt.Errorf("the cluster already has CA rotation %s in progress (secret %s/%s, stage %s), not this bundle's %s: finish that one with the bundle that started it, or, if it was abandoned, see docs/ca-rotation.md (\"Abandoned rotation\")",
			got, Namespace, SecretName, have.Annotations[StageAnnotation], id)
	}
	for k, v := range want.Data {
		if string(have.Data[k]) != string(v) {
			return false, fmt.Errorf("secret %s/%s holds rotation %s with other CA material than this bundle (%s differs): it was started from another copy of the bundle", Namespace, SecretName, id, k)
		}
	}
	return false, nil
}
