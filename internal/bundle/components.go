package bundle

import "kubeup.dev/kubeup/internal/versions"

// Component is one image of the bundle and the binaries it is made of.
type Component struct {
	Name string // short name, also the archive's file name
	Ref  string
	// Source says what the binaries are built from, for the manifest.
	Source string
	// Binaries maps a built binary's file name to its path in the image.
	Binaries   map[string]string
	Entrypoint []string
}

// Components lists the bundle's images for a Kubernetes version, with the binaries each needs.
// The control-plane binaries and etcd come from hack/toolchain.sh, the add-ons from
// hack/components.sh; pause is kubeup's own. Not yet here: flannel and its CNI plugin, whose
// images need a userland (cp, iptables) besides their binaries, and kube-proxy's iptables.
func Components(k8s string) []Component {
	img := versions.ImagesFor(k8s)
	kube := func(name, ref string) Component {
		return Component{Name: name, Ref: ref, Source: "k8s.io/kubernetes/cmd/" + name + "@" + k8s,
			Binaries: map[string]string{name: "/usr/local/bin/" + name}, Entrypoint: []string{"/usr/local/bin/" + name}}
	}
	return []Component{
		kube("kube-apiserver", img.APIServer),
		kube("kube-controller-manager", img.ControllerManager),
		kube("kube-scheduler", img.Scheduler),
		kube("kube-proxy", img.Proxy),
		{Name: "etcd", Ref: img.Etcd, Source: "go.etcd.io/etcd/server/v3@v" + versions.Etcd,
			Binaries:   map[string]string{"etcd": "/usr/local/bin/etcd", "etcdctl": "/usr/local/bin/etcdctl"},
			Entrypoint: []string{"/usr/local/bin/etcd"}},
		{Name: "pause", Ref: img.Pause, Source: "kubeup.dev/kubeup/internal/bundle/pause",
			Binaries: map[string]string{"pause": "/pause"}, Entrypoint: []string{"/pause"}},
		// Add-ons, from hack/components.sh. Their manifests pass only arguments, so the
		// entrypoints are upstream's.
		{Name: "coredns", Ref: img.CoreDNS, Source: "github.com/coredns/coredns@" + versions.CoreDNS,
			Binaries: map[string]string{"coredns": "/coredns"}, Entrypoint: []string{"/coredns"}},
		{Name: "metrics-server", Ref: img.MetricsServer, Source: "sigs.k8s.io/metrics-server@" + versions.MetricsServer,
			Binaries: map[string]string{"metrics-server": "/metrics-server"}, Entrypoint: []string{"/metrics-server"}},
	}
}
