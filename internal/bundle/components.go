package bundle

import "kubeup.dev/kubeup/internal/versions"

// Component is one image of the bundle and the binaries it is made of.
type Component struct {
	Name string // short name, also the archive's file name
	Ref  string
	// Source says what the binaries are built from, for the manifest.
	Source string
	// Binaries maps a built binary's file name to its path in the image.
	Binaries map[string]string
	// Userland names the root filesystems (hack/userland.sh) laid under the binaries.
	Userland   []string
	Entrypoint []string
	// Local marks an image with no registry to pull from (kubeup's own, under kubeup.dev
	// names): every bundle builds it from the binary, --source=registry too.
	Local bool
}

// Components lists the bundle's images for a Kubernetes version, with the binaries each needs.
// The control-plane binaries and etcd come from hack/toolchain.sh, the add-ons from
// hack/components.sh, pause from upstream's pause.c; the flannel CNI plugin and the probe are
// kubeup's own, under kubeup.dev names. Images whose programs
// call other programs get a userland from Debian's packages: iptables for kube-proxy and
// flanneld, busybox's cp for the flannel init containers.
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
		withUserland(kube("kube-proxy", img.Proxy), "iptables"),
		{Name: "etcd", Ref: img.Etcd, Source: "go.etcd.io/etcd/server/v3@v" + versions.ReleaseOrDefault(k8s).Etcd,
			Binaries:   map[string]string{"etcd": "/usr/local/bin/etcd", "etcdctl": "/usr/local/bin/etcdctl"},
			Entrypoint: []string{"/usr/local/bin/etcd"}},
		// Upstream's pause.c from the Kubernetes source, compiled statically by hack/bundle.sh
		// as upstream's build/pause/Makefile does.
		{Name: "pause", Ref: img.Pause, Source: PauseSource + "@" + k8s,
			Binaries: map[string]string{"pause": "/pause"}, Entrypoint: []string{"/pause"}},
		// Add-ons, from hack/components.sh. Their manifests pass only arguments, so the
		// entrypoints are upstream's.
		{Name: "coredns", Ref: img.CoreDNS, Source: "github.com/coredns/coredns@" + versions.CoreDNS,
			Binaries: map[string]string{"coredns": "/coredns"}, Entrypoint: []string{"/coredns"}},
		{Name: "metrics-server", Ref: img.MetricsServer, Source: "sigs.k8s.io/metrics-server@" + versions.MetricsServer,
			Binaries: map[string]string{"metrics-server": "/metrics-server"}, Entrypoint: []string{"/metrics-server"}},
		{Name: "flannel", Ref: img.Flannel, Source: "github.com/flannel-io/flannel@" + versions.Flannel,
			Binaries: map[string]string{"flanneld": "/opt/bin/flanneld"}, Userland: []string{"iptables", "busybox"},
			Entrypoint: []string{"/opt/bin/flanneld"}},
		// kubeup's own flannel CNI plugin, under kubeup's name: in no registry, built into every
		// bundle.
		{Name: "flannel-cni-plugin", Ref: img.FlannelCNI, Source: "kubeup.dev/kubeup/flannel-cni", Local: true,
			Binaries: map[string]string{"flannel": "/flannel"}, Userland: []string{"busybox"},
			Entrypoint: []string{"/bin/cp", "-f", "/flannel", "/opt/cni/bin/flannel"}},
		// What `kubeup verify` runs in pods to check the network phases from the inside.
		{Name: "probe", Ref: img.Probe, Source: "kubeup.dev/kubeup/kubeup-probe", Local: true,
			Binaries: map[string]string{"kubeup-probe": "/kubeup-probe"}, Entrypoint: []string{"/kubeup-probe"}},
	}
}

// PauseSource is where upstream's pause program is, in the Kubernetes source.
const PauseSource = "k8s.io/kubernetes/build/pause/linux/pause.c"

func withUserland(c Component, sets ...string) Component {
	c.Userland = append(c.Userland, sets...)
	return c
}
