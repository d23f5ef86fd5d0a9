package manifests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/tools/clientcmd"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	kubeproxyconfigv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"

	"kubeup.dev/kubeup/internal/versions"
)

// addonTestParams deliberately uses values that differ from every upstream default, so a
// hard-coded default in a manifest shows up as a mismatch.
func addonTestParams() Params {
	return Params{
		ClusterName:       "test",
		KubernetesVersion: versions.Kubernetes,
		Images: versions.Images{
			Proxy:         "registry.test/proxy:t1",
			CoreDNS:       "registry.test/coredns:t2",
			Flannel:       "registry.test/flannel:t3",
			FlannelCNI:    "registry.test/flannel-cni:t4",
			MetricsServer: "registry.test/metrics-server:t5",
		},
		MasterName:    "master-0",
		MasterIP:      "192.0.2.10",
		Endpoint:      "https://192.0.2.10:7443",
		APIServerPort: 7443,
		PodCIDR:       "10.123.0.0/16",
		ServiceCIDR:   "10.45.0.0/16",
		DNSDomain:     "corp.example",
		DNSServiceIP:  "10.45.0.10",
	}
}

type addonFunc struct {
	name string
	fn   func(Params) ([]Object, error)
	// images maps container name (init or regular) to the Params image it must run.
	images func(versions.Images) map[string]string
}

var addonFuncs = []addonFunc{
	{"KubeProxy", KubeProxy, func(i versions.Images) map[string]string {
		return map[string]string{"kube-proxy": i.Proxy}
	}},
	{"Flannel", Flannel, func(i versions.Images) map[string]string {
		return map[string]string{"install-cni-plugin": i.FlannelCNI, "install-cni": i.Flannel, "kube-flannel": i.Flannel}
	}},
	{"CoreDNS", CoreDNS, func(i versions.Images) map[string]string {
		return map[string]string{"coredns": i.CoreDNS}
	}},
	{"MetricsServer", MetricsServer, func(i versions.Images) map[string]string {
		return map[string]string{"metrics-server": i.MetricsServer}
	}},
}

// addonDecoder decodes strictly (unknown or duplicate fields are errors) with only the API
// groups the add-ons use, and without defaulting, so a decoded object must equal the original.
var addonDecoder = func() runtime.Decoder {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, rbacv1.AddToScheme, apiregistrationv1.AddToScheme,
		kubeproxyconfigv1alpha1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return serializer.NewCodecFactory(s, serializer.EnableStrict).UniversalDeserializer()
}()

func addonBuild(t *testing.T, f addonFunc, p Params) ([]Object, []byte) {
	t.Helper()
	objs, err := f.fn(p)
	if err != nil {
		t.Fatalf("%s: %v", f.name, err)
	}
	if len(objs) == 0 {
		t.Fatalf("%s returned no objects", f.name)
	}
	b, err := YAML(objs...)
	if err != nil {
		t.Fatalf("%s: YAML: %v", f.name, err)
	}
	return objs, b
}

// addonSplit splits a YAML stream into its documents.
func addonSplit(t *testing.T, b []byte) [][]byte {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("split YAML stream: %v", err)
		}
		if len(bytes.TrimSpace(doc)) > 0 {
			docs = append(docs, doc)
		}
	}
}

func TestAddonsRoundTrip(t *testing.T) {
	p := addonTestParams()
	for _, f := range addonFuncs {
		t.Run(f.name, func(t *testing.T) {
			objs, b := addonBuild(t, f, p)
			docs := addonSplit(t, b)
			if len(docs) != len(objs) {
				t.Fatalf("YAML stream has %d documents, want %d", len(docs), len(objs))
			}
			for i, doc := range docs {
				got, gotGVK, err := addonDecoder.Decode(doc, nil, nil)
				if err != nil {
					t.Fatalf("document %d: %v\n%s", i, err, doc)
				}
				if *gotGVK != objs[i].GVK {
					t.Errorf("document %d: decoded as %v, want %v", i, *gotGVK, objs[i].GVK)
				}
				if !apiequality.Semantic.DeepEqual(got, objs[i].Obj) {
					t.Errorf("document %d (%s): decoded object differs from the original\n%s", i, objs[i].GVK.Kind, doc)
				}
			}
		})
	}
}

