package carotation

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"kubeup.dev/kubeup/internal/manifests"
)

// RestartAnnotation, on the pod template of the add-ons' Deployments and DaemonSets, is the
// restart a rotation asked for (as `kubectl rollout restart` does with its own annotation).
//
// Why the add-ons restart: their pods trust the API server through the service-account
// ca.crt (kube-root-ca.crt, projected), and metrics-server verifies kubelets with the node's
// pki/ca.crt. Clients built with client-go before 1.36 (the pinned CoreDNS, flannel and
// metrics-server) read that file once, when they start, so a pod started before TrustBoth would
// refuse the API server's new certificate after Reissue, and after Finishing would still trust
// the old CA. Restarted once the new trust is everywhere, they read it.
const RestartAnnotation = "kubeup.dev/ca-rotation-restart"

// restartAddons makes every Deployment and DaemonSet in the add-ons' namespaces roll its pods
// once for value (a pod template already annotated with it is left alone), and lists those
// still running a pod from before. A pod not yet started (no node for it) counts as restarted:
// it will start on the trust there is now.
func (m *Master) restartAddons(ctx context.Context, value string) (pending []string, err error) {
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{RestartAnnotation: value}}}}})
	apps := m.Client.AppsV1()
	opts := metav1.PatchOptions{FieldManager: "kubeup-agent"}
	for _, ns := range manifests.AddonNamespaces {
		ds, err := apps.DaemonSets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		for _, d := range ds.Items {
			if d.Spec.Template.Annotations[RestartAnnotation] != value {
				if _, err := apps.DaemonSets(ns).Patch(ctx, d.Name, types.StrategicMergePatchType, patch, opts); err != nil {
					return nil, err
				}
				pending = append(pending, fmt.Sprintf("daemonset %s/%s (restart asked)", ns, d.Name))
				continue
			}
			st := d.Status
			if st.ObservedGeneration < d.Generation || st.UpdatedNumberScheduled < st.CurrentNumberScheduled {
				pending = append(pending, fmt.Sprintf("daemonset %s/%s (%d of %d pods restarted)", ns, d.Name, st.UpdatedNumberScheduled, st.CurrentNumberScheduled))
			}
		}
		deps, err := apps.Deployments(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		for _, d := range deps.Items {
			if d.Spec.Template.Annotations[RestartAnnotation] != value {
				if _, err := apps.Deployments(ns).Patch(ctx, d.Name, types.StrategicMergePatchType, patch, opts); err != nil {
					return nil, err
				}
				pending = append(pending, fmt.Sprintf("deployment %s/%s (restart asked)", ns, d.Name))
				continue
			}
			st := d.Status
			if st.ObservedGeneration < d.Generation || st.UpdatedReplicas < st.Replicas {
				pending = append(pending, fmt.Sprintf("deployment %s/%s (%d of %d pods restarted)", ns, d.Name, st.UpdatedReplicas, st.Replicas))
			}
		}
	}
	slices.Sort(pending)
	return pending, nil
}
