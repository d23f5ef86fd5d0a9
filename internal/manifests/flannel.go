package manifests

import (
	"encoding/json"
	"fmt"
	"net/url"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

const (
	flannelNamespace = "kube-flannel"
	flannelName      = "flannel"
	flannelConfigMap = "kube-flannel-cfg"
	// flannelConfigDir is where the ConfigMap is mounted in the pod; flanneld reads
	// net-conf.json from here by default.
	flannelConfigDir = "/etc/kube-flannel/"
)

// Flannel returns the flannel CNI add-on as upstream's kube-flannel.yml ships it, with the
// network set to the cluster's pod CIDR.
func Flannel(p Params) ([]Object, error) {
	if err := addonCheckImage("Flannel", p.Images.Flannel); err != nil {
		return nil, err
	}
	if err := addonCheckImage("FlannelCNI", p.Images.FlannelCNI); err != nil {
		return nil, err
	}
	pfx, err := addonCheckPodCIDR(p.PodCIDR)
	if err != nil {
		return nil, err
	}
	// net-conf.json's Network is the IPv4 network; IPv6 goes in separate fields this
	// configuration does not set, so an IPv6 pod CIDR would leave flannel without a network.
	if !pfx.Addr().Is4() {
		return nil, fmt.Errorf("pod CIDR %q: flannel's Network must be IPv4", p.PodCIDR)
	}
	cniConf, netConf, err := flannelConfig(p)
	if err != nil {
		return nil, err
	}

	ns := flannelNamespace
	appLabels := map[string]string{"k8s-app": flannelName}
	// The DaemonSet and its ConfigMap carry upstream's older app/tier labels as well; the
	// selector uses both app labels, exactly as upstream, so an upgrade over an upstream install
	// does not hit the immutable-selector error.
	nodeLabels := map[string]string{"app": flannelName, "k8s-app": flannelName, "tier": "node"}
	selector := map[string]string{"app": flannelName, "k8s-app": flannelName}

	return []Object{
		{
			GVK: gvk("", "v1", "Namespace"),
			Obj: &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
				Name: ns,
				// flannel needs hostNetwork, hostPath and NET_ADMIN: only the privileged Pod
				// Security level admits that.
				Labels: PrivilegedNamespace(map[string]string{"k8s-app": flannelName}),
			}},
		},
		addonServiceAccount(ns, flannelName, appLabels),
		{
			GVK: gvk(rbacv1.GroupName, "v1", "ClusterRole"),
			Obj: &rbacv1.ClusterRole{
				ObjectMeta: metav1.ObjectMeta{Name: flannelName, Labels: appLabels},
				Rules: []rbacv1.PolicyRule{
					// flanneld finds its Node through its own pod (POD_NAME/POD_NAMESPACE).
					{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}},
					// --kube-subnet-mgr: node podCIDRs are the subnet leases.
					{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch"}},
					// Clears the NetworkUnavailable condition once the node's route is set up.
					{APIGroups: []string{""}, Resources: []string{"nodes/status"}, Verbs: []string{"patch"}},
					// No clustercidrs rule: older upstream manifests had one, but the ClusterCIDR
					// API is gone (k8s.io/api v0.37.2 has no networking/v1alpha1 at all).
				},
			},
		},
		{
			GVK: gvk(rbacv1.GroupName, "v1", "ClusterRoleBinding"),
			Obj: &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: flannelName, Labels: appLabels},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: flannelName},
				Subjects:   []rbacv1.Subject{addonSASubject(ns, flannelName)},
			},
		},
		{
			GVK: gvk("", "v1", "ConfigMap"),
			Obj: &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: flannelConfigMap, Namespace: ns, Labels: nodeLabels},
				Data: map[string]string{
					"cni-conf.json": string(cniConf),
					"net-conf.json": string(netConf),
				},
			},
		},
		{
			GVK: gvk(appsv1.GroupName, "v1", "DaemonSet"),
			Obj: &appsv1.DaemonSet{
				ObjectMeta: metav1.ObjectMeta{Name: "kube-flannel-ds", Namespace: ns, Labels: nodeLabels},
				Spec: appsv1.DaemonSetSpec{
					Selector: &metav1.LabelSelector{MatchLabels: selector},
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: nodeLabels},
						Spec:       flannelPodSpec(p),
					},
				},
			},
		},
	}, nil
}

