package manifests

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"
)

// ContainerdSocket is where the image's containerd listens.
const ContainerdSocket = "unix:///run/containerd/containerd.sock"

// KubeletConfig is the same on every machine: webhook authentication and authorization against
// the API server, anonymous access off, client certificates rotated by the kubelet itself and
// serving certificates requested from the cluster CA (approved by the master agent), so
// metrics-server and the API server can verify kubelets instead of skipping TLS verification.
// docs/security.md lists the CIS items it meets.
func KubeletConfig(p Params) ([]byte, error) {
	c := &kubeletv1beta1.KubeletConfiguration{
		Authentication: kubeletv1beta1.KubeletAuthentication{
			Anonymous: kubeletv1beta1.KubeletAnonymousAuthentication{Enabled: ptr.To(false)},
			Webhook:   kubeletv1beta1.KubeletWebhookAuthentication{Enabled: ptr.To(true), CacheTTL: metav1.Duration{Duration: 2 * time.Minute}},
			X509:      kubeletv1beta1.KubeletX509Authentication{ClientCAFile: PKIDir + "/ca.crt"},
		},
		Authorization:            kubeletv1beta1.KubeletAuthorization{Mode: kubeletv1beta1.KubeletAuthorizationModeWebhook},
		CgroupDriver:             "systemd",
		ClusterDNS:               []string{p.DNSServiceIP},
		ClusterDomain:            p.DNSDomain,
		ContainerRuntimeEndpoint: ContainerdSocket,
		RotateCertificates:       true,
		ServerTLSBootstrap:       true,
		StaticPodPath:            ManifestsDir,
		FailSwapOn:               ptr.To(true),
		TLSMinVersion:            "VersionTLS12",
		TLSCipherSuites:          TLSCipherSuites,
		// The kubelet's default, written out: a zero here reads as "no timeout" to a reviewer
		// (CIS 4.2.5), although the kubelet would default it.
		StreamingConnectionIdleTimeout: metav1.Duration{Duration: 4 * time.Hour},
		// The kubelet checks the kernel settings it depends on instead of changing them: the
		// machine's sysctl.d file sets them at boot (machine.Sysctls), and a kubelet that finds
		// them otherwise refuses to start rather than run on a kernel it did not expect.
		ProtectKernelDefaults: true,
		// Every container gets the runtime's default seccomp profile unless its pod asks for
		// another (privileged ones get none, as before).
		SeccompDefault: ptr.To(true),
		// A fork bomb in one pod cannot take the node's process table.
		PodPidsLimit: ptr.To[int64](4096),
	}
	if p.RuntimeRequestTimeout > 0 {
		c.RuntimeRequestTimeout = metav1.Duration{Duration: p.RuntimeRequestTimeout}
	}
	return YAML(Object{GVK: gvk("kubelet.config.k8s.io", "v1beta1", "KubeletConfiguration"), Obj: c})
}