func TestAddonsDeterministic(t *testing.T) {
	p := addonTestParams()
	for _, f := range addonFuncs {
		_, a := addonBuild(t, f, p)
		_, b := addonBuild(t, f, p)
		if !bytes.Equal(a, b) {
			t.Errorf("%s: output differs between two calls", f.name)
		}
	}
}

// addonKindRank is the apply order: what a kind references comes before it.
var addonKindRank = map[string]int{
	"Namespace":          0,
	"ServiceAccount":     1,
	"ClusterRole":        2,
	"Role":               2,
	"ClusterRoleBinding": 3,
	"RoleBinding":        3,
	"ConfigMap":          4,
	"DaemonSet":          5,
	"Deployment":         5,
	"Service":            6,
	"APIService":         7,
}

var addonClusterScoped = map[string]bool{
	"Namespace": true, "ClusterRole": true, "ClusterRoleBinding": true, "APIService": true,
}

// TestAddonsStructure checks what the apiserver would only reject at apply time, or accept
// and then never schedule: order, namespaces, references between objects, selectors, images.
func TestAddonsStructure(t *testing.T) {
	p := addonTestParams()
	for _, f := range addonFuncs {
		t.Run(f.name, func(t *testing.T) {
			objs, _ := addonBuild(t, f, p)
			namespaces := map[string]bool{metav1.NamespaceSystem: true}
			has := map[string]bool{} // "Kind namespace/name"
			rank := -1
			for _, o := range objs {
				r, ok := addonKindRank[o.GVK.Kind]
				if !ok {
					t.Fatalf("unexpected kind %s", o.GVK.Kind)
				}
				if r < rank {
					t.Errorf("%s comes after a kind that depends on it", o.GVK.Kind)
				}
				rank = r
				m := o.Obj.(metav1.Object)
				if addonClusterScoped[o.GVK.Kind] != (m.GetNamespace() == "") {
					t.Errorf("%s %s: namespace %q is wrong for its scope", o.GVK.Kind, m.GetName(), m.GetNamespace())
				}
				if m.GetNamespace() != "" && !namespaces[m.GetNamespace()] {
					t.Errorf("%s %s: namespace %s is not created before it", o.GVK.Kind, m.GetName(), m.GetNamespace())
				}
				if o.GVK.Kind == "Namespace" {
					namespaces[m.GetName()] = true
				}
				key := o.GVK.Kind + " " + m.GetNamespace() + "/" + m.GetName()
				if has[key] {
					t.Errorf("duplicate %s", key)
				}
				has[key] = true
			}

			wantImages := f.images(p.Images)
			gotImages := map[string]string{}
			for _, o := range objs {
				var subjects []rbacv1.Subject
				var roleKey string
				switch obj := o.Obj.(type) {
				case *rbacv1.ClusterRoleBinding:
					subjects, roleKey = obj.Subjects, "ClusterRole /"+obj.RoleRef.Name
				case *rbacv1.RoleBinding:
					subjects, roleKey = obj.Subjects, obj.RoleRef.Kind+" "+obj.Namespace+"/"+obj.RoleRef.Name
					if obj.RoleRef.Kind == "ClusterRole" {
						roleKey = "ClusterRole /" + obj.RoleRef.Name
					}
				}
				if roleKey != "" && !has[roleKey] && !addonBootstrapRoles[roleKey] {
					t.Errorf("%s %s: %s is neither in the output nor bootstrapped by the apiserver",
						o.GVK.Kind, o.Obj.(metav1.Object).GetName(), roleKey)
				}
				for _, s := range subjects {
					if s.Kind == rbacv1.ServiceAccountKind && !has["ServiceAccount "+s.Namespace+"/"+s.Name] {
						t.Errorf("%s %s: subject ServiceAccount %s/%s is not in the output",
							o.GVK.Kind, o.Obj.(metav1.Object).GetName(), s.Namespace, s.Name)
					}
				}

				ns, sel, tmpl, ok := addonWorkload(o)
				if !ok {
					continue
				}
				name := o.Obj.(metav1.Object).GetName()
				selector, err := metav1.LabelSelectorAsSelector(sel)
				if err != nil || selector.Empty() || !selector.Matches(labels.Set(tmpl.Labels)) {
					t.Errorf("%s: selector %v does not select its pod template labels %v", name, sel, tmpl.Labels)
				}
				spec := tmpl.Spec
				if !has["ServiceAccount "+ns+"/"+spec.ServiceAccountName] {
					t.Errorf("%s: ServiceAccount %q is not in the output", name, spec.ServiceAccountName)
				}
				volumes := map[string]corev1.Volume{}
				for _, v := range spec.Volumes {
					volumes[v.Name] = v
					if v.ConfigMap != nil && !has["ConfigMap "+ns+"/"+v.ConfigMap.Name] {
						t.Errorf("%s: volume %s uses ConfigMap %s, which is not in the output", name, v.Name, v.ConfigMap.Name)
					}
				}
				for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
					gotImages[c.Name] = c.Image
					if c.ImagePullPolicy != corev1.PullIfNotPresent {
						t.Errorf("%s/%s: imagePullPolicy %q", name, c.Name, c.ImagePullPolicy)
					}
					for _, vm := range c.VolumeMounts {
						if _, ok := volumes[vm.Name]; !ok {
							t.Errorf("%s/%s: mount %s has no volume", name, c.Name, vm.Name)
						}
					}
				}
			}
			if !apiequality.Semantic.DeepEqual(gotImages, wantImages) {
				t.Errorf("container images = %v, want %v", gotImages, wantImages)
			}
		})
	}
}

