package ignition

import (
	"encoding/json"
	"fmt"

	"github.com/coreos/ignition/v2/config/v3_4"
	"github.com/coreos/ignition/v2/config/v3_4/types"
	"k8s.io/utils/ptr"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/machine"
	"kubeup.dev/kubeup/internal/manifests"
)

// WithEtcdRestore returns the master's config raw (as rendered for cfg, or as recorded when it
// booted) with an etcd snapshot in it, and the one-shot unit that restores it into etcd's data
// directory before the kubelet starts etcd: how a master gets a snapshot's data back through
// its config, the one channel every target has (an upgrade's rollback to its snapshot). The
// etcd disk itself is kept; the member it held is kept beside the restored one.
func WithEtcdRestore(raw []byte, cfg *cluster.Config, snapshot []byte) ([]byte, error) {
	parent, rep, err := v3_4.Parse(raw)
	if err != nil || len(rep.Entries) > 0 {
		return nil, fmt.Errorf("the master's config does not parse: %v %s", err, rep.String())
	}
	m := cfg.Master()
	if m == nil {
		return nil, fmt.Errorf("the cluster config has no master")
	}
	layout, err := machine.LayoutOf(cfg.OS)
	if err != nil {
		return nil, fmt.Errorf("os: %w", err)
	}
	res, err := newRenderer().contents(snapshot)
	if err != nil {
		return nil, err
	}
	unit := `[Unit]
Description=kubeup: etcd's data from the snapshot in this machine's config, before etcd starts
ConditionPathExists=` + machine.EtcdRestoreSnapshot + `
RequiresMountsFor=` + manifests.EtcdDataDir + `
Before=` + machine.KubeletUnit + `

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=` + layout.Agent() + ` restore-etcd --name=` + m.Name + ` --peer-url=` + manifests.EtcdPeerURL(m.IP().String()) + `
StandardOutput=journal+console
StandardError=journal+console

[Install]
RequiredBy=` + machine.KubeletUnit + `
`
	child := types.Config{Ignition: types.Ignition{Version: SpecVersion}}
	child.Storage.Files = []types.File{{
		Node:          types.Node{Path: machine.EtcdRestoreSnapshot, Overwrite: ptr.To(true)},
		FileEmbedded1: types.FileEmbedded1{Mode: ptr.To(0o600), Contents: res},
	}}
	child.Systemd.Units = []types.Unit{{Name: machine.EtcdRestoreUnit, Enabled: ptr.To(true), Contents: ptr.To(unit)}}
	out, err := json.Marshal(v3_4.Merge(parent, child))
	if err != nil {
		return nil, err
	}
	return out, Check(out)
}
