package manifests

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"kubeup.dev/kubeup/internal/machine"
)

// The Service that names every machine's agent metrics, for a Prometheus ServiceMonitor.
const (
	AgentMetricsService   = "kubeup-agent"
	AgentMetricsPortName  = "https-metrics"
	agentMetricsNameLabel = "app.kubernetes.io/name"
)

// AgentMetrics is the headless Service kube-system/kubeup-agent. The agents run on the
// machines, not in pods, so it has no selector: the master's agent keeps its EndpointSlice,
// one endpoint per Node (agent.MetricsEndpoints).
func AgentMetrics(Params) ([]Object, error) {
	return []Object{{GVK: gvk("", "v1", "Service"), Obj: &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: AgentMetricsService, Namespace: metav1.NamespaceSystem,
			Labels: map[string]string{agentMetricsNameLabel: AgentMetricsService}},
		Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone,
			Ports: []corev1.ServicePort{{Name: AgentMetricsPortName, Port: machine.AgentMetricsPort,
				TargetPort: intstr.FromInt32(machine.AgentMetricsPort), Protocol: corev1.ProtocolTCP}},
		},
	}}}, nil
}
