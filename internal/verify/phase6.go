package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// phase6 checks the add-ons: Service names resolve in a pod on every node (CoreDNS), and the
// metrics API has figures for every node (metrics-server, scraping kubelets over TLS).
func (k *Checker) phase6(ctx context.Context) []Result {
	var out []Result
	out = append(out, k.waiting(ctx, "6", "dns", "check the CoreDNS pods (kubectl -n kube-system get pods -l k8s-app=kube-dns) and the kube-dns Service", func(ctx context.Context) (string, error) {
		return k.withProbes(ctx, func(p *probes) (string, error) {
			names := []string{"kubernetes.default", probeService + "." + k.ns}
			return poll(ctx, 3*time.Second, func() (bool, string, error) {
				var failed, ok []string
				for node, err := range k.onEveryNode(ctx, p.pods, append([]string{"/kubeup-probe", "lookup"}, names...)...) {
					if err != nil {
						failed = append(failed, fmt.Sprintf("in a pod on %s: %v", node, err))
					} else {
						ok = append(ok, node)
					}
				}
				sort.Strings(failed)
				sort.Strings(ok)
				if len(failed) > 0 {
					return false, strings.Join(failed, " | "), nil
				}
				return true, fmt.Sprintf("%v resolve in a pod on each of %v", names, ok), nil
			})
		})
	}))
	out = append(out, k.waiting(ctx, "6", "metrics", "check the metrics-server pod's log, its APIService (kubectl get apiservice v1beta1.metrics.k8s.io) and the kubelets' serving certificates (kubectl get csr)", func(ctx context.Context) (string, error) {
		return poll(ctx, 3*time.Second, func() (bool, string, error) {
			nodes, err := k.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, "list nodes: " + err.Error(), nil
			}
			raw, err := k.Client.CoreV1().RESTClient().Get().AbsPath("/apis/metrics.k8s.io/v1beta1/nodes").DoRaw(ctx)
			if err != nil {
				return false, "metrics.k8s.io: " + err.Error(), nil
			}
			var list struct {
				Items []struct {
					Metadata struct{ Name string } `json:"metadata"`
					Usage    map[string]string     `json:"usage"`
				} `json:"items"`
			}
			if err := json.Unmarshal(raw, &list); err != nil {
				return false, "metrics.k8s.io answered something else: " + err.Error(), nil
			}
			have := map[string]string{}
			for _, it := range list.Items {
				if it.Usage["cpu"] != "" && it.Usage["memory"] != "" {
					have[it.Metadata.Name] = "cpu " + it.Usage["cpu"] + ", memory " + it.Usage["memory"]
				}
			}
			var missing, seen []string
			for _, n := range nodes.Items {
				if u, ok := have[n.Name]; ok {
					seen = append(seen, n.Name+": "+u)
				} else {
					missing = append(missing, n.Name)
				}
			}
			sort.Strings(seen)
			s := "metrics for " + strings.Join(seen, "; ")
			if len(missing) > 0 {
				s += fmt.Sprintf("; none yet for %v", missing)
			}
			return len(missing) == 0, s, nil
		})
	}))
	return out
}
