package verify

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"kubeup.dev/kubeup/internal/versions"
)

// Namespace is where checks create their objects.
const Namespace = "kubeup-verify"

// phase3 checks the master: the API serves pods, the controller-manager reconciles a
// Deployment, the scheduler binds pods to a node, and both hold their leader leases.
func (k *Checker) phase3(ctx context.Context) []Result {
	c := k.Client
	var out []Result
	out = append(out, check(ctx, "3", "api-pods", "check kube-apiserver and etcd logs on the master", func(ctx context.Context) (string, error) {
		return apiPods(ctx, c)
	}))
	out = append(out, k.waiting(ctx, "3", "controller-manager", "check kube-controller-manager's log and its lease", func(ctx context.Context) (string, error) {
		return deploymentReconciled(ctx, c)
	}))
	out = append(out, k.waiting(ctx, "3", "scheduler", "check kube-scheduler's log, and that a node is registered and schedulable", func(ctx context.Context) (string, error) {
		return podsBound(ctx, c)
	}))
	for _, comp := range []string{"kube-controller-manager", "kube-scheduler"} {
		out = append(out, k.waiting(ctx, "3", comp+"-lease", "the component is not running or cannot reach the API", func(ctx context.Context) (string, error) {
			return leaseHeld(ctx, c, comp)
		}))
	}
	// The Deployment's pods are phase 3's alone; later phases count pods per node.
	c.AppsV1().Deployments(Namespace).Delete(ctx, deployName, metav1.DeleteOptions{})
	return out
}

// ensureNamespace creates the checks' namespace, waiting out a previous run's deletion.
func ensureNamespace(ctx context.Context, c kubernetes.Interface) error {
	_, err := poll(ctx, time.Second, func() (bool, string, error) {
		_, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}, metav1.CreateOptions{})
		switch {
		case err == nil:
			return true, "", nil
		case apierrors.IsAlreadyExists(err):
			ns, err := c.CoreV1().Namespaces().Get(ctx, Namespace, metav1.GetOptions{})
			if err != nil {
				return false, err.Error(), nil
			}
			return ns.DeletionTimestamp == nil, "namespace " + Namespace + " is still being deleted", nil
		default:
			return false, err.Error(), err
		}
	})
	return err
}

// testPod is a pod that runs on any node, tolerating the taints of a node whose network is not
// up yet (phase 3 comes before the CNI).
func testPod() corev1.PodSpec {
	return corev1.PodSpec{
		Containers:                    []corev1.Container{{Name: "pause", Image: versions.ImagesFor(versions.Kubernetes).Pause, ImagePullPolicy: corev1.PullIfNotPresent}},
		Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
		TerminationGracePeriodSeconds: ptr.To[int64](0),
	}
}

func apiPods(ctx context.Context, c kubernetes.Interface) (string, error) {
	pods := c.CoreV1().Pods(Namespace)
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "api-check", Labels: map[string]string{"kubeup-verify": "api"}}, Spec: testPod()}
	if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("create pod: %w", err)
	}
	list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: "kubeup-verify=api"})
	if err != nil {
		return "", fmt.Errorf("list pods: %w", err)
	}
	if len(list.Items) != 1 {
		return "", fmt.Errorf("list returned %d pods, want 1", len(list.Items))
	}
	if err := pods.Delete(ctx, "api-check", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		return "", fmt.Errorf("delete pod: %w", err)
	}
	return "created, listed and deleted a pod", nil
}

const deployName = "controller-check"

func deploymentReconciled(ctx context.Context, c kubernetes.Interface) (string, error) {
	labels := map[string]string{"kubeup-verify": "deploy"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: deployName},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: testPod()},
		},
	}
	if _, err := c.AppsV1().Deployments(Namespace).Create(ctx, d, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("create deployment: %w", err)
	}
	return poll(ctx, time.Second, func() (bool, string, error) {
		rs, err := c.AppsV1().ReplicaSets(Namespace).List(ctx, metav1.ListOptions{LabelSelector: "kubeup-verify=deploy"})
		if err != nil {
			return false, "list replicasets: " + err.Error(), nil
		}
		pods, err := c.CoreV1().Pods(Namespace).List(ctx, metav1.ListOptions{LabelSelector: "kubeup-verify=deploy"})
		if err != nil {
			return false, "list pods: " + err.Error(), nil
		}
		seen := fmt.Sprintf("%d ReplicaSet(s), %d pod(s) for Deployment %s", len(rs.Items), len(pods.Items), deployName)
		return len(rs.Items) == 1 && len(pods.Items) == 2, seen, nil
	})
}

func podsBound(ctx context.Context, c kubernetes.Interface) (string, error) {
	return poll(ctx, time.Second, func() (bool, string, error) {
		pods, err := c.CoreV1().Pods(Namespace).List(ctx, metav1.ListOptions{LabelSelector: "kubeup-verify=deploy"})
		if err != nil {
			return false, "list pods: " + err.Error(), nil
		}
		bound := 0
		var nodes []string
		for _, p := range pods.Items {
			if p.Spec.NodeName != "" {
				bound++
				nodes = append(nodes, p.Spec.NodeName)
			}
		}
		seen := fmt.Sprintf("%d of %d pods bound (nodes %v)", bound, len(pods.Items), nodes)
		return len(pods.Items) > 0 && bound == len(pods.Items), seen, nil
	})
}

func leaseHeld(ctx context.Context, c kubernetes.Interface, name string) (string, error) {
	return poll(ctx, time.Second, func() (bool, string, error) {
		l, err := c.CoordinationV1().Leases("kube-system").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, "lease kube-system/" + name + ": " + err.Error(), nil
		}
		holder := ptr.Deref(l.Spec.HolderIdentity, "")
		if holder == "" || l.Spec.RenewTime == nil {
			return false, "lease kube-system/" + name + " has no holder", nil
		}
		age := time.Since(l.Spec.RenewTime.Time).Round(time.Second)
		dur := time.Duration(ptr.Deref(l.Spec.LeaseDurationSeconds, 15)) * time.Second
		seen := fmt.Sprintf("held by %s, renewed %v ago", holder, age)
		return age <= dur, seen, nil
	})
}
