package carotation

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"kubeup.dev/kubeup/internal/agent"
	"kubeup.dev/kubeup/internal/pki"
)

// Status is the cluster's side of a rotation, as the master's agent reported it.
type Status struct {
	ID, Message string
	Stage       Stage
	Finish      bool // finish requested
}

// GetStatus reads the Secret; nil when there is none.
func GetStatus(ctx context.Context, c kubernetes.Interface) (*Status, error) {
	s, err := c.CoreV1().Secrets(Namespace).Get(ctx, SecretName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &Status{ID: string(s.Data[IDKey]), Stage: Stage(s.Annotations[StageAnnotation]),
		Message: s.Annotations[MessageAnnotation], Finish: s.Annotations[FinishAnnotation] == "requested"}, nil
}

// Blockers lists what still depends on the old CAs, so they cannot be dropped yet: a master
// not yet at ReadyToFinish, and every certificate a machine's agent publishes on its Node
// (kubelet client and serving certificates everywhere, every leaf on the master) that the new
// CAs did not issue. A Node whose agent publishes nothing cannot be vouched for and is listed
// too. Empty means finishing is safe.
func Blockers(ctx context.Context, c kubernetes.Interface, news []pki.NewCA) ([]string, error) {
	st, err := GetStatus(ctx, c)
	if err != nil {
		return nil, err
	}
	var out []string
	switch {
	case st == nil:
		out = append(out, fmt.Sprintf("no secret %s/%s: the rotation was not handed to the master (run start)", Namespace, SecretName))
	case slices.Index(Stages, st.Stage) < slices.Index(Stages, ReadyToFinish):
		out = append(out, fmt.Sprintf("the master is at stage %q, not yet %s: %s", st.Stage, ReadyToFinish, st.Message))
	}
	issuers := map[string]bool{}
	for _, n := range news {
		cert, err := x509ParsePEM(n.Cert)
		if err != nil {
			return nil, err
		}
		issuers[hex.EncodeToString(cert.SubjectKeyId)] = true
	}
	nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	for _, n := range nodes.Items {
		raw, ok := n.Annotations[agent.CertificatesAnnotation]
		if !ok {
			out = append(out, fmt.Sprintf("node %s: its agent publishes no certificate list (%s), so nothing shows its kubelet certificates are from the new CA", n.Name, agent.CertificatesAnnotation))
			continue
		}
		var list []agent.Expiry
		if err := json.Unmarshal([]byte(raw), &list); err != nil {
			return nil, fmt.Errorf("node %s: annotation %s: %w", n.Name, agent.CertificatesAnnotation, err)
		}
		for _, e := range list {
			if !issuers[e.Issuer] {
				out = append(out, fmt.Sprintf("node %s: %s is still issued by the old CA (issuer key id %q): %s", n.Name, e.Name, e.Issuer, fixFor(e.Name)))
			}
		}
	}
	return out, nil
}

func fixFor(name string) string {
	switch name {
	case "kubelet-client", "kubelet-serving":
		return "the machine's agent requests one from the new CA once it signs (its CARotationKubelet* events say how that went); see docs/ca-rotation.md, \"Nodes\""
	}
	return "the master's agent re-issues it in stage " + string(Reissue) + "; see its CARotationFailed events"
}

func x509ParsePEM(data []byte) (*x509.Certificate, error) {
	_, c, err := firstCert(data)
	return c, err
}

// RequestFinish gives the master's agent the go-ahead to drop the old CAs.
func RequestFinish(ctx context.Context, c kubernetes.Interface) error {
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{FinishAnnotation: "requested"}}})
	_, err := c.CoreV1().Secrets(Namespace).Patch(ctx, SecretName, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "ignition-gen"})
	return err
}

// WaitFor polls the Secret until the master reports stage (or a later one), telling progress
// about every change, and fails with the last report after timeout. A request that fails is
// retried: the API server restarts during a stage.
func WaitFor(ctx context.Context, c kubernetes.Interface, stage Stage, timeout time.Duration, progress func(Status)) error {
	var last Status
	var lastErr error
	// Polling the agent's report every 2 s.
	err := wait.PollUntilContextTimeout(ctx, 2*time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		st, err := GetStatus(ctx, c)
		switch {
		case err != nil:
			lastErr = err
		case st == nil:
			return false, fmt.Errorf("secret %s/%s is gone", Namespace, SecretName)
		default:
			lastErr = nil
			if *st != last {
				last = *st
				progress(last)
			}
			return slices.Index(Stages, st.Stage) >= slices.Index(Stages, stage), nil
		}
		return false, nil
	})
	if wait.Interrupted(err) { // the timeout, or ctx ended
		return fmt.Errorf("the master did not reach stage %s within %v: last report: stage %q: %s (last error: %v)", stage, timeout, last.Stage, last.Message, lastErr)
	}
	return err
}

// Delete removes the Secret (it holds CA keys) once the rotation is over.
func Delete(ctx context.Context, c kubernetes.Interface) error {
	err := c.CoreV1().Secrets(Namespace).Delete(ctx, SecretName, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