// addonBootstrapRoles are the roles the add-ons bind to that the apiserver creates itself.
var addonBootstrapRoles = map[string]bool{
	"ClusterRole /system:node-proxier":                           true,
	"ClusterRole /system:auth-delegator":                         true,
	"Role kube-system/extension-apiserver-authentication-reader": true,
}

func addonWorkload(o Object) (ns string, sel *metav1.LabelSelector, tmpl corev1.PodTemplateSpec, ok bool) {
	switch obj := o.Obj.(type) {
	case *appsv1.DaemonSet:
		return obj.Namespace, obj.Spec.Selector, obj.Spec.Template, true
	case *appsv1.Deployment:
		return obj.Namespace, obj.Spec.Selector, obj.Spec.Template, true
	}
	return "", nil, corev1.PodTemplateSpec{}, false
}

// addonFind returns the object of the given kind and name, failing the test if it is absent.
func addonFind[T runtime.Object](t *testing.T, objs []Object, kind, name string) T {
	t.Helper()
	for _, o := range objs {
		if o.GVK.Kind == kind && o.Obj.(metav1.Object).GetName() == name {
			obj, ok := o.Obj.(T)
			if !ok {
				t.Fatalf("%s %s has Go type %T", kind, name, o.Obj)
			}
			return obj
		}
	}
	var zero T
	t.Fatalf("no %s %s in the output", kind, name)
	return zero
}

func addonKindsAndNames(objs []Object) []string {
	var s []string
	for _, o := range objs {
		m := o.Obj.(metav1.Object)
		s = append(s, o.GVK.Kind+" "+m.GetNamespace()+"/"+m.GetName())
	}
	return s
}

func TestAddonsObjects(t *testing.T) {
	want := map[string][]string{
		"KubeProxy": {
			"ServiceAccount kube-system/kube-proxy",
			"Role kube-system/kube-proxy",
			"ClusterRoleBinding /kubeadm:node-proxier",
			"RoleBinding kube-system/kube-proxy",
			"ConfigMap kube-system/kube-proxy",
			"DaemonSet kube-system/kube-proxy",
		},
		"Flannel": {
			"Namespace /kube-flannel",
			"ServiceAccount kube-flannel/flannel",
			"ClusterRole /flannel",
			"ClusterRoleBinding /flannel",
			"ConfigMap kube-flannel/kube-flannel-cfg",
			"DaemonSet kube-flannel/kube-flannel-ds",
		},
		"CoreDNS": {
			"ServiceAccount kube-system/coredns",
			"ClusterRole /system:coredns",
			"ClusterRoleBinding /system:coredns",
			"ConfigMap kube-system/coredns",
			"Deployment kube-system/coredns",
			"Service kube-system/kube-dns",
		},
		"MetricsServer": {
			"ServiceAccount kube-system/metrics-server",
			"ClusterRole /system:aggregated-metrics-reader",
			"ClusterRole /system:metrics-server",
			"RoleBinding kube-system/metrics-server-auth-reader",
			"ClusterRoleBinding /metrics-server:system:auth-delegator",
			"ClusterRoleBinding /system:metrics-server",
			"Deployment kube-system/metrics-server",
			"Service kube-system/metrics-server",
			"APIService /v1beta1.metrics.k8s.io",
		},
	}
	for _, f := range addonFuncs {
		objs, _ := addonBuild(t, f, addonTestParams())
		if got := addonKindsAndNames(objs); !slices.Equal(got, want[f.name]) {
			t.Errorf("%s objects:\n got %q\nwant %q", f.name, got, want[f.name])
		}
	}
}

