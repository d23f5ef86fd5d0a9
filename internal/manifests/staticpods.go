package manifests

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// StaticPod is one control-plane manifest for /etc/kubernetes/manifests.
type StaticPod struct {
	File string // file name under ManifestsDir
	Pod  *corev1.Pod
}

// StaticPods returns the control plane of the master: etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler, with the flags kubeadm v1.37 gives them
// plus encryption at rest and audit logging.
func StaticPods(p Params) []StaticPod {
	return []StaticPod{
		{File: "etcd.yaml", Pod: etcdPod(p)},
		{File: "kube-apiserver.yaml", Pod: apiserverPod(p)},
		{File: "kube-controller-manager.yaml", Pod: controllerManagerPod(p)},
		{File: "kube-scheduler.yaml", Pod: schedulerPod(p)},
	}
}

// flags renders a flag map as kubeadm does: --name=value, sorted by name, so output is stable.
func flags(binary string, m map[string]string) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	out := []string{binary}
	for _, k := range names {
		out = append(out, "--"+k+"="+m[k])
	}
	return out
}

func pki(f string) string { return PKIDir + "/" + f }

func apiserverPod(p Params) *corev1.Pod {
	port := strconv.Itoa(p.APIServerPort)
	cmd := flags("kube-apiserver", map[string]string{
		"admission-control-config-file":      AdmissionConfigFile,
		"advertise-address":                  p.MasterIP,
		"allow-privileged":                   "true",
		"audit-log-maxage":                   "30",
		"audit-log-maxbackup":                "10",
		"audit-log-maxsize":                  "100",
		"audit-log-path":                     AuditLogDir + "/audit.log",
		"audit-policy-file":                  AuditPolicy,
		"authentication-config":              AuthenticationConfigFile, // anonymous requests for AnonymousPaths only
		"authorization-mode":                 "Node,RBAC",
		"client-ca-file":                     pki("ca.crt"),
		"enable-admission-plugins":           "DenyServiceExternalIPs,NodeRestriction",
		"enable-bootstrap-token-auth":        "true",
		"encryption-provider-config":         EncryptionConfig,
		"etcd-cafile":                        pki("etcd/ca.crt"),
		"etcd-certfile":                      pki("apiserver-etcd-client.crt"),
		"etcd-keyfile":                       pki("apiserver-etcd-client.key"),
		"etcd-servers":                       "https://127.0.0.1:2379",
		"kubelet-certificate-authority":      pki("ca.crt"),
		"kubelet-client-certificate":         pki("apiserver-kubelet-client.crt"),
		"kubelet-client-key":                 pki("apiserver-kubelet-client.key"),
		"kubelet-preferred-address-types":    "InternalIP,ExternalIP,Hostname",
		"profiling":                          "false",
		"proxy-client-cert-file":             pki("front-proxy-client.crt"),
		"proxy-client-key-file":              pki("front-proxy-client.key"),
		"requestheader-allowed-names":        "front-proxy-client",
		"requestheader-client-ca-file":       pki("front-proxy-ca.crt"),
		"requestheader-extra-headers-prefix": "X-Remote-Extra-",
		"requestheader-group-headers":        "X-Remote-Group",
		"requestheader-username-headers":     "X-Remote-User",
		"secure-port":                        port,
		// Service account tokens expire when they say: projected tokens are renewed by the
		// kubelet long before, and every component kubeup runs reloads them (CIS 1.2.30).
		"service-account-extend-token-expiration": "false",
		"service-account-issuer":                  "https://kubernetes.default.svc." + p.DNSDomain,
		"service-account-key-file":                pki("sa.pub"),
		"service-account-signing-key-file":        pki("sa.key"),
		"service-cluster-ip-range":                p.ServiceCIDR,
		"tls-cert-file":                           pki("apiserver.crt"),
		"tls-cipher-suites":                       strings.Join(TLSCipherSuites, ","),
		"tls-min-version":                         "VersionTLS12",
		"tls-private-key-file":                    pki("apiserver.key"),
	})
	c := container("kube-apiserver", p.Images.APIServer, cmd, "250m")
	c.LivenessProbe = probe("/livez", p.MasterIP, p.APIServerPort, corev1.URISchemeHTTPS, 8)
	c.ReadinessProbe = probe("/readyz", p.MasterIP, p.APIServerPort, corev1.URISchemeHTTPS, 3)
	c.StartupProbe = probe("/livez", p.MasterIP, p.APIServerPort, corev1.URISchemeHTTPS, startupFailures)
	mounts := []mount{
		{"k8s-certs", PKIDir, true, corev1.HostPathDirectoryOrCreate},
		{"ca-certs", "/etc/ssl/certs", true, corev1.HostPathDirectoryOrCreate},
		{"encryption-config", EncryptionConfig, true, corev1.HostPathFile},
		{"audit-policy", AuditPolicy, true, corev1.HostPathFile},
		{"authentication-config", AuthenticationConfigFile, true, corev1.HostPathFile},
		{"admission-config", AdmissionConfigFile, true, corev1.HostPathFile},
		{"audit-log", AuditLogDir, false, corev1.HostPathDirectoryOrCreate},
	}
	pod := staticPod("kube-apiserver", "control-plane", c, mounts)
	pod.Annotations = map[string]string{"kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint": p.MasterIP + ":" + port}
	return pod
}

