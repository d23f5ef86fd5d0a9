package verify

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
)

// startProbes waits on watches: while the probe pods start (minutes under TCG), it must not
// list the Nodes and pods again and again on an API server that is busy already. The fake
// clientset plays the DaemonSet controller and the kubelets: the pods appear running once the
// wait has begun.
func TestStartProbesWatchesInsteadOfPolling(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const ns = "kubeup-verify-test"
	c := fake.NewClientset(node("master", true), node("node-1", true))

	type result struct {
		p    *probes
		seen string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		p, seen, err := startProbes(ctx, c, ns)
		done <- result{p, seen, err}
	}()

	// The wait watches the Nodes, the pods and the Service (polling never did), and goes on
	// while no probe runs.
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 20*time.Second, true, func(context.Context) (bool, error) {
		watched := map[string]bool{}
		for _, a := range c.Actions() {
			if a.GetVerb() == "watch" {
				watched[a.GetResource().Resource] = true
			}
		}
		return watched["nodes"] && watched["pods"] && watched["services"], nil
	}); err != nil {
		t.Fatalf("startProbes does not watch the Nodes, pods and Service: %v (%d requests, no watch of each)", err, len(c.Actions()))
	}
	select {
	case r := <-done:
		t.Fatalf("startProbes returned before any probe ran: %+v", r)
	default:
	}
	for _, n := range []string{"master", "node-1"} {
		for kind, ip := range map[string]string{probePods: "10.244.0.", probeHost: "10.10.0."} {
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: kind + "-" + n, Namespace: ns, Labels: map[string]string{"kubeup-verify": kind}},
				Spec:       corev1.PodSpec{NodeName: n},
				Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip + map[string]string{"master": "10", "node-1": "11"}[n]},
			}
			if _, err := c.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	svc, err := c.CoreV1().Services(ns).Get(ctx, probeService, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Spec.ClusterIP = "10.96.0.42"
	if _, err := c.CoreV1().Services(ns).Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	var r result
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		select {
		case r = <-done:
			return true, nil
		default:
			return false, nil
		}
	}); err != nil {
		t.Fatalf("startProbes did not see the running probes: %v", err)
	}
	if r.err != nil || len(r.p.pods) != 2 || len(r.p.host) != 2 || r.p.serviceIP != "10.96.0.42" || r.p.pods["node-1"].Status.PodIP != "10.244.0.11" {
		t.Fatalf("startProbes: %+v %q %v", r.p, r.seen, r.err)
	}

	// One list per watched kind (the informers' first), then watches; polling made one list of
	// the Nodes and two of the pods every 2 s.
	lists := map[string]int{}
	for _, a := range c.Actions() {
		if a.GetVerb() == "list" || a.GetVerb() == "get" && a.GetResource().Resource == "services" {
			lists[a.GetResource().Resource]++
		}
	}
	if lists["nodes"] > 1 || lists["pods"] > 1 || lists["services"] > 2 {
		t.Errorf("requests while waiting for the probes: %v; want one list of each (the informers'), the rest through watches", lists)
	}
}
