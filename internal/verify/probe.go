package verify

import (
	"context"
	"fmt"
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"kubeup.dev/kubeup/internal/versions"
)

// The network checks run kubeup-probe (from the bundle, never pulled) in two DaemonSets: one
// on the pod network, serving HTTP behind a ClusterIP Service, and one in every node's host
// network, from which the checks fetch.
const (
	probePods     = "probe"
	probeHost     = "probe-host"
	probeService  = "probe"
	probePort     = 8080
	probeHostPort = 18088
)

func probeDaemonSet(ns, name string, hostNetwork bool, port int) *appsv1.DaemonSet {
	labels := map[string]string{"kubeup-verify": name}
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					HostNetwork: hostNetwork,
					// The host pods resolve through the cluster's DNS too.
					DNSPolicy: map[bool]corev1.DNSPolicy{true: corev1.DNSClusterFirstWithHostNet, false: corev1.DNSClusterFirst}[hostNetwork],
					Containers: []corev1.Container{{
						Name: "probe", Image: versions.ImagesFor(versions.Kubernetes).Probe, ImagePullPolicy: corev1.PullIfNotPresent,
						Command: []string{"/kubeup-probe", "serve", fmt.Sprintf("--port=%d", port)},
						Ports:   []corev1.ContainerPort{{ContainerPort: int32(port)}},
					}},
					Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					TerminationGracePeriodSeconds: ptr.To[int64](0),
				},
			},
		},
	}
}

// probes is the running set of probe pods, one of each kind per node.
type probes struct {
	pods, host map[string]*corev1.Pod // by node name
	serviceIP  string
}

// startProbes creates the DaemonSets and the Service and waits until a probe of each kind
// runs on every node.
func startProbes(ctx context.Context, c kubernetes.Interface, ns string) (*probes, string, error) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: probeService, Namespace: ns},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"kubeup-verify": probePods},
			Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt(probePort)}},
		},
	}
	// Created inside the poll: a busy API server that drops one request (EOF, timeout) must
	// not fail the phase; an object that exists already is fine.
	create := func() string {
		for _, ds := range []*appsv1.DaemonSet{probeDaemonSet(ns, probePods, false, probePort), probeDaemonSet(ns, probeHost, true, probeHostPort)} {
			if _, err := c.AppsV1().DaemonSets(ns).Create(ctx, ds, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Sprintf("create DaemonSet %s: %v", ds.Name, err)
			}
		}
		if _, err := c.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Sprintf("create Service %s: %v", svc.Name, err)
		}
		return ""
	}
	created := false
	var p *probes
	seen, err := poll(ctx, 2*time.Second, func() (bool, string, error) {
		if !created {
			if failed := create(); failed != "" {
				return false, failed, nil
			}
			created = true
		}
		nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, "list nodes: " + err.Error(), nil
		}
		p = &probes{pods: map[string]*corev1.Pod{}, host: map[string]*corev1.Pod{}}
		waiting := map[string]string{} // kind on node: why its pod does not run yet
		for kind, into := range map[string]map[string]*corev1.Pod{probePods: p.pods, probeHost: p.host} {
			list, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "kubeup-verify=" + kind})
			if err != nil {
				return false, "list pods: " + err.Error(), nil
			}
			for i := range list.Items {
				pod := &list.Items[i]
				if pod.Status.Phase == corev1.PodRunning && pod.Status.PodIP != "" && pod.DeletionTimestamp == nil {
					into[pod.Spec.NodeName] = pod
				} else {
					waiting[kind+" on "+pod.Spec.NodeName] = pod.Name + " " + podState(pod)
				}
			}
		}
		var missing []string
		for _, n := range nodes.Items {
			for kind, pods := range map[string]map[string]*corev1.Pod{probePods: p.pods, probeHost: p.host} {
				if pods[n.Name] != nil {
					continue
				}
				what := kind + " on " + n.Name
				if why, ok := waiting[what]; ok {
					what += " (" + why + ")"
				} else {
					what += " (no pod yet)"
				}
				missing = append(missing, what)
			}
		}
		sort.Strings(missing)
		s, err := c.CoreV1().Services(ns).Get(ctx, probeService, metav1.GetOptions{})
		if err == nil {
			p.serviceIP = s.Spec.ClusterIP
		}
		return len(nodes.Items) > 0 && len(missing) == 0 && p.serviceIP != "",
			fmt.Sprintf("%d nodes; probes not running yet: %v", len(nodes.Items), missing), nil
	})
	if err != nil {
		return nil, seen, err
	}
	return p, fmt.Sprintf("probes run on %d nodes", len(p.pods)), nil
}

// podState says why a pod does not run yet: its phase, and the reason a container waits or
// the last event-worthy condition (ContainerCreating, FailedCreatePodSandBox shows up there).
func podState(pod *corev1.Pod) string {
	s := string(pod.Status.Phase)
	if pod.DeletionTimestamp != nil {
		s += ", being deleted"
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil {
			s += ", " + cs.Name + " waiting: " + w.Reason
			if w.Message != "" {
				s += ": " + w.Message
			}
		}
	}
	for _, c := range pod.Status.Conditions {
		if c.Status != corev1.ConditionTrue && c.Message != "" {
			s += ", " + string(c.Type) + ": " + c.Message
		}
	}
	return s
}

func sortedNodes(m map[string]*corev1.Pod) []string {
	var names []string
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
