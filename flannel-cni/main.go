// Command flannel is kubeup's flannel CNI plugin (see internal/flannelcni). It is installed as
// /opt/cni/bin/flannel by the flannel DaemonSet's init container and called by the runtime.
package main

import (
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"

	"kubeup.dev/kubeup/internal/flannelcni"
)

func main() {
	skel.PluginMainFuncs(skel.CNIFuncs{Add: flannelcni.Add, Del: flannelcni.Del, Check: flannelcni.Check},
		version.All, "kubeup flannel CNI plugin")
}
