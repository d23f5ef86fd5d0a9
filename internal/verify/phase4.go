package verify

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
				if !nodeReady(&n) {
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
	out = append(out, k.waiting(ctx, "4.2", "pod-to-pod", "a node cannot reach another node's pods: check flannel's VXLAN (UDP 8472) between the machines", func(ctx context.Context) (string, error) {
		return k.withProbes(ctx, func(p *probes) (string, error) {
			var urls []string
			for _, node := range sortedNodes(p.pods) {
				urls = append(urls, fmt.Sprintf("http://%s/", hostPort(p.pods[node].Status.PodIP, probePort)))
			}
			return k.fromEveryNode(ctx, p, urls, "pod(s)")
		})
	}))
	return out
}

// fromEveryNode fetches every URL from every node's host network, retrying until all answer
// (routes and rules appear a moment after pods do).
func (k *Checker) fromEveryNode(ctx context.Context, p *probes, urls []string, what string) (string, error) {
	return poll(ctx, 3*time.Second, func() (bool, string, error) {
		var failed []string
		for _, node := range sortedNodes(p.host) {
			out, err := execIn(ctx, k.Client, k.REST, p.host[node], append([]string{"/kubeup-probe", "get"}, urls...)...)
			if f := failures(out); len(f) > 0 {
				failed = append(failed, fmt.Sprintf("from %s: %s", node, strings.Join(f, "; ")))
			} else if err != nil {
				failed = append(failed, fmt.Sprintf("from %s: %v", node, err))
			}
		}
		if len(failed) > 0 {
			return false, strings.Join(failed, " | "), nil
		}
		return true, fmt.Sprintf("%d node(s) each reached %d %s", len(p.host), len(urls), what), nil
	})
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func hostPort(ip string, port int) string {
	if strings.Contains(ip, ":") {
		return fmt.Sprintf("[%s]:%d", ip, port)
	}
	return fmt.Sprintf("%s:%d", ip, port)
}