// Leader election of the controller-manager and the scheduler, longer than the defaults
// (15 s, 10 s, 2 s). kubeup has one master, so there is no standby to hand over to quickly;
// what matters is that a busy API server does not make the only instance give up its lease and
// exit. Measured under QEMU TCG with three machines on two cores: with the defaults both
// crash-looped ("Leaderelection lost", lease updates timing out) and Services got no
// endpoints for minutes. The cost: a restarted instance may wait up to a lease duration for
// its predecessor's lease to expire.
const (
	leaseDuration = "60s"
	renewDeadline = "40s"
	retryPeriod   = "5s"
)

// LeaderElection is the leader election above as flags, for a peer given the same tuning
// (the kubeadm cluster `make bench` measures kubeup against).
var LeaderElection = map[string]string{
	"leader-elect-lease-duration": leaseDuration,
	"leader-elect-renew-deadline": renewDeadline,
	"leader-elect-retry-period":   retryPeriod,
}

func controllerManagerPod(p Params) *corev1.Pod {
	kc := KubernetesDir + "/controller-manager.conf"
	args := map[string]string{
		"allocate-node-cidrs":              "true", // flannel reads each node's podCIDR
		"authentication-kubeconfig":        kc,
		"authorization-kubeconfig":         kc,
		"bind-address":                     "127.0.0.1",
		"client-ca-file":                   pki("ca.crt"),
		"cluster-cidr":                     p.PodCIDR,
		"cluster-name":                     p.ClusterName,
		"cluster-signing-cert-file":        pki("ca.crt"),
		"cluster-signing-key-file":         pki("ca.key"),
		"controllers":                      "*,bootstrapsigner,tokencleaner",
		"kubeconfig":                       kc,
		"leader-elect":                     "true",
		"leader-elect-lease-duration":      leaseDuration,
		"leader-elect-renew-deadline":      renewDeadline,
		"leader-elect-retry-period":        retryPeriod,
		"profiling":                        "false",
		"requestheader-client-ca-file":     pki("front-proxy-ca.crt"),
		"root-ca-file":                     pki("ca.crt"),
		"service-account-private-key-file": pki("sa.key"),
		"service-cluster-ip-range":         p.ServiceCIDR,
		// Finished pods are deleted past this many (CIS 1.3.1); the default, 12500, lets a
		// small master's etcd fill with them.
		"terminated-pod-gc-threshold":     "1000",
		"use-service-account-credentials": "true",
	}
	if p.NodeCertificateTTL != "" {
		args["cluster-signing-duration"] = p.NodeCertificateTTL
	}
	cmd := flags("kube-controller-manager", args)
	c := container("kube-controller-manager", p.Images.ControllerManager, cmd, "200m")
	c.LivenessProbe = probe("/healthz", "127.0.0.1", 10257, corev1.URISchemeHTTPS, 8)
	c.StartupProbe = probe("/healthz", "127.0.0.1", 10257, corev1.URISchemeHTTPS, startupFailures)
	mounts := []mount{
		{"k8s-certs", PKIDir, true, corev1.HostPathDirectoryOrCreate},
		{"ca-certs", "/etc/ssl/certs", true, corev1.HostPathDirectoryOrCreate},
		{"kubeconfig", kc, true, corev1.HostPathFileOrCreate},
		// The flex-volume plugin dir kubeadm mounts; the controller-manager logs errors without it.
		{"flexvolume-dir", "/usr/libexec/kubernetes/kubelet-plugins/volume/exec", false, corev1.HostPathDirectoryOrCreate},
	}
	pod := staticPod("kube-controller-manager", "control-plane", c, mounts)
	pod.Spec.InitContainers = []corev1.Container{waitForAPIServer(p)}
	return pod
}

