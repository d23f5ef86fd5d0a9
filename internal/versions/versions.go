// Package versions holds the pinned versions of every component kubeup installs and the image
// references they run under. The offline bundle builds upstream's images from upstream's source
// under upstream's references, so manifests are identical online and offline; kubeup's own
// programs (the verify probe, the flannel CNI plugin) go under kubeup.dev names.
package versions

// Kubernetes is the default release: the newest in releases.txt, which a cluster config gets
// when it names none.
var Kubernetes = Releases[0].Kubernetes

// Supported lists the Kubernetes versions a cluster config may ask for, newest first.
var Supported = supported(Releases)

// Etcd is the default release's etcd version.
var Etcd = Releases[0].Etcd

// Component versions, pinned and the same for every release. Each is built from source at
// exactly this version by the bundle.
const (
	// Pause is the tag upstream gives the pause.c of the pinned Kubernetes source (TAG in its
	// build/pause/Makefile, the same in every release here), which the bundle compiles.
	Pause         = "3.10.2"
	CoreDNS       = "v1.15.0"
	Flannel       = "v0.28.10"
	MetricsServer = "v0.8.0"
	// FlannelCNI is kubeup's own flannel CNI plugin (flannel-cni), not upstream's
	// flannel-cni-plugin: it goes under a kubeup.dev name.
	FlannelCNI = "v1"
	// Probe is kubeup's own check program (kubeup-probe), run by `kubeup verify` in pods.
	Probe = "v1"
)

// PauseImage is the pod sandbox image containerd runs (sandbox_image).
const PauseImage = "registry.k8s.io/pause:" + Pause

// Images are the upstream image references the manifests use.
type Images struct {
	APIServer, ControllerManager, Scheduler, Proxy string
	Etcd, Pause, CoreDNS                           string
	Flannel, MetricsServer                         string
	// FlannelCNI and Probe have no upstream registry: they are kubeup's, built into every
	// bundle.
	FlannelCNI, Probe string
}

// ImagesFor returns the image references for a Kubernetes version. A version that is not in
// releases.txt (refused by validation before this is reached) gets the default release's etcd.
func ImagesFor(k8s string) Images {
	r := ReleaseOrDefault(k8s)
	return Images{
		APIServer:         "registry.k8s.io/kube-apiserver:" + k8s,
		ControllerManager: "registry.k8s.io/kube-controller-manager:" + k8s,
		Scheduler:         "registry.k8s.io/kube-scheduler:" + k8s,
		Proxy:             "registry.k8s.io/kube-proxy:" + k8s,
		Etcd:              "registry.k8s.io/etcd:" + r.Etcd + "-0",
		Pause:             PauseImage,
		CoreDNS:           "registry.k8s.io/coredns/coredns:" + CoreDNS,
		Flannel:           "ghcr.io/flannel-io/flannel:" + Flannel,
		FlannelCNI:        "kubeup.dev/flannel-cni-plugin:" + FlannelCNI,
		MetricsServer:     "registry.k8s.io/metrics-server/metrics-server:" + MetricsServer,
		Probe:             "kubeup.dev/probe:" + Probe,
	}
}
