package manifests

// Paths on a machine. Static pods, the kubelet and the control-plane test all use these, so they
// are defined once.
const (
	KubernetesDir     = "/etc/kubernetes"
	PKIDir            = "/etc/kubernetes/pki"
	ManifestsDir      = "/etc/kubernetes/manifests"
	EtcdDataDir       = "/var/lib/etcd"
	AuditLogDir       = "/var/log/kubernetes/audit"
	KubeletDir        = "/var/lib/kubelet"
	KubeletConfigFile = "/var/lib/kubelet/config.yaml"
	EncryptionConfig  = "/etc/kubernetes/encryption-config.yaml"
	AuditPolicy       = "/etc/kubernetes/audit-policy.yaml"
	// AuthenticationConfigFile and AdmissionConfigFile are the API server's authentication and
	// admission configurations (AuthenticationConfig, AdmissionConfig).
	AuthenticationConfigFile = "/etc/kubernetes/authentication-config.yaml"
	AdmissionConfigFile      = "/etc/kubernetes/admission-config.yaml"
	BootstrapKubeconf        = "/etc/kubernetes/bootstrap-kubelet.conf"
	KubeletKubeconf          = "/etc/kubernetes/kubelet.conf"
	// AddonsDir holds the objects the master agent applies once the API answers.
	AddonsDir = "/etc/kubeup/addons"
)
