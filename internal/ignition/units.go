package ignition

import (
	"strings"

	"kubeup.dev/kubeup/internal/machine"
	"kubeup.dev/kubeup/internal/manifests"
)

// kubeletUnit starts the kubelet after containerd. On a joining node kubelet.conf does not exist
// yet, so the kubelet uses the bootstrap kubeconfig to get its client certificate; on the master
// kubelet.conf is there from the start and the bootstrap flag is ignored.
//
// It loads the node spec's kernel modules itself first: systemd-modules-load does at boot, but
// on a starved host its two-minute timeout has run out before, and without br_netfilter
// kube-proxy and flannel crash-loop. modprobe returns at once for a module already loaded; the
// leading "-" lets the kubelet start anyway, and phase 1 reports a module still missing.
func kubeletUnit(l machine.Layout) string {
	return `[Unit]
Description=kubelet: the Kubernetes node agent
Documentation=https://kubernetes.io/docs/reference/command-line-tools-reference/kubelet/
Wants=network-online.target ` + machine.ContainerdUnit + `
After=network-online.target ` + machine.ContainerdUnit + `
StartLimitIntervalSec=0

[Service]
EnvironmentFile=-` + machine.KubeletEnv + `
ExecStartPre=-` + l.Modprobe + ` -a ` + strings.Join(machine.Modules, " ") + `
ExecStart=` + l.Kubelet() + ` --config=` + manifests.KubeletConfigFile + ` --kubeconfig=` + manifests.KubeletKubeconf + ` --bootstrap-kubeconfig=` + manifests.BootstrapKubeconf + ` $KUBELET_ARGS
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
`
}

// agentUnit runs the kubeup agent; it needs containerd for the phase-1 test container and reports
// to the serial console, so it is ordered after containerd and logs to the console too.
func agentUnit(l machine.Layout) string {
	return `[Unit]
Description=kubeup agent: phase reports and master bootstrap
Wants=network-online.target ` + machine.ContainerdUnit + `
After=network-online.target ` + machine.ContainerdUnit + `

[Service]
ExecStart=` + l.Agent() + ` --config=` + machine.AgentConfig + `
Restart=on-failure
RestartSec=5
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
`
}

// addUnits adds every machine's units for the image's layout l. The kubelet's unit is a file
// of mode 0600 (CIS 4.1.1), which Ignition's systemd section cannot give: it writes units 0644.
// Enabling it still goes through that section, as for a unit the image has.
func addUnits(p *Plan, l machine.Layout) {
	p.file(machine.UnitDir+"/"+machine.KubeletUnit, 0o600, []byte(kubeletUnit(l)))
	p.Units = []Unit{
		{Name: machine.ContainerdUnit, Enabled: true},
		{Name: machine.KubeletUnit, Enabled: true},
		{Name: machine.AgentUnit, Enabled: true, Contents: agentUnit(l)},
	}
}