// waitForAPIServer is the controller-manager's init container: it waits until the API server's
// /healthz answers 200. kube-controller-manager gives the API server 10 seconds to become
// healthy once it holds its lease and then exits. Its lease needs only its own Role, which the
// API server's rbac/bootstrap-roles hook makes early; the hook's other roles, which /healthz
// waits for, take minutes on an emulated machine. Measured: one fresh `make up` in three had
// the controller-manager exit that way (one restart, and a minute lost waiting for its own
// lease to expire). The check trusts only the cluster CA and goes to the address the
// certificate names.
func waitForAPIServer(p Params) corev1.Container {
	url := fmt.Sprintf("https://%s/healthz", net.JoinHostPort(p.MasterIP, strconv.Itoa(p.APIServerPort)))
	c := container("wait-for-apiserver", p.Images.Probe, []string{"/kubeup-probe", "wait", "--ca", pki("ca.crt"), url}, "10m")
	c.VolumeMounts = []corev1.VolumeMount{{Name: "k8s-certs", MountPath: PKIDir, ReadOnly: true}}
	return c
}

func schedulerPod(p Params) *corev1.Pod {
	kc := KubernetesDir + "/scheduler.conf"
	cmd := flags("kube-scheduler", map[string]string{
		"authentication-kubeconfig":   kc,
		"authorization-kubeconfig":    kc,
		"bind-address":                "127.0.0.1",
		"kubeconfig":                  kc,
		"leader-elect":                "true",
		"leader-elect-lease-duration": leaseDuration,
		"leader-elect-renew-deadline": renewDeadline,
		"leader-elect-retry-period":   retryPeriod,
		"profiling":                   "false",
	})
	c := container("kube-scheduler", p.Images.Scheduler, cmd, "100m")
	c.LivenessProbe = probe("/livez", "127.0.0.1", 10259, corev1.URISchemeHTTPS, 8)
	c.ReadinessProbe = probe("/readyz", "127.0.0.1", 10259, corev1.URISchemeHTTPS, 3)
	c.StartupProbe = probe("/livez", "127.0.0.1", 10259, corev1.URISchemeHTTPS, startupFailures)
	return staticPod("kube-scheduler", "control-plane", c, []mount{{"kubeconfig", kc, true, corev1.HostPathFileOrCreate}})
}

// EtcdPeerURL is the peer URL the master's etcd runs with, as the one member of its cluster
// (named after the master). A restore makes its data directory for the same member.
func EtcdPeerURL(masterIP string) string { return "https://" + masterIP + ":2380" }

