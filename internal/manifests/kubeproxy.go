package manifests

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	componentbaseconfigv1alpha1 "k8s.io/component-base/config/v1alpha1"
	kubeproxyconfigv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

const (
	kubeProxyName = "kube-proxy"
	// kubeProxyConfigDir is where the kube-proxy ConfigMap is mounted in the pod.
	kubeProxyConfigDir = "/var/lib/kube-proxy"
	// The in-cluster ServiceAccount credentials every pod gets projected.
	kubeProxySATokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	kubeProxySACAFile    = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
)

// KubeProxy returns the kube-proxy add-on as kubeadm installs it: its ServiceAccount and RBAC,
// the ConfigMap holding its KubeProxyConfiguration and kubeconfig, and the DaemonSet.
func KubeProxy(p Params) ([]Object, error) {
	if err := addonCheckImage("Proxy", p.Images.Proxy); err != nil {
		return nil, err
	}
	if _, err := addonCheckPodCIDR(p.PodCIDR); err != nil {
		return nil, err
	}
	if err := addonCheckEndpoint(p.Endpoint); err != nil {
		return nil, err
	}
	config, err := kubeProxyConfig(p)
	if err != nil {
		return nil, err
	}
	kubeconfig, err := kubeProxyKubeconfig(p)
	if err != nil {
		return nil, err
	}

	ns := metav1.NamespaceSystem
	labels := map[string]string{"k8s-app": kubeProxyName}

	return []Object{
		addonServiceAccount(ns, kubeProxyName, nil),
		// kubeadm lets bootstrap-token clients (nodes still joining) read the kube-proxy
		// ConfigMap, and only that one, so a join can load the cluster's proxy config; kept for
		// parity with kubeadm clusters.
		{
			GVK: gvk(rbacv1.GroupName, "v1", "Role"),
			Obj: &rbacv1.Role{
				ObjectMeta: metav1.ObjectMeta{Name: kubeProxyName, Namespace: ns},
				Rules: []rbacv1.PolicyRule{{
					APIGroups:     []string{""},
					Resources:     []string{"configmaps"},
					ResourceNames: []string{kubeProxyName},
					Verbs:         []string{"get"},
				}},
			},
		},
		{
			GVK: gvk(rbacv1.GroupName, "v1", "ClusterRoleBinding"),
			Obj: &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: "kubeadm:node-proxier"},
				// system:node-proxier is a bootstrap ClusterRole the apiserver maintains itself.
				RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:node-proxier"},
				Subjects: []rbacv1.Subject{addonSASubject(ns, kubeProxyName)},
			},
		},
		{
			GVK: gvk(rbacv1.GroupName, "v1", "RoleBinding"),
			Obj: &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: kubeProxyName, Namespace: ns},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: kubeProxyName},
				Subjects: []rbacv1.Subject{{
					APIGroup: rbacv1.GroupName,
					Kind:     rbacv1.GroupKind,
					Name:     "system:bootstrappers:kubeadm:default-node-token",
				}},
			},
		},
		{
			GVK: gvk("", "v1", "ConfigMap"),
			Obj: &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: kubeProxyName, Namespace: ns, Labels: map[string]string{"app": kubeProxyName}},
				Data: map[string]string{
					"config.conf":     string(config),
					"kubeconfig.conf": string(kubeconfig),
				},
			},
		},
		{
			GVK: gvk(appsv1.GroupName, "v1", "DaemonSet"),
			Obj: &appsv1.DaemonSet{
				ObjectMeta: metav1.ObjectMeta{Name: kubeProxyName, Namespace: ns, Labels: labels},
				Spec: appsv1.DaemonSetSpec{
					Selector: &metav1.LabelSelector{MatchLabels: labels},
					// OnDelete: kube-proxy's image is a release's, preloaded by that release's
					// machine image, and no registry serves it. A rolling update to a new
					// release would replace the pods of machines still at the old one with
					// pods whose image they lack; kube-proxy moves to a new release on each
					// machine as kubeup upgrade replaces it (it deletes the machine's old pods).
					UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType},
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: labels},
						Spec:       kubeProxyPodSpec(p),
					},
				},
			},
		},
	}, nil
}

