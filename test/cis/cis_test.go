package cis_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/coreos/ignition/v2/config/v3_4/types"
	corev1 "k8s.io/api/core/v1"
	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/yaml"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/ignition"
	"kubeup.dev/kubeup/internal/machine"
	"kubeup.dev/kubeup/internal/manifests"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/test/testenv"
)

// box is one machine's rendered config: its files' contents, and the mode and owner of every
// file and directory it writes.
type box struct {
	files map[string][]byte
	modes map[string]int
	owner map[string]string // "root" unless the config names another user or group
}

// rendered is what the items are checked on.
type rendered struct {
	master, node box
	// flags are the master's static pods' command-line flags, by component.
	flags map[string]map[string]string
}

func render(t *testing.T) *rendered {
	t.Helper()
	src, err := os.ReadFile("../../configs/local.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := cluster.Parse("local.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	b, err := pki.Ensure(t.TempDir(), cfg, pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := ignition.Configs(cfg, b, ignition.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := &rendered{flags: map[string]map[string]string{}}
	var haveNode bool
	for _, c := range cs {
		ic, files := testenv.IgnitionFiles(t, c.Raw)
		m := box{files: files, modes: map[string]int{}, owner: map[string]string{}}
		owner := func(n types.Node) string {
			for _, id := range []*int{n.User.ID, n.Group.ID} {
				if id != nil && *id != 0 {
					return strconv.Itoa(*id)
				}
			}
			for _, name := range []*string{n.User.Name, n.Group.Name} {
				if name != nil && *name != "root" {
					return *name
				}
			}
			return "root"
		}
		for _, f := range ic.Storage.Files {
			m.modes[f.Path], m.owner[f.Path] = *f.Mode, owner(f.Node)
		}
		for _, d := range ic.Storage.Directories {
			m.modes[d.Path], m.owner[d.Path] = *d.Mode, owner(d.Node)
		}
		switch {
		case c.Role == cluster.RoleMaster:
			r.master = m
		case !haveNode:
			r.node, haveNode = m, true
		}
	}
	if !haveNode || r.master.files == nil {
		t.Fatal("configs/local.yaml rendered no master or no node")
	}
	for _, comp := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
		var pod corev1.Pod
		if err := yaml.Unmarshal(r.master.files[manifests.ManifestsDir+"/"+comp+".yaml"], &pod); err != nil {
			t.Fatalf("%s: %v", comp, err)
		}
		r.flags[comp] = flagMap(pod.Spec.Containers[0].Command[1:])
	}
	return r
}

func flagMap(args []string) map[string]string {
	m := map[string]string{}
	for _, a := range args {
		name, value, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		m[name] = value
	}
	return m
}

// item is one CIS recommendation. check says what is wrong with the rendered configs ("" when
// the item passes); an item without a check is one kubeup does not meet, and status says how
// (docs/security.md gives the reason).
type item struct {
	id, title string
	check     func(r *rendered) string
	status    string
}

// Status values in docs/security.md.
const (
	pass          = "pass"
	notApplicable = "not applicable"
	notMet        = "not met"
)

// mode checks that the files exist on every box that should have them, with a mode no wider
// than max, owned by root.
func mode(max int, paths ...string) func(r *rendered) string {
	return func(r *rendered) string {
		var bad []string
		for _, p := range paths {
			found := false
			for _, b := range []box{r.master, r.node} {
				m, ok := b.modes[p]
				if !ok {
					continue
				}
				found = true
				if m&^max != 0 {
					bad = append(bad, fmt.Sprintf("%s is %o, want %o or less", p, m, max))
				}
			}
			if !found {
				bad = append(bad, p+" is not written")
			}
		}
		return strings.Join(bad, "; ")
	}
}

// owned checks that every file and directory under the prefixes is root's.
func owned(prefixes ...string) func(r *rendered) string {
	return func(r *rendered) string {
		var bad []string
		n := 0
		for _, b := range []box{r.master, r.node} {
			for p, o := range b.owner {
				if slices.ContainsFunc(prefixes, func(pre string) bool { return p == pre || strings.HasPrefix(p, pre+"/") }) {
					n++
					if o != "root" {
						bad = append(bad, p+" is owned by "+o)
					}
				}
			}
		}
		if n == 0 {
			return "nothing under " + strings.Join(prefixes, ", ") + " is written"
		}
		return strings.Join(bad, "; ")
	}
}

// keys checks the modes of everything under the PKI directory: keys 0600, certificates 0644.
func keys(r *rendered, wantKey bool) string {
	var bad []string
	n := 0
	for p, m := range r.master.modes {
		if !strings.HasPrefix(p, manifests.PKIDir+"/") || strings.HasSuffix(p, ".key") != wantKey {
			continue
		}
		n++
		if max := map[bool]int{true: 0o600, false: 0o644}[wantKey]; m&^max != 0 {
			bad = append(bad, fmt.Sprintf("%s is %o", p, m))
		}
	}
	if n == 0 {
		return "no such file under " + manifests.PKIDir
	}
	return strings.Join(bad, "; ")
}

// flag checks one component's flag with want, which says what is wrong with its value.
func flag(comp, name string, want func(value string, set bool) string) func(r *rendered) string {
	return func(r *rendered) string {
		v, ok := r.flags[comp][name]
		if msg := want(v, ok); msg != "" {
			return fmt.Sprintf("%s --%s=%q: %s", comp, name, v, msg)
		}
		return ""
	}
}

func is(want string) func(string, bool) string {
	return func(v string, set bool) string {
		if !set || v != want {
			return "want " + want
		}
		return ""
	}
}

func notIs(bad string) func(string, bool) string {
	return func(v string, set bool) string {
		if set && v == bad {
			return "must not be " + bad
		}
		return ""
	}
}

func set(v string, ok bool) string {
	if !ok || v == "" {
		return "must be set"
	}
	return ""
}

func notSet(_ string, ok bool) string {
	if ok {
		return "must not be set"
	}
	return ""
}

func atLeast(n int) func(string, bool) string {
	return func(v string, set bool) string {
		if i, err := strconv.Atoi(v); !set || err != nil || i < n {
			return fmt.Sprintf("want %d or more", n)
		}
		return ""
	}
}

func lists(want string) func(string, bool) string {
	return func(v string, _ bool) string {
		if !slices.Contains(strings.Split(v, ","), want) {
			return "must include " + want
		}
		return ""
	}
}

func lacks(bad string) func(string, bool) string {
	return func(v string, _ bool) string {
		if slices.Contains(strings.Split(v, ","), bad) {
			return "must not include " + bad
		}
		return ""
	}
}

func all(checks ...func(r *rendered) string) func(r *rendered) string {
	return func(r *rendered) string {
		var bad []string
		for _, c := range checks {
			if msg := c(r); msg != "" {
				bad = append(bad, msg)
			}
		}
		return strings.Join(bad, "; ")
	}
}

// kubelet checks the kubelet's config file, the same on every machine, and that its unit and
// environment file do not pass flag, the command-line twin of the field, which would win.
func kubelet(flag string, want func(c *kubeletv1beta1.KubeletConfiguration) string) func(r *rendered) string {
	return func(r *rendered) string {
		var bad []string
		for _, b := range []box{r.master, r.node} {
			var c kubeletv1beta1.KubeletConfiguration
			if err := yaml.UnmarshalStrict(b.files[manifests.KubeletConfigFile], &c); err != nil {
				return err.Error()
			}
			if msg := want(&c); msg != "" {
				bad = append(bad, "kubelet config: "+msg)
			}
			args := string(b.files[machine.UnitDir+"/"+machine.KubeletUnit]) + " " + string(b.files[machine.KubeletEnv])
			if strings.Contains(args, "--"+flag) {
				bad = append(bad, "the kubelet's unit or environment file sets --"+flag)
			}
		}
		return strings.Join(bad, "; ")
	}
}

func strongCiphers(suites []string) string {
	if len(suites) == 0 {
		return "no cipher suites named: Go's defaults include CBC and RSA key exchange"
	}
	for _, s := range suites {
		if !slices.Contains(manifests.TLSCipherSuites, s) || !strings.HasPrefix(s, "TLS_ECDHE_") || strings.Contains(s, "CBC") {
			return s + " is not a strong suite"
		}
	}
	return ""
}

var items = []item{
	// 1.1 Control plane node configuration files.
	{id: "1.1.1", title: "API server pod specification file permissions 600", check: mode(0o600, manifests.ManifestsDir+"/kube-apiserver.yaml")},
	{id: "1.1.2", title: "API server pod specification file owned by root:root", check: owned(manifests.ManifestsDir + "/kube-apiserver.yaml")},
	{id: "1.1.3", title: "controller manager pod specification file permissions 600", check: mode(0o600, manifests.ManifestsDir+"/kube-controller-manager.yaml")},
	{id: "1.1.4", title: "controller manager pod specification file owned by root:root", check: owned(manifests.ManifestsDir + "/kube-controller-manager.yaml")},
	{id: "1.1.5", title: "scheduler pod specification file permissions 600", check: mode(0o600, manifests.ManifestsDir+"/kube-scheduler.yaml")},
	{id: "1.1.6", title: "scheduler pod specification file owned by root:root", check: owned(manifests.ManifestsDir + "/kube-scheduler.yaml")},
	{id: "1.1.7", title: "etcd pod specification file permissions 600", check: mode(0o600, manifests.ManifestsDir+"/etcd.yaml")},
	{id: "1.1.8", title: "etcd pod specification file owned by root:root", check: owned(manifests.ManifestsDir + "/etcd.yaml")},
	{id: "1.1.9", title: "Container Network Interface file permissions 600", check: cniConfigMode},
	{id: "1.1.10", title: "Container Network Interface file owned by root:root", check: cniRoot},
	{id: "1.1.11", title: "etcd data directory permissions 700", check: mode(0o700, manifests.EtcdDataDir)},
	{id: "1.1.12", title: "etcd data directory owned by etcd:etcd", status: notApplicable},
	{id: "1.1.13", title: "admin.conf (and super-admin.conf) permissions 600", check: mode(0o600, manifests.KubernetesDir+"/admin.conf", manifests.KubernetesDir+"/super-admin.conf")},
	{id: "1.1.14", title: "admin.conf (and super-admin.conf) owned by root:root", check: owned(manifests.KubernetesDir+"/admin.conf", manifests.KubernetesDir+"/super-admin.conf")},
	{id: "1.1.15", title: "scheduler.conf permissions 600", check: mode(0o600, manifests.KubernetesDir+"/scheduler.conf")},
	{id: "1.1.16", title: "scheduler.conf owned by root:root", check: owned(manifests.KubernetesDir + "/scheduler.conf")},
	{id: "1.1.17", title: "controller-manager.conf permissions 600", check: mode(0o600, manifests.KubernetesDir+"/controller-manager.conf")},
	{id: "1.1.18", title: "controller-manager.conf owned by root:root", check: owned(manifests.KubernetesDir + "/controller-manager.conf")},
	{id: "1.1.19", title: "PKI directory and files owned by root:root", check: owned(manifests.PKIDir)},
	{id: "1.1.20", title: "PKI certificate files permissions 644", check: func(r *rendered) string { return keys(r, false) }},
	{id: "1.1.21", title: "PKI key files permissions 600", check: func(r *rendered) string { return keys(r, true) }},

	// 1.2 API server.
	{id: "1.2.1", title: "anonymous requests off (answered on the health endpoints only)", check: all(
		flag("kube-apiserver", "anonymous-auth", notSet), flag("kube-apiserver", "authentication-config", set), anonymousHealthOnly)},
	{id: "1.2.2", title: "--token-auth-file not set", check: flag("kube-apiserver", "token-auth-file", notSet)},
	{id: "1.2.3", title: "DenyServiceExternalIPs admission plugin", check: flag("kube-apiserver", "enable-admission-plugins", lists("DenyServiceExternalIPs"))},
	{id: "1.2.4", title: "--kubelet-client-certificate and --kubelet-client-key", check: all(
		flag("kube-apiserver", "kubelet-client-certificate", set), flag("kube-apiserver", "kubelet-client-key", set))},
	{id: "1.2.5", title: "--kubelet-certificate-authority", check: flag("kube-apiserver", "kubelet-certificate-authority", set)},
	{id: "1.2.6", title: "--authorization-mode not AlwaysAllow", check: flag("kube-apiserver", "authorization-mode", lacks("AlwaysAllow"))},
	{id: "1.2.7", title: "--authorization-mode includes Node", check: flag("kube-apiserver", "authorization-mode", lists("Node"))},
	{id: "1.2.8", title: "--authorization-mode includes RBAC", check: flag("kube-apiserver", "authorization-mode", lists("RBAC"))},
	{id: "1.2.9", title: "EventRateLimit admission plugin", status: notMet},
	{id: "1.2.10", title: "AlwaysAdmit admission plugin not set", check: flag("kube-apiserver", "enable-admission-plugins", lacks("AlwaysAdmit"))},
	{id: "1.2.11", title: "AlwaysPullImages admission plugin", status: notApplicable},
	{id: "1.2.12", title: "ServiceAccount admission plugin", check: flag("kube-apiserver", "disable-admission-plugins", lacks("ServiceAccount"))},
	{id: "1.2.13", title: "NamespaceLifecycle admission plugin", check: flag("kube-apiserver", "disable-admission-plugins", lacks("NamespaceLifecycle"))},
	{id: "1.2.14", title: "NodeRestriction admission plugin", check: flag("kube-apiserver", "enable-admission-plugins", lists("NodeRestriction"))},
	{id: "1.2.15", title: "--profiling=false", check: flag("kube-apiserver", "profiling", is("false"))},
	{id: "1.2.16", title: "--audit-log-path", check: flag("kube-apiserver", "audit-log-path", set)},
	{id: "1.2.17", title: "--audit-log-maxage 30", check: flag("kube-apiserver", "audit-log-maxage", atLeast(30))},
	{id: "1.2.18", title: "--audit-log-maxbackup 10", check: flag("kube-apiserver", "audit-log-maxbackup", atLeast(10))},
	{id: "1.2.19", title: "--audit-log-maxsize 100", check: flag("kube-apiserver", "audit-log-maxsize", atLeast(100))},
	{id: "1.2.20", title: "--request-timeout as appropriate (the 60 s default)", check: flag("kube-apiserver", "request-timeout", notSet)},
	{id: "1.2.21", title: "--service-account-lookup=true", check: flag("kube-apiserver", "service-account-lookup", notIs("false"))},
	{id: "1.2.22", title: "--service-account-key-file", check: flag("kube-apiserver", "service-account-key-file", set)},
	{id: "1.2.23", title: "--etcd-certfile and --etcd-keyfile", check: all(flag("kube-apiserver", "etcd-certfile", set), flag("kube-apiserver", "etcd-keyfile", set))},
	{id: "1.2.24", title: "--tls-cert-file and --tls-private-key-file", check: all(flag("kube-apiserver", "tls-cert-file", set), flag("kube-apiserver", "tls-private-key-file", set))},
	{id: "1.2.25", title: "--client-ca-file", check: flag("kube-apiserver", "client-ca-file", set)},
	{id: "1.2.26", title: "--etcd-cafile", check: flag("kube-apiserver", "etcd-cafile", set)},
	{id: "1.2.27", title: "--encryption-provider-config", check: flag("kube-apiserver", "encryption-provider-config", set)},
	{id: "1.2.28", title: "encryption providers configured (Secrets encrypted, not identity first)", check: encryptionProviders},
	{id: "1.2.29", title: "strong cryptographic ciphers only", check: flag("kube-apiserver", "tls-cipher-suites", func(v string, _ bool) string {
		return strongCiphers(strings.Split(v, ","))
	})},
	{id: "1.2.30", title: "--service-account-extend-token-expiration=false", check: flag("kube-apiserver", "service-account-extend-token-expiration", is("false"))},

	// 1.3 Controller manager.
	{id: "1.3.1", title: "--terminated-pod-gc-threshold", check: flag("kube-controller-manager", "terminated-pod-gc-threshold", set)},
	{id: "1.3.2", title: "--profiling=false", check: flag("kube-controller-manager", "profiling", is("false"))},
	{id: "1.3.3", title: "--use-service-account-credentials=true", check: flag("kube-controller-manager", "use-service-account-credentials", is("true"))},
	{id: "1.3.4", title: "--service-account-private-key-file", check: flag("kube-controller-manager", "service-account-private-key-file", set)},
	{id: "1.3.5", title: "--root-ca-file", check: flag("kube-controller-manager", "root-ca-file", set)},
	{id: "1.3.6", title: "RotateKubeletServerCertificate not turned off", check: flag("kube-controller-manager", "feature-gates", func(v string, _ bool) string {
		if strings.Contains(v, "RotateKubeletServerCertificate=false") {
			return "turns RotateKubeletServerCertificate off"
		}
		return ""
	})},
	{id: "1.3.7", title: "--bind-address=127.0.0.1", check: flag("kube-controller-manager", "bind-address", is("127.0.0.1"))},

	// 1.4 Scheduler.
	{id: "1.4.1", title: "--profiling=false", check: flag("kube-scheduler", "profiling", is("false"))},
	{id: "1.4.2", title: "--bind-address=127.0.0.1", check: flag("kube-scheduler", "bind-address", is("127.0.0.1"))},

	// 2 etcd.
	{id: "2.1", title: "--cert-file and --key-file", check: all(flag("etcd", "cert-file", set), flag("etcd", "key-file", set))},
	{id: "2.2", title: "--client-cert-auth=true", check: flag("etcd", "client-cert-auth", is("true"))},
	{id: "2.3", title: "--auto-tls not true", check: flag("etcd", "auto-tls", notIs("true"))},
	{id: "2.4", title: "--peer-cert-file and --peer-key-file", check: all(flag("etcd", "peer-cert-file", set), flag("etcd", "peer-key-file", set))},
	{id: "2.5", title: "--peer-client-cert-auth=true", check: flag("etcd", "peer-client-cert-auth", is("true"))},
	{id: "2.6", title: "--peer-auto-tls not true", check: flag("etcd", "peer-auto-tls", notIs("true"))},
	{id: "2.7", title: "a unique certificate authority for etcd", check: uniqueEtcdCA},

	// 4.1 Worker node configuration files.
	{id: "4.1.1", title: "kubelet service file permissions 600", check: mode(0o600, machine.UnitDir+"/"+machine.KubeletUnit, machine.KubeletEnv)},
	{id: "4.1.2", title: "kubelet service file owned by root:root", check: owned(machine.UnitDir+"/"+machine.KubeletUnit, machine.KubeletEnv)},
	{id: "4.1.3", title: "proxy kubeconfig file permissions 600 (if it exists)", check: noProxyKubeconfig},
	{id: "4.1.4", title: "proxy kubeconfig file owned by root:root (if it exists)", check: noProxyKubeconfig},
	{id: "4.1.5", title: "kubelet kubeconfig permissions 600", check: mode(0o600, manifests.KubeletKubeconf, manifests.BootstrapKubeconf)},
	{id: "4.1.6", title: "kubelet kubeconfig owned by root:root", check: owned(manifests.KubeletKubeconf, manifests.BootstrapKubeconf)},
	{id: "4.1.7", title: "certificate authorities file permissions 644", check: mode(0o644, manifests.PKIDir+"/ca.crt")},
	{id: "4.1.8", title: "client certificate authorities file owned by root:root", check: owned(manifests.PKIDir + "/ca.crt")},
	{id: "4.1.9", title: "kubelet config.yaml permissions 600", check: mode(0o600, manifests.KubeletConfigFile)},
	{id: "4.1.10", title: "kubelet config.yaml owned by root:root", check: owned(manifests.KubeletConfigFile)},

	// 4.2 Kubelet.
	{id: "4.2.1", title: "anonymous requests off", check: kubelet("anonymous-auth", func(c *kubeletv1beta1.KubeletConfiguration) string {
		if c.Authentication.Anonymous.Enabled == nil || *c.Authentication.Anonymous.Enabled {
			return "want false"
		}
		return ""
	})},
	{id: "4.2.2", title: "authorization mode not AlwaysAllow", check: kubelet("authorization-mode", func(c *kubeletv1beta1.KubeletConfiguration) string {
		if c.Authorization.Mode != kubeletv1beta1.KubeletAuthorizationModeWebhook {
			return "want Webhook, not " + string(c.Authorization.Mode)
		}
		return ""
	})},
	{id: "4.2.3", title: "client CA file", check: kubelet("client-ca-file", func(c *kubeletv1beta1.KubeletConfiguration) string {
		if c.Authentication.X509.ClientCAFile == "" {
			return "must be set"
		}
		return ""
	})},
	{id: "4.2.4", title: "read-only port 0", check: kubelet("read-only-port", func(c *kubeletv1beta1.KubeletConfiguration) string {
		if c.ReadOnlyPort != 0 {
			return fmt.Sprintf("is %d, want 0 (or unset)", c.ReadOnlyPort)
		}
		return ""
	})},
	{id: "4.2.5", title: "streaming connection idle timeout not 0", check: kubelet("streaming-connection-idle-timeout", func(c *kubeletv1beta1.KubeletConfiguration) string {
		if c.StreamingConnectionIdleTimeout.Duration == 0 {
			return "is 0"
		}
		return ""
	})},
	{id: "4.2.6", title: "makeIPTablesUtilChains true", check: kubelet("make-iptables-util-chains", func(c *kubeletv1beta1.KubeletConfiguration) string {
		if c.MakeIPTablesUtilChains != nil && !*c.MakeIPTablesUtilChains {
			return "is false"
		}
		return ""
	})},
	{id: "4.2.7", title: "--hostname-override not set", status: notMet},
	{id: "4.2.8", title: "eventRecordQPS allows event capture", check: kubelet("event-qps", func(c *kubeletv1beta1.KubeletConfiguration) string {
		if c.EventRecordQPS != nil && *c.EventRecordQPS == 0 {
			return "is 0: events are not rate-limited, and may be dropped by the API server's flow control instead"
		}
		return ""
	})},
	{id: "4.2.9", title: "serving certificate (tlsCertFile, or one from the cluster CA)", check: kubelet("tls-cert-file", func(c *kubeletv1beta1.KubeletConfiguration) string {
		if !c.ServerTLSBootstrap && c.TLSCertFile == "" {
			return "neither a serving certificate file nor serverTLSBootstrap: the kubelet would serve a self-signed one"
		}
		return ""
	})},
	{id: "4.2.10", title: "rotateCertificates not false", check: kubelet("rotate-certificates", func(c *kubeletv1beta1.KubeletConfiguration) string {
		if !c.RotateCertificates {
			return "is false"
		}
		return ""
	})},
	{id: "4.2.11", title: "RotateKubeletServerCertificate (serverTLSBootstrap)", check: kubelet("rotate-server-certificates", func(c *kubeletv1beta1.KubeletConfiguration) string {
		if on, set := c.FeatureGates["RotateKubeletServerCertificate"]; !c.ServerTLSBootstrap || set && !on {
			return "serving certificates are not requested from the cluster CA and rotated"
		}
		return ""
	})},
	{id: "4.2.12", title: "strong cryptographic ciphers only", check: kubelet("tls-cipher-suites", func(c *kubeletv1beta1.KubeletConfiguration) string {
		return strongCiphers(c.TLSCipherSuites)
	})},
	{id: "4.2.13", title: "a limit on pod PIDs", check: kubelet("pod-max-pids", func(c *kubeletv1beta1.KubeletConfiguration) string {
		if c.PodPidsLimit == nil || *c.PodPidsLimit <= 0 {
			return "no limit"
		}
		return ""
	})},
	{id: "4.2.14", title: "seccompDefault true", check: kubelet("seccomp-default", func(c *kubeletv1beta1.KubeletConfiguration) string {
		if c.SeccompDefault == nil || !*c.SeccompDefault {
			return "want true"
		}
		return ""
	})},

	// 4.3 kube-proxy.
	{id: "4.3.1", title: "kube-proxy metrics bound to localhost", check: kubeProxyMetrics},
}

// anonymousHealthOnly: the authentication config lets anonymous requests in on the health
// endpoints and nowhere else.
func anonymousHealthOnly(r *rendered) string {
	var c apiserverv1.AuthenticationConfiguration
	if err := yaml.UnmarshalStrict(r.master.files[manifests.AuthenticationConfigFile], &c); err != nil {
		return manifests.AuthenticationConfigFile + ": " + err.Error()
	}
	if c.Anonymous == nil || !c.Anonymous.Enabled {
		return "" // no anonymous access at all
	}
	if len(c.Anonymous.Conditions) == 0 {
		return "anonymous access on every path"
	}
	for _, cond := range c.Anonymous.Conditions {
		if !slices.Contains([]string{"/healthz", "/livez", "/readyz"}, cond.Path) {
			return "anonymous access on " + cond.Path
		}
	}
	return ""
}

func encryptionProviders(r *rendered) string {
	var c apiserverv1.EncryptionConfiguration
	if err := yaml.UnmarshalStrict(r.master.files[manifests.EncryptionConfig], &c); err != nil {
		return manifests.EncryptionConfig + ": " + err.Error()
	}
	for _, rc := range c.Resources {
		if !slices.Contains(rc.Resources, "secrets") {
			continue
		}
		if len(rc.Providers) == 0 {
			return "no provider for secrets"
		}
		p := rc.Providers[0]
		if p.AESGCM == nil && p.AESCBC == nil && p.Secretbox == nil && p.KMS == nil {
			return "secrets are written with the identity provider: unencrypted"
		}
		return ""
	}
	return "secrets are not in the encryption config"
}

func uniqueEtcdCA(r *rendered) string {
	etcdCA, apiCA := r.flags["etcd"]["trusted-ca-file"], r.flags["kube-apiserver"]["client-ca-file"]
	if etcdCA == "" || etcdCA == apiCA {
		return fmt.Sprintf("etcd trusts %q, the API server's client CA is %q", etcdCA, apiCA)
	}
	if bytes.Equal(r.master.files[etcdCA], r.master.files[apiCA]) {
		return etcdCA + " and " + apiCA + " hold the same CA"
	}
	return ""
}

// flannelDaemonSet is the flannel DaemonSet the master's agent applies.
func flannelDaemonSet(r *rendered) (*corev1.PodSpec, string) {
	for _, doc := range bytes.Split(r.master.files[manifests.AddonsDir+"/30-flannel.yaml"], []byte("\n---\n")) {
		var obj struct {
			Kind string `json:"kind"`
			Spec struct {
				Template corev1.PodTemplateSpec `json:"template"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			return nil, err.Error()
		}
		if obj.Kind == "DaemonSet" {
			return &obj.Spec.Template.Spec, ""
		}
	}
	return nil, "no flannel DaemonSet in the add-ons"
}

// cniConfigMode: flannel's install-cni copies the CNI config from its ConfigMap volume with cp,
// which keeps the source's mode.
func cniConfigMode(r *rendered) string {
	spec, msg := flannelDaemonSet(r)
	if spec == nil {
		return msg
	}
	for _, v := range spec.Volumes {
		if v.ConfigMap != nil {
			if v.ConfigMap.DefaultMode == nil || *v.ConfigMap.DefaultMode&^0o600 != 0 {
				return "flannel's config volume " + v.Name + " is not mode 0600: install-cni would copy the CNI config wider"
			}
			return ""
		}
	}
	return "flannel has no config volume"
}

// cniRoot: the containers that write the CNI config and plugin run as root.
func cniRoot(r *rendered) string {
	spec, msg := flannelDaemonSet(r)
	if spec == nil {
		return msg
	}
	for _, c := range spec.InitContainers {
		if sc := c.SecurityContext; sc != nil && sc.RunAsUser != nil && *sc.RunAsUser != 0 {
			return c.Name + " runs as another user"
		}
	}
	return ""
}

// noProxyKubeconfig: kube-proxy runs as a DaemonSet with its ServiceAccount's token; no
// machine has a kube-proxy kubeconfig file.
func noProxyKubeconfig(r *rendered) string {
	for _, b := range []box{r.master, r.node} {
		for p := range b.files {
			if strings.Contains(p, "proxy") && (strings.HasSuffix(p, ".conf") || strings.HasSuffix(p, "kubeconfig")) {
				return p + " exists: check its mode and owner"
			}
		}
	}
	return ""
}

func kubeProxyMetrics(r *rendered) string {
	data := r.master.files[manifests.AddonsDir+"/20-kube-proxy.yaml"]
	i := bytes.Index(data, []byte("metricsBindAddress: 127.0.0.1:"))
	if i < 0 {
		return "kube-proxy's config does not bind its metrics to 127.0.0.1"
	}
	return ""
}

func TestCISItems(t *testing.T) {
	r := render(t)
	for _, it := range items {
		switch {
		case it.check == nil && it.status == "":
			t.Errorf("%s: no check and no status", it.id)
		case it.check != nil && it.status != "":
			t.Errorf("%s: a checked item passes; its status is not %q", it.id, it.status)
		case it.check != nil:
			if msg := it.check(r); msg != "" {
				t.Errorf("CIS %s (%s): %s", it.id, it.title, msg)
			}
		}
	}
}

// TestCISItemsCheckSomething: each check fails on a config that breaks its item, so a check
// that passes whatever it is given cannot hide among the others.
func TestCISItemsCheckSomething(t *testing.T) {
	broken := func(edit func(r *rendered)) *rendered {
		r := render(t)
		edit(r)
		return r
	}
	for _, tc := range []struct {
		id   string
		edit func(r *rendered)
	}{
		{"1.1.1", func(r *rendered) { r.master.modes[manifests.ManifestsDir+"/kube-apiserver.yaml"] = 0o644 }},
		{"1.1.19", func(r *rendered) { r.master.owner[manifests.PKIDir+"/ca.key"] = "1000" }},
		{"1.1.21", func(r *rendered) { r.master.modes[manifests.PKIDir+"/sa.key"] = 0o640 }},
		{"1.2.1", func(r *rendered) { r.flags["kube-apiserver"]["anonymous-auth"] = "true" }},
		{"1.2.1", func(r *rendered) {
			r.master.files[manifests.AuthenticationConfigFile] = []byte("apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\nanonymous:\n  enabled: true\n")
		}},
		{"1.2.3", func(r *rendered) { r.flags["kube-apiserver"]["enable-admission-plugins"] = "NodeRestriction" }},
		{"1.2.17", func(r *rendered) { r.flags["kube-apiserver"]["audit-log-maxage"] = "7" }},
		{"1.2.29", func(r *rendered) {
			r.flags["kube-apiserver"]["tls-cipher-suites"] = "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_RSA_WITH_AES_128_CBC_SHA"
		}},
		{"1.3.7", func(r *rendered) { r.flags["kube-controller-manager"]["bind-address"] = "0.0.0.0" }},
		{"2.7", func(r *rendered) { r.flags["etcd"]["trusted-ca-file"] = r.flags["kube-apiserver"]["client-ca-file"] }},
		{"4.1.1", func(r *rendered) { r.node.modes[machine.UnitDir+"/"+machine.KubeletUnit] = 0o644 }},
		{"4.1.9", func(r *rendered) { r.node.modes[manifests.KubeletConfigFile] = 0o644 }},
		{"4.2.1", func(r *rendered) {
			r.node.files[manifests.KubeletConfigFile] = bytes.Replace(r.node.files[manifests.KubeletConfigFile], []byte("enabled: false"), []byte("enabled: true"), 1)
		}},
		{"4.2.4", func(r *rendered) {
			r.node.files[machine.KubeletEnv] = append(r.node.files[machine.KubeletEnv], []byte("KUBELET_EXTRA=--read-only-port=10255\n")...)
		}},
		{"4.2.14", func(r *rendered) {
			r.master.files[manifests.KubeletConfigFile] = bytes.Replace(r.master.files[manifests.KubeletConfigFile], []byte("seccompDefault: true"), []byte("seccompDefault: false"), 1)
		}},
	} {
		var it *item
		for i := range items {
			if items[i].id == tc.id {
				it = &items[i]
			}
		}
		if it == nil || it.check == nil {
			t.Fatalf("%s: no checked item", tc.id)
		}
		if msg := it.check(broken(tc.edit)); msg == "" {
			t.Errorf("CIS %s passed a config that breaks it", tc.id)
		}
	}
}

// TestSecurityDocListsEveryItem: docs/security.md has a row for every item, with the status
// the table above gives it, and no row for an item that is not there.
func TestSecurityDocListsEveryItem(t *testing.T) {
	f, err := os.Open("../../docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows := map[string]string{} // id → status
	s := bufio.NewScanner(f)
	for s.Scan() {
		cells := strings.Split(s.Text(), "|")
		if len(cells) < 4 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "CIS ") {
			continue
		}
		rows[strings.TrimPrefix(strings.TrimSpace(cells[1]), "CIS ")] = strings.TrimSpace(cells[2])
	}
	for _, it := range items {
		want := it.status
		if it.check != nil {
			want = pass
		}
		got, ok := rows[it.id]
		switch {
		case !ok:
			t.Errorf("docs/security.md has no row for CIS %s (%s): add | CIS %s | %s | ... |", it.id, it.title, it.id, want)
		case got != want:
			t.Errorf("docs/security.md lists CIS %s as %q; it is %q", it.id, got, want)
		}
		delete(rows, it.id)
	}
	for id := range rows {
		t.Errorf("docs/security.md lists CIS %s, which the test does not know", id)
	}
}