func TestKubeProxyConfig(t *testing.T) {
	p := addonTestParams()
	objs, _ := addonBuild(t, addonFuncs[0], p)
	cm := addonFind[*corev1.ConfigMap](t, objs, "ConfigMap", "kube-proxy")

	obj, _, err := addonDecoder.Decode([]byte(cm.Data["config.conf"]), nil, nil)
	if err != nil {
		t.Fatalf("config.conf: %v\n%s", err, cm.Data["config.conf"])
	}
	cfg, ok := obj.(*kubeproxyconfigv1alpha1.KubeProxyConfiguration)
	if !ok {
		t.Fatalf("config.conf decodes to %T", obj)
	}
	if cfg.Mode != "iptables" {
		t.Errorf("mode = %q, want iptables", cfg.Mode)
	}
	if cfg.ClusterCIDR != p.PodCIDR {
		t.Errorf("clusterCIDR = %q, want %q", cfg.ClusterCIDR, p.PodCIDR)
	}
	if cfg.ClientConnection.Kubeconfig != "/var/lib/kube-proxy/kubeconfig.conf" {
		t.Errorf("clientConnection.kubeconfig = %q", cfg.ClientConnection.Kubeconfig)
	}

	kc, err := clientcmd.Load([]byte(cm.Data["kubeconfig.conf"]))
	if err != nil {
		t.Fatalf("kubeconfig.conf: %v", err)
	}
	ctx := kc.Contexts[kc.CurrentContext]
	if ctx == nil || kc.Clusters[ctx.Cluster] == nil || kc.AuthInfos[ctx.AuthInfo] == nil {
		t.Fatalf("kubeconfig.conf: current context %q is incomplete", kc.CurrentContext)
	}
	if c := kc.Clusters[ctx.Cluster]; c.Server != p.Endpoint || c.CertificateAuthority != kubeProxySACAFile {
		t.Errorf("kubeconfig cluster = %s with CA %s, want %s with CA %s", c.Server, c.CertificateAuthority, p.Endpoint, kubeProxySACAFile)
	}
	if u := kc.AuthInfos[ctx.AuthInfo]; u.TokenFile != kubeProxySATokenFile {
		t.Errorf("kubeconfig tokenFile = %q, want %q", u.TokenFile, kubeProxySATokenFile)
	}

	ds := addonFind[*appsv1.DaemonSet](t, objs, "DaemonSet", "kube-proxy")
	c := ds.Spec.Template.Spec.Containers[0]
	if !slices.Contains(c.Command, "--config=/var/lib/kube-proxy/config.conf") ||
		!slices.Contains(c.Command, "--hostname-override=$(NODE_NAME)") {
		t.Errorf("kube-proxy command = %q", c.Command)
	}
	if len(c.Env) != 1 || c.Env[0].Name != "NODE_NAME" || c.Env[0].ValueFrom == nil ||
		c.Env[0].ValueFrom.FieldRef == nil || c.Env[0].ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
		t.Errorf("kube-proxy env = %+v, want NODE_NAME from spec.nodeName", c.Env)
	}
	if !ds.Spec.Template.Spec.HostNetwork {
		t.Error("kube-proxy must run with hostNetwork")
	}
}

