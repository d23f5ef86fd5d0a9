package qemu

import (
	"fmt"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// HostKubeconfig is a bundle kubeconfig pointed at the master's API port as the host sees it
// (forwarded to 127.0.0.1:port), for `kubeup up` and the bench alike.
func HostKubeconfig(kubeconfig []byte, port int) (*clientcmdapi.Config, error) {
	kc, err := clientcmd.Load(kubeconfig)
	if err != nil {
		return nil, err
	}
	for _, c := range kc.Clusters {
		c.Server = fmt.Sprintf("https://127.0.0.1:%d", port)
	}
	return kc, nil
}