func flannelPodSpec(p Params) corev1.PodSpec {
	return corev1.PodSpec{
		Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{
					MatchExpressions: []corev1.NodeSelectorRequirement{{
						Key:      corev1.LabelOSStable,
						Operator: corev1.NodeSelectorOpIn,
						Values:   []string{"linux"},
					}},
				}},
			},
		}},
		HostNetwork:        true,
		PriorityClassName:  "system-node-critical",
		ServiceAccountName: flannelName,
		// Every node needs pod networking, including tainted control-plane nodes; nodes are
		// NotReady (and tainted) until flannel has installed the CNI config.
		Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
		// The init containers put the CNI plugin binary and the CNI config on the host, where
		// the container runtime looks for them.
		InitContainers: []corev1.Container{
			{
				Name:            "install-cni-plugin",
				Image:           p.Images.FlannelCNI,
				ImagePullPolicy: corev1.PullIfNotPresent,
				Command:         []string{"cp"},
				Args:            []string{"-f", "/flannel", "/opt/cni/bin/flannel"},
				VolumeMounts:    []corev1.VolumeMount{{Name: "cni-plugin", MountPath: "/opt/cni/bin"}},
			},
			{
				Name:            "install-cni",
				Image:           p.Images.Flannel,
				ImagePullPolicy: corev1.PullIfNotPresent,
				Command:         []string{"cp"},
				Args:            []string{"-f", flannelConfigDir + "cni-conf.json", "/etc/cni/net.d/10-flannel.conflist"},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "cni", MountPath: "/etc/cni/net.d"},
					{Name: "flannel-cfg", MountPath: flannelConfigDir},
				},
			},
		},
		Containers: []corev1.Container{{
			Name:            "kube-flannel",
			Image:           p.Images.Flannel,
			ImagePullPolicy: corev1.PullIfNotPresent,
			Command:         []string{"/opt/bin/flanneld"},
			// Its masquerade and forward rules are checked every 60 s, not upstream's 5: each
			// check runs iptables several times, and on an emulated machine (QEMU TCG) that
			// kept flanneld at 0.3 to 0.7 of a CPU on every machine, measured with metrics-server.
			// The check only repairs rules something else deleted; nothing of ours does.
			Args: []string{"--ip-masq", "--kube-subnet-mgr", "--iptables-resync=60"},
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("100m"),
				corev1.ResourceMemory: resource.MustParse("50Mi"),
			}},
			// Not privileged: NET_ADMIN and NET_RAW are enough for routes, the VXLAN device
			// and the masquerade rules.
			SecurityContext: &corev1.SecurityContext{
				Privileged:   ptr.To(false),
				Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN", "NET_RAW"}},
			},
			Env: []corev1.EnvVar{
				addonFieldEnv("POD_NAME", "metadata.name"),
				addonFieldEnv("POD_NAMESPACE", "metadata.namespace"),
				{Name: "EVENT_QUEUE_DEPTH", Value: "5000"},
				{Name: "CONT_WHEN_CACHE_NOT_READY", Value: "false"},
				// The control-plane endpoint itself, not the kubernetes Service: its ClusterIP
				// works only once kube-proxy has programmed the node, and flannel would crash-loop
				// until then (measured: two restarts and a minute lost on every node).
				{Name: "KUBERNETES_SERVICE_HOST", Value: endpointHost(p.Endpoint)},
				{Name: "KUBERNETES_SERVICE_PORT", Value: endpointPort(p.Endpoint)},
			},
			VolumeMounts: []corev1.VolumeMount{
				// flanneld writes subnet.env here for the flannel CNI plugin to read.
				{Name: "run", MountPath: "/run/flannel"},
				{Name: "flannel-cfg", MountPath: flannelConfigDir},
				{Name: "xtables-lock", MountPath: "/run/xtables.lock"},
			},
		}},
		Volumes: []corev1.Volume{
			addonHostPathVolume("run", "/run/flannel", ""),
			addonHostPathVolume("cni-plugin", "/opt/cni/bin", ""),
			addonHostPathVolume("cni", "/etc/cni/net.d", ""),
			flannelConfigVolume(),
			addonHostPathVolume("xtables-lock", "/run/xtables.lock", corev1.HostPathFileOrCreate),
		},
	}
}

// flannelConfigVolume holds flannel's two config files at mode 0600: install-cni's cp gives the
// CNI config on the host the same mode (CIS 1.1.9).
func flannelConfigVolume() corev1.Volume {
	v := addonConfigMapVolume("flannel-cfg", flannelConfigMap)
	v.ConfigMap.DefaultMode = ptr.To[int32](0o600)
	return v
}

// flannelConfig returns cni-conf.json and net-conf.json. They are encoded from Go values, so
// the pod CIDR is always properly quoted and the bytes are the same on every run (struct
// fields encode in declaration order, here upstream's key order).
func flannelConfig(p Params) (cniConf, netConf []byte, err error) {
	type delegate struct {
		HairpinMode      bool `json:"hairpinMode"`
		IsDefaultGateway bool `json:"isDefaultGateway"`
	}
	type capabilities struct {
		PortMappings bool `json:"portMappings"`
	}
	type plugin struct {
		Type         string        `json:"type"`
		Delegate     *delegate     `json:"delegate,omitempty"`
		Capabilities *capabilities `json:"capabilities,omitempty"`
	}
	type conflist struct {
		Name       string   `json:"name"`
		CNIVersion string   `json:"cniVersion"`
		Plugins    []plugin `json:"plugins"`
	}
	type backend struct {
		Type string `json:"Type"`
	}
	type network struct {
		Network string `json:"Network"`
		// Must agree with kube-proxy's mode (iptables, see kubeproxy.go): both manage the
		// node's NAT rules and must use the same backend.
		EnableNFTables bool    `json:"EnableNFTables"`
		Backend        backend `json:"Backend"`
	}

	cniConf, err = json.MarshalIndent(conflist{
		Name:       "cbr0",
		CNIVersion: "0.3.1",
		Plugins: []plugin{
			// The flannel plugin delegates to the bridge plugin with these settings; hairpin
			// mode lets a pod reach itself through a Service VIP.
			{Type: "flannel", Delegate: &delegate{HairpinMode: true, IsDefaultGateway: true}},
			// portmap implements hostPort.
			{Type: "portmap", Capabilities: &capabilities{PortMappings: true}},
		},
	}, "", "  ")
	if err != nil {
		return nil, nil, fmt.Errorf("encode flannel cni-conf.json: %w", err)
	}
	netConf, err = json.MarshalIndent(network{
		Network:        p.PodCIDR,
		EnableNFTables: false,
		Backend:        backend{Type: "vxlan"},
	}, "", "  ")
	if err != nil {
		return nil, nil, fmt.Errorf("encode flannel net-conf.json: %w", err)
	}
	return append(cniConf, '\n'), append(netConf, '\n'), nil
}

// endpointHost and endpointPort split the control-plane endpoint URL (https://host:port).
func endpointHost(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

func endpointPort(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || u.Port() == "" {
		return "443"
	}
	return u.Port()
}