func TestFlannelConfig(t *testing.T) {
	p := addonTestParams()
	objs, _ := addonBuild(t, addonFuncs[1], p)
	cm := addonFind[*corev1.ConfigMap](t, objs, "ConfigMap", "kube-flannel-cfg")

	var net struct {
		Network        string
		EnableNFTables *bool
		Backend        struct{ Type string }
	}
	if err := json.Unmarshal([]byte(cm.Data["net-conf.json"]), &net); err != nil {
		t.Fatalf("net-conf.json: %v", err)
	}
	if net.Network != p.PodCIDR {
		t.Errorf("net-conf.json Network = %q, want %q", net.Network, p.PodCIDR)
	}
	if net.EnableNFTables == nil || *net.EnableNFTables || net.Backend.Type != "vxlan" {
		t.Errorf("net-conf.json = %s", cm.Data["net-conf.json"])
	}

	var cni struct {
		Name       string `json:"name"`
		CNIVersion string `json:"cniVersion"`
		Plugins    []struct {
			Type     string          `json:"type"`
			Delegate map[string]bool `json:"delegate"`
			Caps     map[string]bool `json:"capabilities"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal([]byte(cm.Data["cni-conf.json"]), &cni); err != nil {
		t.Fatalf("cni-conf.json: %v", err)
	}
	if cni.Name != "cbr0" || cni.CNIVersion != "0.3.1" || len(cni.Plugins) != 2 ||
		cni.Plugins[0].Type != "flannel" || !cni.Plugins[0].Delegate["hairpinMode"] || !cni.Plugins[0].Delegate["isDefaultGateway"] ||
		cni.Plugins[1].Type != "portmap" || !cni.Plugins[1].Caps["portMappings"] {
		t.Errorf("cni-conf.json = %s", cm.Data["cni-conf.json"])
	}

	// flanneld talks to the endpoint itself: the kubernetes Service needs kube-proxy first.
	ds := addonFind[*appsv1.DaemonSet](t, objs, "DaemonSet", "kube-flannel-ds")
	env := map[string]string{}
	for _, e := range ds.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e.Value
	}
	if got := "https://" + env["KUBERNETES_SERVICE_HOST"] + ":" + env["KUBERNETES_SERVICE_PORT"]; got != p.Endpoint {
		t.Errorf("flanneld reaches the API at %s, want the endpoint %s", got, p.Endpoint)
	}

	ns := addonFind[*corev1.Namespace](t, objs, "Namespace", "kube-flannel")
	// All three modes: with enforce alone, every flannel pod would warn at the cluster's
	// default warn level (restricted).
	for _, mode := range []string{"enforce", "warn", "audit"} {
		if ns.Labels["pod-security.kubernetes.io/"+mode] != "privileged" || ns.Labels["k8s-app"] != "flannel" {
			t.Errorf("kube-flannel namespace labels = %v, want %s privileged", ns.Labels, mode)
		}
	}
}

func TestCoreDNS(t *testing.T) {
	p := addonTestParams()
	objs, _ := addonBuild(t, addonFuncs[2], p)
	svc := addonFind[*corev1.Service](t, objs, "Service", "kube-dns")
	if svc.Spec.ClusterIP != p.DNSServiceIP {
		t.Errorf("kube-dns clusterIP = %q, want %q", svc.Spec.ClusterIP, p.DNSServiceIP)
	}
	cf := addonFind[*corev1.ConfigMap](t, objs, "ConfigMap", "coredns").Data["Corefile"]
	for _, want := range []string{
		"kubernetes " + p.DNSDomain + " in-addr.arpa ip6.arpa {",
		"disable success " + p.DNSDomain + "\n",
		"disable denial " + p.DNSDomain + "\n",
		"forward . /etc/resolv.conf {",
	} {
		if !strings.Contains(cf, want) {
			t.Errorf("Corefile lacks %q:\n%s", want, cf)
		}
	}
	if strings.Count(cf, "{") != strings.Count(cf, "}") {
		t.Errorf("Corefile braces do not balance:\n%s", cf)
	}
	d := addonFind[*appsv1.Deployment](t, objs, "Deployment", "coredns")
	if d.Spec.Template.Spec.DNSPolicy != corev1.DNSDefault {
		t.Errorf("coredns dnsPolicy = %q, want Default (it must not resolve through itself)", d.Spec.Template.Spec.DNSPolicy)
	}
}

func TestMetricsServerVerifiesKubelets(t *testing.T) {
	objs, _ := addonBuild(t, addonFuncs[3], addonTestParams())
	d := addonFind[*appsv1.Deployment](t, objs, "Deployment", "metrics-server")
	c := d.Spec.Template.Spec.Containers[0]
	for _, a := range slices.Concat(c.Command, c.Args) {
		if strings.HasPrefix(a, "--kubelet-insecure-tls") {
			t.Errorf("metrics-server runs with %s", a)
		}
	}
	const caFlag = "--kubelet-certificate-authority="
	i := slices.IndexFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, caFlag) })
	if i < 0 {
		t.Fatalf("metrics-server args %q lack %s", c.Args, caFlag)
	}
	caPath := strings.TrimPrefix(c.Args[i], caFlag)
	// The CA file must be mounted read-only from the node's file of the same path.
	mount := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == caPath })
	if mount < 0 || !c.VolumeMounts[mount].ReadOnly {
		t.Fatalf("%s is not mounted read-only: %+v", caPath, c.VolumeMounts)
	}
	vol := slices.IndexFunc(d.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == c.VolumeMounts[mount].Name })
	if vol < 0 {
		t.Fatalf("no volume %s", c.VolumeMounts[mount].Name)
	}
	hp := d.Spec.Template.Spec.Volumes[vol].HostPath
	if hp == nil || hp.Path != caPath || hp.Type == nil || *hp.Type != corev1.HostPathFile {
		t.Errorf("CA volume = %+v, want hostPath %s of type File", d.Spec.Template.Spec.Volumes[vol], caPath)
	}

	api := addonFind[*apiregistrationv1.APIService](t, objs, "APIService", "v1beta1.metrics.k8s.io")
	if s := api.Spec.Service; s == nil || s.Name != "metrics-server" || s.Namespace != metav1.NamespaceSystem {
		t.Errorf("APIService service = %+v", api.Spec.Service)
	}
	if api.Spec.Group != "metrics.k8s.io" || api.Spec.Version != "v1beta1" {
		t.Errorf("APIService serves %s/%s", api.Spec.Group, api.Spec.Version)
	}
}

func TestAddonsRejectBadParams(t *testing.T) {
	cases := []struct {
		name   string
		fn     func(Params) ([]Object, error)
		mutate func(*Params)
	}{
		{"kube-proxy without image", KubeProxy, func(p *Params) { p.Images.Proxy = "" }},
		{"kube-proxy host bits in pod CIDR", KubeProxy, func(p *Params) { p.PodCIDR = "10.123.4.0/16" }},
		{"kube-proxy plain-http endpoint", KubeProxy, func(p *Params) { p.Endpoint = "http://192.0.2.10:7443" }},
		{"flannel without CNI image", Flannel, func(p *Params) { p.Images.FlannelCNI = "" }},
		{"flannel IPv6 pod CIDR", Flannel, func(p *Params) { p.PodCIDR = "fd00:10::/56" }},
		{"flannel garbage pod CIDR", Flannel, func(p *Params) { p.PodCIDR = `10.0.0.0/8", "Backend": {` }},
		{"coredns domain injecting Corefile", CoreDNS, func(p *Params) { p.DNSDomain = "cluster.local {\n}\nevil" }},
		{"coredns empty domain", CoreDNS, func(p *Params) { p.DNSDomain = "" }},
		{"coredns service IP outside service CIDR", CoreDNS, func(p *Params) { p.DNSServiceIP = "10.46.0.10" }},
		{"coredns bad service IP", CoreDNS, func(p *Params) { p.DNSServiceIP = "10.45.0" }},
		{"metrics-server without image", MetricsServer, func(p *Params) { p.Images.MetricsServer = "" }},
	}
	for _, c := range cases {
		p := addonTestParams()
		c.mutate(&p)
		if objs, err := c.fn(p); err == nil {
			t.Errorf("%s: no error, got %d objects", c.name, len(objs))
		}
	}
}

// The shipped images must work as Params too, not just the test ones.
func TestAddonsWithPinnedImages(t *testing.T) {
	p := addonTestParams()
	p.Images = versions.ImagesFor(versions.Kubernetes)
	for _, f := range addonFuncs {
		addonBuild(t, f, p)
	}
}