func kubeProxyPodSpec(p Params) corev1.PodSpec {
	return corev1.PodSpec{
		PriorityClassName:  "system-node-critical",
		ServiceAccountName: kubeProxyName,
		// kube-proxy programs the node's own network namespace.
		HostNetwork: true,
		Containers: []corev1.Container{{
			Name:  kubeProxyName,
			Image: p.Images.Proxy,
			// The offline bundle preloads images under their upstream references: never pull
			// an image the node already has.
			ImagePullPolicy: corev1.PullIfNotPresent,
			Command: []string{
				"/usr/local/bin/kube-proxy",
				"--config=" + kubeProxyConfigDir + "/config.conf",
				// With hostNetwork the pod's hostname is the machine's, which need not be the
				// Node name; kube-proxy must look its Node up by the name the kubelet registered.
				"--hostname-override=$(NODE_NAME)",
			},
			Env:             []corev1.EnvVar{addonFieldEnv("NODE_NAME", "spec.nodeName")},
			SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)},
			VolumeMounts: []corev1.VolumeMount{
				{Name: kubeProxyName, MountPath: kubeProxyConfigDir},
				// Shared with every other iptables user on the node so rule updates serialize.
				{Name: "xtables-lock", MountPath: "/run/xtables.lock"},
				// kube-proxy loads the conntrack/iptables kernel modules it needs.
				{Name: "lib-modules", MountPath: "/lib/modules", ReadOnly: true},
			},
		}},
		Volumes: []corev1.Volume{
			addonConfigMapVolume(kubeProxyName, kubeProxyName),
			addonHostPathVolume("xtables-lock", "/run/xtables.lock", corev1.HostPathFileOrCreate),
			addonHostPathVolume("lib-modules", "/lib/modules", ""),
		},
		// Services must work on every node, tainted or not.
		Tolerations:  []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
		NodeSelector: map[string]string{corev1.LabelOSStable: "linux"},
	}
}

// kubeProxyConfig serializes the KubeProxyConfiguration. Only the fields kubeup decides are
// set; kube-proxy defaults every zero value when it loads the file, as with kubeadm's output.
func kubeProxyConfig(p Params) ([]byte, error) {
	cfg := kubeproxyconfigv1alpha1.KubeProxyConfiguration{
		TypeMeta: metav1.TypeMeta{
			APIVersion: kubeproxyconfigv1alpha1.SchemeGroupVersion.String(),
			Kind:       "KubeProxyConfiguration",
		},
		ClientConnection: componentbaseconfigv1alpha1.ClientConnectionConfiguration{
			Kubeconfig: kubeProxyConfigDir + "/kubeconfig.conf",
		},
		// Pinned rather than left to kube-proxy's default so a default change upstream cannot
		// switch the data plane under flannel, whose EnableNFTables must match it.
		Mode:        kubeproxyconfigv1alpha1.ProxyMode("iptables"),
		ClusterCIDR: p.PodCIDR,
		// kube-proxy's default, written out: its metrics stay on the node's loopback (CIS 4.3.1).
		MetricsBindAddress: "127.0.0.1:10249",
	}
	b, err := yaml.Marshal(&cfg)
	if err != nil {
		return nil, fmt.Errorf("serialize KubeProxyConfiguration: %w", err)
	}
	return b, nil
}

// kubeProxyKubeconfig is the kubeconfig kube-proxy uses: the pod's own ServiceAccount token and
// cluster CA, but the control-plane endpoint instead of the in-cluster kubernetes Service,
// because the Service VIP only works once kube-proxy itself has programmed it.
func kubeProxyKubeconfig(p Params) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["default"] = &clientcmdapi.Cluster{
		Server:               p.Endpoint,
		CertificateAuthority: kubeProxySACAFile,
	}
	cfg.AuthInfos["default"] = &clientcmdapi.AuthInfo{TokenFile: kubeProxySATokenFile}
	cfg.Contexts["default"] = &clientcmdapi.Context{
		Cluster:   "default",
		AuthInfo:  "default",
		Namespace: "default",
	}
	cfg.CurrentContext = "default"
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, fmt.Errorf("serialize kube-proxy kubeconfig: %w", err)
	}
	return b, nil
}
