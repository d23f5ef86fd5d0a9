package manifests

import (
	"fmt"
	"net/netip"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"
)

const (
	coreDNSName = "coredns"
	// kube-dns is the Service name (and k8s-app label) every DNS add-on has used since
	// kube-dns; tools and NetworkPolicies select on it.
	coreDNSServiceName = "kube-dns"
	coreDNSClusterRole = "system:coredns"
)

// CoreDNS returns the cluster DNS add-on as kubeadm installs it: CoreDNS serving the cluster
// domain behind the kube-dns Service at p.DNSServiceIP, the address kubelets hand to pods.
func CoreDNS(p Params) ([]Object, error) {
	if err := addonCheckImage("CoreDNS", p.Images.CoreDNS); err != nil {
		return nil, err
	}
	if err := coreDNSCheck(p); err != nil {
		return nil, err
	}

	ns := metav1.NamespaceSystem
	labels := map[string]string{"k8s-app": coreDNSServiceName}

	return []Object{
		addonServiceAccount(ns, coreDNSName, nil),
		{
			GVK: gvk(rbacv1.GroupName, "v1", "ClusterRole"),
			Obj: &rbacv1.ClusterRole{
				ObjectMeta: metav1.ObjectMeta{Name: coreDNSClusterRole},
				Rules: []rbacv1.PolicyRule{
					// The kubernetes plugin watches these to answer Service, endpoint and pod
					// queries; namespaces let it answer NXDOMAIN for missing ones.
					{APIGroups: []string{""}, Resources: []string{"endpoints", "services", "pods", "namespaces"}, Verbs: []string{"list", "watch"}},
					{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
				},
			},
		},
		{
			GVK: gvk(rbacv1.GroupName, "v1", "ClusterRoleBinding"),
			Obj: &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: coreDNSClusterRole},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: coreDNSClusterRole},
				Subjects:   []rbacv1.Subject{addonSASubject(ns, coreDNSName)},
			},
		},
		{
			GVK: gvk("", "v1", "ConfigMap"),
			Obj: &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: coreDNSName, Namespace: ns},
				Data:       map[string]string{"Corefile": coreDNSCorefile(p.DNSDomain)},
			},
		},
		{
			GVK: gvk(appsv1.GroupName, "v1", "Deployment"),
			Obj: &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: coreDNSName, Namespace: ns, Labels: labels},
				Spec: appsv1.DeploymentSpec{
					Replicas: ptr.To[int32](2),
					Selector: &metav1.LabelSelector{MatchLabels: labels},
					// One replica may go down during a rollout, never both.
					Strategy: appsv1.DeploymentStrategy{
						Type:          appsv1.RollingUpdateDeploymentStrategyType,
						RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: ptr.To(intstr.FromInt32(1))},
					},
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: labels},
						Spec:       coreDNSPodSpec(p, labels),
					},
				},
			},
		},
		{
			GVK: gvk("", "v1", "Service"),
			Obj: &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{
					Name:      coreDNSServiceName,
					Namespace: ns,
					Labels: map[string]string{
						"k8s-app":                       coreDNSServiceName,
						"kubernetes.io/cluster-service": "true",
						"kubernetes.io/name":            "CoreDNS",
					},
					Annotations: map[string]string{
						"prometheus.io/port":   "9153",
						"prometheus.io/scrape": "true",
					},
				},
				Spec: corev1.ServiceSpec{
					// Fixed, not allocated: kubelets put this address in every pod's resolv.conf.
					ClusterIP: p.DNSServiceIP,
					Selector:  labels,
					Ports: []corev1.ServicePort{
						{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(53)},
						{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(53)},
						{Name: "metrics", Port: 9153, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(9153)},
					},
				},
			},
		},
	}, nil
}

