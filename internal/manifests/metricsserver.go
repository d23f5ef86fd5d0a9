package manifests

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	"k8s.io/utils/ptr"
)

const (
	metricsServerName = "metrics-server"
	// metricsServerCAFile is the cluster CA, present on every node. metrics-server verifies
	// kubelet serving certificates against it, so those must be signed by the cluster CA
	// (KubeletConfig sets serverTLSBootstrap; the kubelet-serving CSRs must be approved), not
	// the kubelet's default self-signed one.
	metricsServerCAFile = PKIDir + "/ca.crt"
)

// MetricsServer returns metrics-server as upstream's components.yaml ships it, except that it
// verifies kubelet serving certificates against the cluster CA instead of running with
// --kubelet-insecure-tls.
func MetricsServer(p Params) ([]Object, error) {
	if err := addonCheckImage("MetricsServer", p.Images.MetricsServer); err != nil {
		return nil, err
	}

	ns := metav1.NamespaceSystem
	labels := map[string]string{"k8s-app": metricsServerName}
	sa := addonSASubject(ns, metricsServerName)

	return []Object{
		addonServiceAccount(ns, metricsServerName, labels),
		{
			GVK: gvk(rbacv1.GroupName, "v1", "ClusterRole"),
			Obj: &rbacv1.ClusterRole{
				ObjectMeta: metav1.ObjectMeta{
					Name: "system:aggregated-metrics-reader",
					// Aggregated into the default view/edit/admin roles, so whoever may read
					// pods may also read their metrics (kubectl top).
					Labels: map[string]string{
						"k8s-app": metricsServerName,
						"rbac.authorization.k8s.io/aggregate-to-admin": "true",
						"rbac.authorization.k8s.io/aggregate-to-edit":  "true",
						"rbac.authorization.k8s.io/aggregate-to-view":  "true",
					},
				},
				Rules: []rbacv1.PolicyRule{{
					APIGroups: []string{"metrics.k8s.io"},
					Resources: []string{"pods", "nodes"},
					Verbs:     []string{"get", "list", "watch"},
				}},
			},
		},
		{
			GVK: gvk(rbacv1.GroupName, "v1", "ClusterRole"),
			Obj: &rbacv1.ClusterRole{
				ObjectMeta: metav1.ObjectMeta{Name: "system:metrics-server", Labels: labels},
				Rules: []rbacv1.PolicyRule{
					// Scraping the kubelets' /metrics/resource endpoint.
					{APIGroups: []string{""}, Resources: []string{"nodes/metrics"}, Verbs: []string{"get"}},
					{APIGroups: []string{""}, Resources: []string{"pods", "nodes"}, Verbs: []string{"get", "list", "watch"}},
				},
			},
		},
		// As an aggregated apiserver, metrics-server reads the front-proxy client CA from
		// kube-system/extension-apiserver-authentication to authenticate the aggregator ...
		{
			GVK: gvk(rbacv1.GroupName, "v1", "RoleBinding"),
			Obj: &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: "metrics-server-auth-reader", Namespace: ns, Labels: labels},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "extension-apiserver-authentication-reader"},
				Subjects:   []rbacv1.Subject{sa},
			},
		},
		// ... and delegates authentication and authorization of the end user to the apiserver
		// (TokenReview, SubjectAccessReview).
		{
			GVK: gvk(rbacv1.GroupName, "v1", "ClusterRoleBinding"),
			Obj: &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: "metrics-server:system:auth-delegator", Labels: labels},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:auth-delegator"},
				Subjects:   []rbacv1.Subject{sa},
			},
		},
		{
			GVK: gvk(rbacv1.GroupName, "v1", "ClusterRoleBinding"),
			Obj: &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: "system:metrics-server", Labels: labels},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:metrics-server"},
				Subjects:   []rbacv1.Subject{sa},
			},
		},
		{
			GVK: gvk(appsv1.GroupName, "v1", "Deployment"),
			Obj: &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: metricsServerName, Namespace: ns, Labels: labels},
				Spec: appsv1.DeploymentSpec{
					Selector: &metav1.LabelSelector{MatchLabels: labels},
					// With one replica, start the new pod before stopping the old one so the
					// metrics API (and every HPA) stays available during a rollout.
					Strategy: appsv1.DeploymentStrategy{
						RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: ptr.To(intstr.FromInt32(0))},
					},
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: labels},
						Spec:       metricsServerPodSpec(p),
					},
				},
			},
		},
		{
			GVK: gvk("", "v1", "Service"),
			Obj: &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: metricsServerName, Namespace: ns, Labels: labels},
				Spec: corev1.ServiceSpec{
					Selector: labels,
					Ports: []corev1.ServicePort{{
						Name:        "https",
						Port:        443,
						Protocol:    corev1.ProtocolTCP,
						TargetPort:  intstr.FromString("https"),
						AppProtocol: ptr.To("https"),
					}},
				},
			},
		},
		{
			GVK: gvk(apiregistrationv1.GroupName, "v1", "APIService"),
			Obj: &apiregistrationv1.APIService{
				ObjectMeta: metav1.ObjectMeta{Name: "v1beta1.metrics.k8s.io", Labels: labels},
				Spec: apiregistrationv1.APIServiceSpec{
					Service: &apiregistrationv1.ServiceReference{Namespace: ns, Name: metricsServerName},
					Group:   "metrics.k8s.io",
					Version: "v1beta1",
					// As upstream ships it: metrics-server serves a self-signed certificate
					// generated into --cert-dir at startup, so there is no CA to pin here. This
					// only concerns the hop from the kube-apiserver's aggregator to the
					// metrics-server Service inside the cluster; the kubelet scrapes, where the
					// node data comes from, are verified (--kubelet-certificate-authority).
					InsecureSkipTLSVerify: true,
					GroupPriorityMinimum:  100,
					VersionPriority:       100,
				},
			},
		},
	}, nil
}

