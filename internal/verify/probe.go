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
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
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
//
// The wait reads informers' caches, not the API: polling it every 2 s (a list of the Nodes, two
// of the pods and a get of the Service) doubled the request rate of an API server that phase
// 4.2 finds busy already, on the master whose CPU the nodes starting these very pods need. The
// watches cost the API server nothing while nothing changes, and a dropped one is re-listed by
// the informer.
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
	cluster := informers.NewSharedInformerFactory(c, 0)
	inNS := informers.NewSharedInformerFactoryWithOptions(c, 0, informers.WithNamespace(ns))
	nodeInformer, podInformer, svcInformer := cluster.Core().V1().Nodes(), inNS.Core().V1().Pods(), inNS.Core().V1().Services()
	synced := []cache.InformerSynced{nodeInformer.Informer().HasSynced, podInformer.Informer().HasSynced, svcInformer.Informer().HasSynced}
	defer cluster.Shutdown() // after the informers' context ends, below
	defer inNS.Shutdown()
	informerCtx, stop := context.WithCancel(ctx)
	defer stop()
	cluster.Start(informerCtx.Done())
	inNS.Start(informerCtx.Done())

	created := false
	var p *probes
	seen, err := poll(ctx, 2*time.Second, func() (bool, string, error) {
		if !created {
			if failed := create(); failed != "" {
				return false, failed, nil
			}
			created = true
		}
		for _, s := range synced {
			if !s() {
				return false, "listing the Nodes and the probe pods (the API server has not answered yet)", nil
			}
		}
		nodes, err := nodeInformer.Lister().List(labels.Everything())
		if err != nil {
			return false, "list nodes: " + err.Error(), nil
		}
		p = &probes{pods: map[string]*corev1.Pod{}, host: map[string]*corev1.Pod{}}
		waiting := map[string]string{} // kind on node: why its pod does not run yet
		for kind, into := range map[string]map[string]*corev1.Pod{probePods: p.pods, probeHost: p.host} {
			list, err := podInformer.Lister().List(labels.SelectorFromSet(labels.Set{"kubeup-verify": kind}))
			if err != nil {
				return false, "list pods: " + err.Error(), nil
			}
			for _, pod := range list {
				if pod.Status.Phase == corev1.PodRunning && pod.Status.PodIP != "" && pod.DeletionTimestamp == nil {
					into[pod.Spec.NodeName] = pod.DeepCopy() // the cache's objects are shared
				} else {
					waiting[kind+" on "+pod.Spec.NodeName] = pod.Name + " " + podState(pod)
				}
			}
		}
		var missing []string
		for _, n := range nodes {
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
		if s, err := svcInformer.Lister().Services(ns).Get(probeService); err == nil {
			p.serviceIP = s.Spec.ClusterIP
		}
		return len(nodes) > 0 && len(missing) == 0 && p.serviceIP != "",
			fmt.Sprintf("%d nodes; probes not running yet: %v", len(nodes), missing), nil
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
