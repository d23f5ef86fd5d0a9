package manifests

import (
	"encoding/json"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
	podsecurityv1 "k8s.io/pod-security-admission/admission/api/v1"
)

// AnonymousPaths are the only paths the API server answers for a request without credentials:
// the health endpoints that the kubelet's probes of the static pods (which send none), load
// balancers and `kubeup-probe wait` use. Everything else, /version and
// kube-public/cluster-info included, wants a credential (CIS 1.2.1). Conditions match the path
// exactly, so /livez/etcd and the like stay closed.
var AnonymousPaths = []string{"/healthz", "/livez", "/readyz"}

// TLSCipherSuites are the TLS 1.2 suites the API server and the kubelet offer: ECDHE with an
// AEAD cipher only (CIS 1.2.29 and 4.2.12). TLS 1.3, which Go prefers, has no weak suites to
// remove.
var TLSCipherSuites = []string{
	"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
	"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
	"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
	"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
	"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
	"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
}

// podSecurityWarn is the level namespaces without a label warn and audit at.
const podSecurityWarn = "restricted"

// PrivilegedNamespace adds to labels (a new map if nil) the Pod Security labels of a namespace
// that runs the cluster's own pods: static pods, kube-proxy, flannel and verify's probes need
// the host's network and paths. All three modes are set: a namespace that names only enforce
// still warns and audits at the cluster's defaults (restricted), on every pod it admits.
func PrivilegedNamespace(labels map[string]string) map[string]string {
	if labels == nil {
		labels = map[string]string{}
	}
	for _, mode := range []string{"enforce", "warn", "audit"} {
		labels["pod-security.kubernetes.io/"+mode] = "privileged"
	}
	return labels
}

// AuthenticationConfig is the API server's structured authentication configuration
// (--authentication-config): anonymous requests are authenticated only for AnonymousPaths.
// It replaces --anonymous-auth, which the API server refuses alongside it.
func AuthenticationConfig() ([]byte, error) {
	c := &apiserverv1.AuthenticationConfiguration{
		JWT:       []apiserverv1.JWTAuthenticator{},
		Anonymous: &apiserverv1.AnonymousAuthConfig{Enabled: true},
	}
	for _, p := range AnonymousPaths {
		c.Anonymous.Conditions = append(c.Anonymous.Conditions, apiserverv1.AnonymousAuthCondition{Path: p})
	}
	return YAML(Object{GVK: gvk("apiserver.config.k8s.io", "v1", "AuthenticationConfiguration"), Obj: c})
}

// AdmissionConfig is the API server's admission configuration (--admission-control-config-file):
// the PodSecurity plugin's defaults for namespaces that carry no level label. They enforce
// p.PodSecurity and warn and audit at restricted, at the cluster's own release of the standards.
// kube-system is exempt.
func AdmissionConfig(p Params) ([]byte, error) {
	ps := &podsecurityv1.PodSecurityConfiguration{
		Defaults: podsecurityv1.PodSecurityDefaults{
			Enforce: p.PodSecurity, EnforceVersion: "latest",
			Audit: podSecurityWarn, AuditVersion: "latest",
			Warn: podSecurityWarn, WarnVersion: "latest",
		},
		// The kubelet creates the static pods' mirror pods in kube-system as soon as the API
		// server answers, before the master's agent has labelled the namespace: refused, they
		// would appear only at the kubelet's next sync of each pod, a minute or more later.
		Exemptions: podsecurityv1.PodSecurityExemptions{Namespaces: []string{metav1.NamespaceSystem}},
	}
	ps.SetGroupVersionKind(podsecurityv1.SchemeGroupVersion.WithKind("PodSecurityConfiguration"))
	raw, err := json.Marshal(ps)
	if err != nil {
		return nil, err
	}
	c := &apiserverv1.AdmissionConfiguration{Plugins: []apiserverv1.AdmissionPluginConfiguration{{
		Name:          "PodSecurity",
		Configuration: &runtime.Unknown{Raw: raw, ContentType: runtime.ContentTypeJSON},
	}}}
	return YAML(Object{GVK: gvk("apiserver.config.k8s.io", "v1", "AdmissionConfiguration"), Obj: c})
}