func metricsServerPodSpec(p Params) corev1.PodSpec {
	return corev1.PodSpec{
		PriorityClassName:  "system-cluster-critical",
		ServiceAccountName: metricsServerName,
		NodeSelector:       map[string]string{corev1.LabelOSStable: "linux"},
		Containers: []corev1.Container{{
			Name:            metricsServerName,
			Image:           p.Images.MetricsServer,
			ImagePullPolicy: corev1.PullIfNotPresent,
			Args: []string{
				// The read-only root filesystem leaves /tmp (an emptyDir) for the
				// self-signed serving certificate.
				"--cert-dir=/tmp",
				"--secure-port=10250",
				"--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
				"--kubelet-use-node-status-port",
				"--metric-resolution=15s",
				// Verify kubelets' serving certificates (never --kubelet-insecure-tls). Each
				// kubelet must serve a cluster-CA-signed certificate valid for the address
				// picked by --kubelet-preferred-address-types (normally its InternalIP).
				"--kubelet-certificate-authority=" + metricsServerCAFile,
			},
			Ports: []corev1.ContainerPort{{Name: "https", ContainerPort: 10250, Protocol: corev1.ProtocolTCP}},
			// Upstream's probes (1-s timeouts, liveness from the first second) killed it four
			// times in one `make up` under TCG, each time while it still started or answered a
			// TLS handshake slowly, and every restart made the busy master busier. A startup
			// probe holds the liveness probe off until it first answers, as the control plane's
			// have, and the timeouts allow a slow handshake.
			StartupProbe:   metricsServerProbe("/livez", 30),
			ReadinessProbe: metricsServerProbe("/readyz", 3),
			LivenessProbe:  metricsServerProbe("/livez", 8),
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("100m"),
				corev1.ResourceMemory: resource.MustParse("200Mi"),
			}},
			SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: ptr.To(false),
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				ReadOnlyRootFilesystem:   ptr.To(true),
				RunAsNonRoot:             ptr.To(true),
				RunAsUser:                ptr.To[int64](1000),
				SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			VolumeMounts: []corev1.VolumeMount{
				{Name: "tmp-dir", MountPath: "/tmp"},
				// A single file, read-only; as UID 1000 this relies on ca.crt being
				// world-readable on the node (it is a public certificate, mode 0644).
				{Name: "cluster-ca", MountPath: metricsServerCAFile, ReadOnly: true},
			},
		}},
		Volumes: []corev1.Volume{
			{Name: "tmp-dir", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			// Type File: fail the pod at mount time if the node has no CA file, rather than
			// have the kubelet create an empty directory in its place.
			addonHostPathVolume("cluster-ca", metricsServerCAFile, corev1.HostPathFile),
		},
	}
}

// metricsServerProbe is one of metrics-server's HTTPS probes: every 10 s, a slow handshake
// allowed, failures tries.
func metricsServerProbe(path string, failures int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: path, Port: intstr.FromString("https"), Scheme: corev1.URISchemeHTTPS,
		}},
		PeriodSeconds:    10,
		TimeoutSeconds:   15,
		FailureThreshold: failures,
	}
}
