package verify

import (
	"context"
	"fmt"
)

// phase5 checks kube-proxy: the probes' ClusterIP Service answers from every node's host
// network (the path a node's own processes take, through kube-proxy's rules).
func (k *Checker) phase5(ctx context.Context) []Result {
	return []Result{k.waiting(ctx, "5", "service", "check the kube-proxy pods (kubectl -n kube-system get pods -l k8s-app=kube-proxy) and their logs", func(ctx context.Context) (string, error) {
		return k.withProbes(ctx, func(p *probes) (string, error) {
			return k.fromEvery(ctx, p.host, "node", "get", []string{fmt.Sprintf("http://%s/", hostPort(p.serviceIP, 80))}, "ClusterIP "+p.serviceIP)
		})
	})}
}
