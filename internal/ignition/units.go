package ignition

import (
	"kubeup.dev/kubeup/internal/agent"
	"kubeup.dev/kubeup/internal/manifests"
)

// Binaries the image installs (the Packer plugin puts them there).
const (
	KubeletBinary = "/usr/local/bin/kubelet"
	AgentBinary   = "/usr/local/bin/kubeup-agent"
	KubeletEnv    = "/etc/kubernetes/kubelet.env"
)

// kubeletUnit starts the kubelet after containerd. On a joining node kubelet.conf does not exist
// yet, so the kubelet uses the bootstrap kubeconfig to get its client certificate; on the master
// kubelet.conf is there from the start and the bootstrap flag is ignored.
const kubeletUnit = `[Unit]
Description=kubelet: the Kubernetes node agent
Documentation=https://kubernetes.io/docs/reference/command-line-tools-reference/kubelet/
Wants=network-online.target containerd.service
After=network-online.target containerd.service
StartLimitIntervalSec=0

[Service]
EnvironmentFile=-` + KubeletEnv + `
ExecStart=` + KubeletBinary + ` --config=` + manifests.KubeletConfigFile + ` --kubeconfig=` + manifests.KubeletKubeconf + ` --bootstrap-kubeconfig=` + manifests.BootstrapKubeconf + ` $KUBELET_ARGS
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
`

// agentUnit runs the kubeup agent; it needs containerd for the phase-1 test container and reports
// to the serial console, so it is ordered after containerd and logs to the console too.
const agentUnit = `[Unit]
Description=kubeup agent: phase reports and master bootstrap
Wants=network-online.target containerd.service
After=network-online.target containerd.service

[Service]
ExecStart=` + AgentBinary + ` --config=` + agent.ConfigPath + `
Restart=on-failure
RestartSec=5
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
`

func commonUnits() []Unit {
	return []Unit{
		{Name: "containerd.service", Enabled: true},
		{Name: "kubelet.service", Enabled: true, Contents: kubeletUnit},
		{Name: "kubeup-agent.service", Enabled: true, Contents: agentUnit},
	}
}
