package verify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"kubeup.dev/kubeup/internal/manifests"
	"kubeup.dev/kubeup/internal/versions"
)

// NamespacePrefix starts the name of the namespace each run creates its objects in (and
// deletes afterwards). Each run has its own, so a run never waits for an earlier run's
// namespace to finish terminating (which, on a master that has just rebooted, takes minutes).
const NamespacePrefix = "kubeup-verify-"

// phase3 checks the master: the API serves pods, the controller-manager reconciles a
// Deployment, the scheduler binds pods to a node, and both hold their leader leases.
func (k *Checker) phase3(ctx context.Context) []Result {
	c := k.Client
	var out []Result
	out = append(out, k.waiting(ctx, "3", "api-pods", "check kube-apiserver and etcd logs on the master", func(ctx context.Context) (string, error) {
		return apiPods(ctx, c, k.ns)
	}))
	out = append(out, k.waiting(ctx, "3", "controller-manager", "check kube-controller-manager's log and its lease", func(ctx context.Context) (string, error) {
		return deploymentReconciled(ctx, c, k.ns)
	}))
	out = append(out, k.waiting(ctx, "3", "scheduler", "check kube-scheduler's log, and that a node is registered and schedulable", func(ctx context.Context) (string, error) {
		return podsBound(ctx, c, k.ns)
	}))
	for _, comp := range []string{"kube-controller-manager", "kube-scheduler"} {
		out = append(out, k.waiting(ctx, "3", comp+"-lease", "the component is not running or cannot reach the API", func(ctx context.Context) (string, error) {
			return leaseHeld(ctx, c, comp)
		}))
	}
	out = append(out, k.waiting(ctx, "3", "anonymous-api", "the API server answered a request without credentials: it must run with the authentication config kubeup renders (--authentication-config), whose anonymous access is for the health endpoints only", func(ctx context.Context) (string, error) {
		return k.anonymousRefused(ctx)
	}))
	// The Deployment's pods are phase 3's alone; later phases count pods per node.
	c.AppsV1().Deployments(k.ns).Delete(ctx, deployName, metav1.DeleteOptions{})
	return out
}

// anonymousPathsRefused are requests a client without credentials must not get answered:
// objects, the release (/version, which RBAC alone would let anyone read), the bootstrap
// cluster-info, and a health sub-check, which the exact-path conditions leave closed.
var anonymousPathsRefused = []string{"/api/v1/nodes", "/api/v1/namespaces/kube-system/secrets", "/version",
	"/api/v1/namespaces/kube-public/configmaps/cluster-info", "/livez/etcd"}

// anonymousRefused checks that the API server refuses requests without credentials (401 or
// 403) but on its health endpoints (manifests.AnonymousPaths), which answer 200.
func (k *Checker) anonymousRefused(ctx context.Context) (string, error) {
	if k.REST == nil {
		return "", fmt.Errorf("the anonymous check needs a REST config to reach the API server")
	}
	hc, err := rest.HTTPClientFor(rest.AnonymousClientConfig(k.REST))
	if err != nil {
		return "", err
	}
	status := func(path string) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(k.REST.Host, "/")+path, nil)
		if err != nil {
			return 0, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	return poll(ctx, time.Second, func() (bool, string, error) {
		for _, path := range anonymousPathsRefused {
			code, err := status(path)
			if err != nil {
				return false, "anonymous GET " + path + ": " + err.Error(), nil
			}
			if code != http.StatusUnauthorized && code != http.StatusForbidden {
				return false, "", fmt.Errorf("anonymous GET %s: HTTP %d, want 401 or 403", path, code)
			}
		}
		for _, path := range manifests.AnonymousPaths {
			// 200 once the API server is healthy; until then it may say 500, so wait.
			if code, err := status(path); err != nil || code != http.StatusOK {
				return false, fmt.Sprintf("anonymous GET %s: HTTP %d %v", path, code, err), nil
			}
		}
		return true, fmt.Sprintf("without credentials: %s refused; %s answered", strings.Join(anonymousPathsRefused, " "),
			strings.Join(manifests.AnonymousPaths, " ")), nil
	})
}

// createNamespace creates this run's namespace, retrying while the API server does not answer
// (a master that has just rebooted) and while the caller is not allowed yet (admin.conf is a
// cluster admin only once the master's agent has applied its binding, moments after the API
// answers), and returns its name.
func createNamespace(ctx context.Context, c kubernetes.Interface) (string, error) {
	var name string
	_, err := poll(ctx, time.Second, func() (bool, string, error) {
		ns, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			// The host-network probes need the privileged Pod Security level.
			GenerateName: NamespacePrefix, Labels: manifests.PrivilegedNamespace(map[string]string{"kubeup.dev/verify": "true"})}}, metav1.CreateOptions{})
		switch {
		case err == nil:
			name = ns.Name
			return true, "", nil
		case apierrors.IsUnauthorized(err), apierrors.IsInvalid(err):
			return false, err.Error(), err
		default:
			return false, "create a namespace: " + err.Error(), nil
		}
	})
	return name, err
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

func apiPods(ctx context.Context, c kubernetes.Interface, ns string) (string, error) {
	pods := c.CoreV1().Pods(ns)
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "api-check", Labels: map[string]string{"kubeup-verify": "api"}}, Spec: testPod()}
	// A new namespace's default ServiceAccount comes from the controller-manager a moment
	// later, and until then pods are refused; a busy API server (a master that has just
	// rebooted, catching up with every client's re-list) may time out or shed a request, or
	// not answer at all. Those are retried until the check's deadline; any other refusal is the
	// answer. A create that timed out may have happened: the next one finds the pod.
	if _, err := poll(ctx, time.Second, func() (bool, string, error) {
		_, err := pods.Create(ctx, p, metav1.CreateOptions{})
		switch {
		case err == nil, apierrors.IsAlreadyExists(err):
			return true, "", nil
		case apierrors.IsForbidden(err) && strings.Contains(err.Error(), "serviceaccount"),
			transient(err):
			return false, "create pod: " + err.Error(), nil
		default:
			return false, "", fmt.Errorf("create pod: %w", err)
		}
	}); err != nil {
		return "", err
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

// transient says whether err is an API server that did not decide: a timeout, a shed or
// throttled request, an unavailable server, or no answer at all (no Status from the server).
func transient(err error) bool {
	var status apierrors.APIStatus
	return apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err) || !errors.As(err, &status)
}

const deployName = "controller-check"

func deploymentReconciled(ctx context.Context, c kubernetes.Interface, ns string) (string, error) {
	labels := map[string]string{"kubeup-verify": "deploy"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: deployName},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: testPod()},
		},
	}
	if _, err := c.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("create deployment: %w", err)
	}
	return poll(ctx, time.Second, func() (bool, string, error) {
		rs, err := c.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: "kubeup-verify=deploy"})
		if err != nil {
			return false, "list replicasets: " + err.Error(), nil
		}
		pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "kubeup-verify=deploy"})
		if err != nil {
			return false, "list pods: " + err.Error(), nil
		}
		seen := fmt.Sprintf("%d ReplicaSet(s), %d pod(s) for Deployment %s", len(rs.Items), len(pods.Items), deployName)
		return len(rs.Items) == 1 && len(pods.Items) == 2, seen, nil
	})
}

func podsBound(ctx context.Context, c kubernetes.Interface, ns string) (string, error) {
	return poll(ctx, time.Second, func() (bool, string, error) {
		pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "kubeup-verify=deploy"})
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
