package agent

import (
	"context"
	"reflect"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	discoveryv1apply "k8s.io/client-go/applyconfigurations/discovery/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"

	"kubeup.dev/kubeup/internal/machine"
	"kubeup.dev/kubeup/internal/manifests"
)

// MetricsEndpoints keeps the EndpointSlice of the Service kube-system/kubeup-agent: one
// endpoint per Node, at its InternalIP and the agents' metrics port, ready when the Node is. The
// agents run on the machines, not in pods, so no selector finds them; the master's agent
// writes the slice from the Nodes instead (as prometheus-operator does for the kubelets), and a
// ServiceMonitor that selects the Service scrapes every machine.
type MetricsEndpoints struct {
	Client kubernetes.Interface
}

// metricsSliceName is the one slice's name; the label below ties it to the Service.
const metricsSliceName = manifests.AgentMetricsService

// Run keeps the slice until ctx ends; onErr hears each failed write (it is retried).
func (m *MetricsEndpoints) Run(ctx context.Context, onErr func(error)) {
	factory := informers.NewSharedInformerFactory(m.Client, approverResync)
	nodes := factory.Core().V1().Nodes()
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	defer queue.ShutDown()
	enqueue := func(any) { queue.Add(metricsSliceName) }
	nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: enqueue, UpdateFunc: func(_, obj any) { enqueue(obj) }, DeleteFunc: enqueue})
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	go func() {
		<-ctx.Done()
		queue.ShutDown()
	}()
	if !cache.WaitForCacheSync(ctx.Done(), nodes.Informer().HasSynced) {
		return
	}
	// Nodes change every few seconds (heartbeats); the slice only when an address or a Ready
	// condition does, so the last one written is remembered and an equal one not written again.
	var written []discoveryv1.Endpoint
	for {
		key, shutdown := queue.Get()
		if shutdown {
			return
		}
		list, err := nodes.Lister().List(labels.Everything())
		want := MetricsEndpointsOf(list)
		if err == nil && (written == nil || !reflect.DeepEqual(want, written)) {
			err = m.apply(ctx, want)
		}
		if err != nil && ctx.Err() == nil {
			if onErr != nil {
				onErr(err)
			}
			queue.AddRateLimited(key)
		} else {
			written = want
			queue.Forget(key)
		}
		queue.Done(key)
	}
}

// MetricsEndpointsOf is the slice's endpoints for nodes: each Node with an InternalIP, sorted by
// name. A pure function of the Nodes.
func MetricsEndpointsOf(nodes []*corev1.Node) []discoveryv1.Endpoint {
	out := []discoveryv1.Endpoint{}
	for _, n := range nodes {
		ip := ""
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				ip = a.Address
				break
			}
		}
		if ip == "" {
			continue
		}
		ready := false
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				ready = c.Status == corev1.ConditionTrue
			}
		}
		out = append(out, discoveryv1.Endpoint{Addresses: []string{ip}, NodeName: ptr.To(n.Name),
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready)}})
	}
	sort.Slice(out, func(i, j int) bool { return *out[i].NodeName < *out[j].NodeName })
	return out
}

// apply writes the slice by server-side apply, owning all of it.
func (m *MetricsEndpoints) apply(ctx context.Context, eps []discoveryv1.Endpoint) error {
	s := discoveryv1apply.EndpointSlice(metricsSliceName, metav1.NamespaceSystem).
		WithLabels(map[string]string{
			discoveryv1.LabelServiceName: manifests.AgentMetricsService,
			discoveryv1.LabelManagedBy:   "kubeup.dev/agent",
		}).
		WithAddressType(discoveryv1.AddressTypeIPv4).
		WithPorts(discoveryv1apply.EndpointPort().WithName(manifests.AgentMetricsPortName).
			WithPort(machine.AgentMetricsPort).WithProtocol(corev1.ProtocolTCP))
	for _, e := range eps {
		ep := discoveryv1apply.Endpoint().WithAddresses(e.Addresses...).WithNodeName(*e.NodeName).
			WithConditions(discoveryv1apply.EndpointConditions().WithReady(*e.Conditions.Ready))
		s = s.WithEndpoints(ep)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := m.Client.DiscoveryV1().EndpointSlices(metav1.NamespaceSystem).Apply(ctx, s, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	return err
}
