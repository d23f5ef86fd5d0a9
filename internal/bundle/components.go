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
// The control-plane binaries and etcd come from hack/toolchain.sh; pause is kubeup's own.
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
	}
}
