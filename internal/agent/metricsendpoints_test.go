package agent

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"

	"kubeup.dev/kubeup/internal/machine"
)

func metricsNode(name, ip string, ready bool) *corev1.Node {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status}}}}
	if ip != "" {
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: name}, {Type: corev1.NodeInternalIP, Address: ip}}
	}
	return n
}

// TestMetricsEndpointsFollowTheNodes: the slice lists every Node with an address, ready as the
// Node is, and follows a Node that joins, turns Ready and leaves.
func TestMetricsEndpointsFollowTheNodes(t *testing.T) {
	c := fake.NewClientset(metricsNode("master", "10.10.0.10", true), metricsNode("node-1", "10.10.0.11", false), metricsNode("booting", "", false))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go (&MetricsEndpoints{Client: c}).Run(ctx, func(err error) { t.Errorf("write: %v", err) })
	expect := func(what string, want map[string]bool) {
		t.Helper()
		var last *discoveryv1.EndpointSlice
		err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
			s, err := c.DiscoveryV1().EndpointSlices("kube-system").Get(ctx, "kubeup-agent", metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			last = s
			got := map[string]bool{}
			for _, e := range s.Endpoints {
				got[*e.NodeName+"="+e.Addresses[0]] = *e.Conditions.Ready
			}
			if len(got) != len(want) {
				return false, nil
			}
			for k, v := range want {
				if r, ok := got[k]; !ok || r != v {
					return false, nil
				}
			}
			return true, nil
		})
		if err != nil {
			t.Fatalf("%s: slice %+v, want %v", what, last, want)
		}
		if last.Labels[discoveryv1.LabelServiceName] != "kubeup-agent" || len(last.Ports) != 1 || *last.Ports[0].Port != machine.AgentMetricsPort ||
			*last.Ports[0].Name != "https-metrics" || last.AddressType != discoveryv1.AddressTypeIPv4 {
			t.Errorf("%s: slice %+v", what, last)
		}
	}
	expect("at start", map[string]bool{"master=10.10.0.10": true, "node-1=10.10.0.11": false})
	if _, err := c.CoreV1().Nodes().Update(ctx, metricsNode("node-1", "10.10.0.11", true), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().Nodes().Create(ctx, metricsNode("node-2", "10.10.0.12", true), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("node-1 Ready, node-2 joined", map[string]bool{"master=10.10.0.10": true, "node-1=10.10.0.11": true, "node-2=10.10.0.12": true})
	if err := c.CoreV1().Nodes().Delete(ctx, "master", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("master gone", map[string]bool{"node-1=10.10.0.11": true, "node-2=10.10.0.12": true})
}