func etcdPod(p Params) *corev1.Pod {
	peer := EtcdPeerURL(p.MasterIP)
	client := "https://" + p.MasterIP + ":2379"
	cmd := flags("etcd", map[string]string{
		"advertise-client-urls":       client,
		"cert-file":                   pki("etcd/server.crt"),
		"client-cert-auth":            "true",
		"data-dir":                    EtcdDataDir,
		"initial-advertise-peer-urls": peer,
		"initial-cluster":             p.MasterName + "=" + peer,
		"key-file":                    pki("etcd/server.key"),
		"listen-client-urls":          "https://127.0.0.1:2379," + client,
		"listen-metrics-urls":         "http://127.0.0.1:2381",
		"listen-peer-urls":            peer,
		"name":                        p.MasterName,
		"peer-cert-file":              pki("etcd/peer.crt"),
		"peer-client-cert-auth":       "true",
		"peer-key-file":               pki("etcd/peer.key"),
		"peer-trusted-ca-file":        pki("etcd/ca.crt"),
		"snapshot-count":              "10000",
		"trusted-ca-file":             pki("etcd/ca.crt"),
	})
	c := container("etcd", p.Images.Etcd, cmd, "100m")
	c.Resources.Requests[corev1.ResourceMemory] = resource.MustParse("100Mi")
	c.LivenessProbe = probe("/livez", "127.0.0.1", 2381, corev1.URISchemeHTTP, 8)
	c.ReadinessProbe = probe("/readyz", "127.0.0.1", 2381, corev1.URISchemeHTTP, 3)
	c.StartupProbe = probe("/readyz", "127.0.0.1", 2381, corev1.URISchemeHTTP, startupFailures)
	mounts := []mount{
		{"etcd-data", EtcdDataDir, false, corev1.HostPathDirectoryOrCreate},
		{"etcd-certs", PKIDir + "/etcd", true, corev1.HostPathDirectoryOrCreate},
	}
	pod := staticPod("etcd", "etcd", c, mounts)
	pod.Annotations = map[string]string{"kubeadm.kubernetes.io/etcd.advertise-client-urls": client}
	return pod
}

type mount struct {
	name, path string
	readOnly   bool
	typ        corev1.HostPathType
}

func container(name, image string, cmd []string, cpu string) corev1.Container {
	return corev1.Container{
		Name:            name,
		Image:           image,
		ImagePullPolicy: corev1.PullIfNotPresent, // images are preloaded; never pulled on an offline machine
		Command:         cmd,
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse(cpu),
		}},
	}
}

// startupFailures bounds a control-plane component's first answer: 10 minutes, where kubeadm
// allows 4. A startup probe that gives up kills a component that is still starting, and the next
// start does all the work again: on a slow day under TCG a starved API server, restarted by its
// liveness probe, needed more than 4 minutes to pass its startup probe again (its /livez
// answers 403 until the RBAC bootstrap roles exist) and was killed again, four restarts in 15
// minutes. The startup probe stops once it passes, so a healthy machine never waits on this.
const startupFailures = 60

// StartupProbeFailures is startupFailures, for the same peer.
const StartupProbeFailures = startupFailures

// probe is kubeadm's probe shape; under TCG emulation the control plane starts in minutes, so
// failureThreshold is generous rather than tuned for real hardware.
func probe(path, host string, port int, scheme corev1.URIScheme, failures int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: path, Host: host, Port: intstr.FromInt32(int32(port)), Scheme: scheme,
		}},
		InitialDelaySeconds: 10,
		PeriodSeconds:       10,
		TimeoutSeconds:      15,
		FailureThreshold:    failures,
	}
}

func staticPod(name, tier string, c corev1.Container, mounts []mount) *corev1.Pod {
	pod := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: "kube-system",
			Labels:    map[string]string{"component": name, "tier": tier},
		},
		Spec: corev1.PodSpec{
			HostNetwork:       true,
			PriorityClassName: "system-node-critical",
			SecurityContext:   &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
		},
	}
	for _, m := range mounts {
		typ := m.typ
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: m.name, MountPath: m.path, ReadOnly: m.readOnly})
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: m.name,
			VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: m.path, Type: &typ}}})
	}
	pod.Spec.Containers = []corev1.Container{c}
	return pod
}

// StaticPodYAML serializes one static pod.
func StaticPodYAML(sp StaticPod) ([]byte, error) {
	b, err := YAML(Object{GVK: gvk("", "v1", "Pod"), Obj: sp.Pod})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", sp.File, err)
	}
	return b, nil
}
