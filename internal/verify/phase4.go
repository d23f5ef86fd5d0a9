package verify

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	nodeutil "k8s.io/component-helpers/node/util"

	"kubeup.dev/kubeup/internal/machine"
)

// phase41 checks that every expected node registered (NotReady is fine until the network).
func (k *Checker) phase41(ctx context.Context) []Result {
	return []Result{k.waiting(ctx, "4.1", "nodes-registered", "a missing node's kubelet did not TLS-bootstrap: check its serial log and the CSRs (kubectl get csr)", func(ctx context.Context) (string, error) {
		return poll(ctx, 2*time.Second, func() (bool, string, error) {
			list, err := k.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, "list nodes: " + err.Error(), nil
			}
			var names []string
			for _, n := range list.Items {
				names = append(names, n.Name)
			}
			sort.Strings(names)
			var missing []string
			for _, want := range k.Nodes {
				if !slices.Contains(names, want) {
					missing = append(missing, want)
				}
			}
			seen := fmt.Sprintf("registered: %v", names)
			if len(missing) > 0 {
				seen += fmt.Sprintf("; missing: %v", missing)
			}
			return len(names) > 0 && len(missing) == 0, seen, nil
		})
	})}
}

// phase42 checks the pod network: every node Ready, a probe pod on every node with an address
// from its node's pod CIDR, and every probe pod reachable from every node.
func (k *Checker) phase42(ctx context.Context) []Result {
	var out []Result
	out = append(out, k.waiting(ctx, "4.2", "nodes-ready", "a node stays NotReady until its CNI config is written: check the flannel pods (kubectl -n kube-flannel get pods -o wide)", func(ctx context.Context) (string, error) {
		return poll(ctx, 2*time.Second, func() (bool, string, error) {
			list, err := k.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, "list nodes: " + err.Error(), nil
			}
			var notReady []string
			for _, n := range list.Items {
				if !NodeReady(&n) {
					notReady = append(notReady, n.Name)
				}
			}
			return len(notReady) == 0, fmt.Sprintf("%d nodes, not Ready: %v", len(list.Items), notReady), nil
		})
	}))
	out = append(out, k.waiting(ctx, "4.2", "pod-addresses", "pods without addresses: check the flannel pods and the CNI config in /etc/cni/net.d", func(ctx context.Context) (string, error) {
		return k.withProbes(ctx, func(p *probes) (string, error) {
			var ips []string
			for _, node := range sortedNodes(p.pods) {
				n, err := k.Client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
				if err != nil {
					return "", err
				}
				cidr, err := netip.ParsePrefix(n.Spec.PodCIDR)
				ip, err2 := netip.ParseAddr(p.pods[node].Status.PodIP)
				if err != nil || err2 != nil || !cidr.Contains(ip) {
					return "", fmt.Errorf("pod %s on %s has address %q outside the node's pod CIDR %q", p.pods[node].Name, node, p.pods[node].Status.PodIP, n.Spec.PodCIDR)
				}
				ips = append(ips, node+"="+ip.String())
			}
			return "a pod on every node, each with an address from its node's pod CIDR: " + strings.Join(ips, " "), nil
		})
	}))
	out = append(out, k.waiting(ctx, "4.2", "pod-to-pod", "a pod cannot reach another node's pods: check flannel's VXLAN (UDP 8472) between the machines and the flannel pods' logs", func(ctx context.Context) (string, error) {
		return k.withProbes(ctx, func(p *probes) (string, error) {
			return k.fromEvery(ctx, p.pods, "a pod on", "get", probeURLs(p), "pod(s)")
		})
	}))
	out = append(out, k.waiting(ctx, "4.2", "node-to-pod", "a node cannot reach another node's pods: check flannel's VXLAN (UDP 8472) between the machines", func(ctx context.Context) (string, error) {
		return k.withProbes(ctx, func(p *probes) (string, error) {
			return k.fromEvery(ctx, p.host, "node", "get", probeURLs(p), "pod(s)")
		})
	}))
	out = append(out, k.waiting(ctx, "4.2", "node-anonymous", "a kubelet or a kubeup agent answered a request without credentials: the kubelet's config must say authentication.anonymous.enabled: false and authorization.mode: Webhook; the agent serves its metrics to clients the API server allows only", func(ctx context.Context) (string, error) {
		return k.withProbes(ctx, func(p *probes) (string, error) {
			return k.fromEvery(ctx, p.host, "node", "refused", anonymousURLs(p), "kubelet and agent port(s), each refusing a request without credentials")
		})
	}))
	return out
}

// kubeletPort is the kubelet's authenticated HTTPS port.
const kubeletPort = 10250

// anonymousURLs are, on every node, the kubelet's API listing its pods and the agent's
// metrics: requests no client without credentials may have answered.
func anonymousURLs(p *probes) []string {
	var urls []string
	for _, node := range sortedNodes(p.host) {
		ip := p.host[node].Status.HostIP
		urls = append(urls, fmt.Sprintf("https://%s/pods", hostPort(ip, kubeletPort)),
			fmt.Sprintf("https://%s/metrics", hostPort(ip, machine.AgentMetricsPort)))
	}
	return urls
}

// probeURLs are the probe pods' own addresses, one on every node.
func probeURLs(p *probes) []string {
	var urls []string
	for _, node := range sortedNodes(p.pods) {
		urls = append(urls, fmt.Sprintf("http://%s/", hostPort(p.pods[node].Status.PodIP, probePort)))
	}
	return urls
}

// fromEvery runs the probe's verb (get, refused) on every URL from the probe in from on every
// node, retrying until all pass (routes and rules appear a moment after pods do). what names
// the targets in the evidence.
func (k *Checker) fromEvery(ctx context.Context, from map[string]*corev1.Pod, where, verb string, urls []string, what string) (string, error) {
	return poll(ctx, 3*time.Second, func() (bool, string, error) {
		var failed []string
		for node, err := range k.onEveryNode(ctx, from, append([]string{"/kubeup-probe", verb}, urls...)...) {
			if err != nil {
				failed = append(failed, fmt.Sprintf("from %s %s: %v", where, node, err))
			}
		}
		if len(failed) > 0 {
			sort.Strings(failed)
			return false, strings.Join(failed, " | "), nil
		}
		return true, fmt.Sprintf("from %s each of %d node(s), reached %d %s", where, len(from), len(urls), what), nil
	})
}

// onEveryNode runs cmd in every node's pod of pods at once (one exec through the API server
// and the kubelet takes seconds on an emulated machine; one after another they took minutes)
// and returns each node's failure: the probe's FAIL lines, or the exec's error.
func (k *Checker) onEveryNode(ctx context.Context, pods map[string]*corev1.Pod, cmd ...string) map[string]error {
	var mu sync.Mutex
	var wg sync.WaitGroup
	out := map[string]error{}
	for node, pod := range pods {
		wg.Go(func() {
			stdout, err := execIn(ctx, k.Client, k.REST, pod, cmd...)
			if f := failures(stdout); len(f) > 0 {
				err = errors.New(strings.Join(f, "; "))
			}
			mu.Lock()
			out[node] = err
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// NodeReady says whether the Node's Ready condition is True.
func NodeReady(n *corev1.Node) bool {
	_, c := nodeutil.GetNodeCondition(&n.Status, corev1.NodeReady)
	return c != nil && c.Status == corev1.ConditionTrue
}

func hostPort(ip string, port int) string {
	if strings.Contains(ip, ":") {
		return fmt.Sprintf("[%s]:%d", ip, port)
	}
	return fmt.Sprintf("%s:%d", ip, port)
}
