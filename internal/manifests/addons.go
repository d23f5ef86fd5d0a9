package manifests

// Helpers shared by the add-on manifests (kubeproxy.go, flannel.go, coredns.go,
// metricsserver.go). Identifiers carry an "addon" prefix so they cannot collide with the
// control-plane and bootstrap manifests in the same package.

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AddonNamespaces are the namespaces of the default add-ons' workloads (kube-proxy, CoreDNS and
// metrics-server in kube-system, flannel in its own).
var AddonNamespaces = []string{metav1.NamespaceSystem, flannelNamespace}

// addonServiceAccount is the ServiceAccount an add-on's pods run as.
func addonServiceAccount(namespace, name string, labels map[string]string) Object {
	return Object{
		GVK: gvk("", "v1", "ServiceAccount"),
		Obj: &corev1.ServiceAccount{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels},
		},
	}
}

// addonSASubject is an RBAC subject naming a ServiceAccount.
func addonSASubject(namespace, name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: namespace}
}

// addonFieldEnv is an environment variable filled from the pod's own fields (downward API).
func addonFieldEnv(name, fieldPath string) corev1.EnvVar {
	return corev1.EnvVar{
		Name:      name,
		ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: fieldPath}},
	}
}

// addonHostPathVolume is a hostPath volume; an empty typ leaves the type unset (no check),
// which is what upstream uses for directories the host is expected to have.
func addonHostPathVolume(name, path string, typ corev1.HostPathType) corev1.Volume {
	src := &corev1.HostPathVolumeSource{Path: path}
	if typ != "" {
		src.Type = &typ
	}
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{HostPath: src}}
}

// addonConfigMapVolume is a volume projecting a whole ConfigMap.
func addonConfigMapVolume(name, configMap string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{
		ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: configMap},
		},
	}}
}

// The checks below reject Params an add-on cannot be built from. Params come from a validated
// cluster config, but these values end up inside config files (Corefile, net-conf.json) where a
// bad one would not fail until a pod crash-loops on a node, so each add-on re-checks what it uses.

func addonCheckImage(field, image string) error {
	if image == "" {
		return fmt.Errorf("images.%s is empty", field)
	}
	if strings.ContainsAny(image, " \t\n") {
		return fmt.Errorf("images.%s %q contains whitespace", field, image)
	}
	return nil
}

// addonCheckPodCIDR requires a single CIDR in canonical form (address bits past the prefix
// zero), since flannel and kube-proxy compare it with the node podCIDRs the controller-manager
// carves out of the same value.
func addonCheckPodCIDR(cidr string) (netip.Prefix, error) {
	pfx, err := netip.ParsePrefix(cidr)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("pod CIDR %q: %w", cidr, err)
	}
	if pfx != pfx.Masked() {
		return netip.Prefix{}, fmt.Errorf("pod CIDR %q has host bits set (want %s)", cidr, pfx.Masked())
	}
	return pfx, nil
}

// addonCheckEndpoint requires an https URL with a host, as the kube-proxy kubeconfig needs.
func addonCheckEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return fmt.Errorf("endpoint %q: %w", endpoint, err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("endpoint %q: want https://host:port", endpoint)
	}
	return nil
}