func coreDNSPodSpec(p Params, labels map[string]string) corev1.PodSpec {
	return corev1.PodSpec{
		PriorityClassName:  "system-cluster-critical",
		ServiceAccountName: coreDNSName,
		// Spread the replicas over nodes when possible, so losing one node keeps DNS up.
		Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
				Weight: 100,
				PodAffinityTerm: corev1.PodAffinityTerm{
					LabelSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
						Key:      "k8s-app",
						Operator: metav1.LabelSelectorOpIn,
						Values:   []string{labels["k8s-app"]},
					}}},
					TopologyKey: corev1.LabelHostname,
				},
			}},
		}},
		// DNS may run on the control plane: a one-machine cluster needs it there.
		Tolerations: []corev1.Toleration{
			{Key: "CriticalAddonsOnly", Operator: corev1.TolerationOpExists},
			{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule},
		},
		NodeSelector: map[string]string{corev1.LabelOSStable: "linux"},
		// Default = the node's resolv.conf. With ClusterFirst, CoreDNS's own upstream lookups
		// (forward . /etc/resolv.conf) would be sent back to itself.
		DNSPolicy: corev1.DNSDefault,
		Containers: []corev1.Container{{
			Name:            coreDNSName,
			Image:           p.Images.CoreDNS,
			ImagePullPolicy: corev1.PullIfNotPresent,
			Args:            []string{"-conf", "/etc/coredns/Corefile"},
			Resources: corev1.ResourceRequirements{
				Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("170Mi")},
				Requests: corev1.ResourceList{
					corev1.ResourceCPU:    resource.MustParse("100m"),
					corev1.ResourceMemory: resource.MustParse("70Mi"),
				},
			},
			VolumeMounts: []corev1.VolumeMount{{Name: "config-volume", MountPath: "/etc/coredns", ReadOnly: true}},
			Ports: []corev1.ContainerPort{
				{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP},
				{Name: "dns-tcp", ContainerPort: 53, Protocol: corev1.ProtocolTCP},
				{Name: "metrics", ContainerPort: 9153, Protocol: corev1.ProtocolTCP},
			},
			// Everything dropped but NET_BIND_SERVICE, which binding port 53 needs.
			SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: ptr.To(false),
				Capabilities: &corev1.Capabilities{
					Add:  []corev1.Capability{"NET_BIND_SERVICE"},
					Drop: []corev1.Capability{"ALL"},
				},
				ReadOnlyRootFilesystem: ptr.To(true),
			},
			LivenessProbe: &corev1.Probe{
				ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
					Path: "/health", Port: intstr.FromInt32(8080), Scheme: corev1.URISchemeHTTP,
				}},
				InitialDelaySeconds: 60,
				TimeoutSeconds:      5,
				SuccessThreshold:    1,
				FailureThreshold:    5,
			},
			ReadinessProbe: &corev1.Probe{
				ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
					Path: "/ready", Port: intstr.FromInt32(8181), Scheme: corev1.URISchemeHTTP,
				}},
			},
		}},
		Volumes: []corev1.Volume{{
			Name: "config-volume",
			VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: coreDNSName},
				Items:                []corev1.KeyToPath{{Key: "Corefile", Path: "Corefile"}},
			}},
		}},
	}
}

// coreDNSCorefile is kubeadm's default Corefile for the cluster domain. The Corefile is
// CoreDNS's own configuration language, not a Kubernetes object, so it is written line by line;
// coreDNSCheck has made sure the domain cannot break out of its token.
func coreDNSCorefile(domain string) string {
	lines := []string{
		".:53 {",
		"    errors",
		"    health {",
		// Keep answering for 5s after SIGTERM so the Service stops routing here first.
		"       lameduck 5s",
		"    }",
		"    ready",
		"    kubernetes " + domain + " in-addr.arpa ip6.arpa {",
		"       pods insecure",
		"       fallthrough in-addr.arpa ip6.arpa",
		"       ttl 30",
		"    }",
		"    prometheus :9153",
		"    forward . /etc/resolv.conf {",
		"       max_concurrent 1000",
		"    }",
		// The kubernetes plugin's answers are already in memory; caching them would only
		// serve stale records after a Service or pod changes.
		"    cache 30 {",
		"       disable success " + domain,
		"       disable denial " + domain,
		"    }",
		"    loop",
		"    reload",
		"    loadbalance",
		"}",
	}
	return strings.Join(lines, "\n") + "\n"
}

// coreDNSCheck validates the cluster domain and the DNS Service address.
func coreDNSCheck(p Params) error {
	if errs := validation.IsDNS1123Subdomain(p.DNSDomain); len(errs) > 0 {
		return fmt.Errorf("DNS domain %q: %s", p.DNSDomain, strings.Join(errs, "; "))
	}
	ip, err := netip.ParseAddr(p.DNSServiceIP)
	if err != nil {
		return fmt.Errorf("DNS service IP %q: %w", p.DNSServiceIP, err)
	}
	if ip.Zone() != "" || ip != ip.Unmap() {
		return fmt.Errorf("DNS service IP %q: want a plain IPv4 or IPv6 address", p.DNSServiceIP)
	}
	// The apiserver rejects a ClusterIP outside the service range only when the Service is
	// created, long after the manifests were written; catch it here. ServiceCIDR may be a
	// dual-stack pair.
	if p.ServiceCIDR == "" {
		return nil
	}
	for _, c := range strings.Split(p.ServiceCIDR, ",") {
		pfx, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil {
			return fmt.Errorf("service CIDR %q: %w", p.ServiceCIDR, err)
		}
		if pfx.Contains(ip) {
			return nil
		}
	}
	return fmt.Errorf("DNS service IP %s is outside the service CIDR %s", p.DNSServiceIP, p.ServiceCIDR)
}
