package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/machine"
	kaws "kubeup.dev/kubeup/internal/provider/aws"
	"kubeup.dev/kubeup/internal/provider/aws/awstest"
	"kubeup.dev/kubeup/internal/provider/targets"
	"kubeup.dev/kubeup/internal/upgrade"
)

// The upgrade's machine steps as kubeup upgrade wires them to each cloud's provider, against
// the stand-ins: what Replace, RefreshNodes and Restore do to the machines. The order, the
// waits and the checks between the steps are upgrade.Runner's, tested against a fake cluster
// in internal/upgrade; the whole upgrade runs for real on QEMU (make e2e-upgrade).

// upgradeSteps is the runner kubeup upgrade makes for the cluster of config path, from release
// from to the config's, with the new machines booting image.
func upgradeSteps(t *testing.T, path, state, from, image string, out *bytes.Buffer) (*upgrade.Runner, *upgrade.Progress) {
	t.Helper()
	cfg, err := cluster.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	w := &where{config: path, state: state, kubeconfig: targets.HostKubeconfig(state, cfg.Target)}
	plan := upgrade.Plan{Cluster: cfg.Name, From: from, To: cfg.KubernetesVersion}
	opt := upgradeOptions{to: cfg.KubernetesVersion, image: image, maxUnavailable: 1, machineTimeout: time.Minute, drainTimeout: time.Minute}
	r, prog, err := newUpgradeRunner(t.Context(), out, w, cfg, state, fake.NewClientset(), plan, opt)
	if err != nil {
		t.Fatalf("the upgrade's runner: %v\n%s", err, out.String())
	}
	return r, prog
}

// liveMaster is the master's running instance.
func liveMaster(t *testing.T, srv *awstest.Server) awstest.Instance {
	t.Helper()
	for _, i := range srv.Instances() {
		if i.Tags[kaws.RoleTag] == cluster.RoleMaster && i.State == "running" {
			return i
		}
	}
	t.Fatalf("no running master: %+v", srv.Instances())
	return awstest.Instance{}
}

// awsUp brings configs/local.yaml up on AWS against the stand-in, a master and 2 nodes, and
// returns the stand-in, the config, its file and the state directory.
func awsUp(t *testing.T) (*awstest.Server, *cluster.Config, string, string) {
	t.Helper()
	srv := awsStandIn(t)
	pollDelay = 10 * time.Millisecond // the stand-in changes at once
	t.Cleanup(func() { pollDelay = 0 })
	cfg, path := localAs(t, cluster.TargetAWS, awsBlock)
	state := filepath.Join(t.TempDir(), "state")
	var out bytes.Buffer
	if err := up(t.Context(), &out, cfg, state, cloudOptions{numNodes: 2, configPath: path}); err != nil {
		t.Fatalf("up: %v\n%s", err, out.String())
	}
	return srv, cfg, path, state
}

// TestUpgradeOnAWSReplacesThroughTheProvider: on AWS the upgrade records the master's AMI for
// its rollback; the master is replaced by a new instance from the new AMI with the same etcd
// volume and Elastic IP; the nodes by a new launch template version and an instance refresh,
// each old node held for its drain; a master that failed goes back to its old AMI, with the
// snapshot in its config when etcd's data must come back too.
func TestUpgradeOnAWSReplacesThroughTheProvider(t *testing.T) {
	srv, _, path, state := awsUp(t)
	var out bytes.Buffer
	const oldAMI, newAMI = "ami-0123456789abcdef0", "ami-0fedcba9876543210"
	before := liveMaster(t, srv)
	var oldNodes []string
	for _, i := range srv.Instances() {
		if i.Group != "" {
			oldNodes = append(oldNodes, strings.Split(i.PrivateDNS, ".")[0])
		}
	}
	if before.AMI != oldAMI || len(oldNodes) != 2 {
		t.Fatalf("after up: master %+v, nodes %v", before, oldNodes)
	}

	out.Reset()
	r, prog := upgradeSteps(t, path, state, "v1.36.3", newAMI, &out)
	if prog.FromImage != oldAMI {
		t.Errorf("the progress record's old image is %q, want the master's AMI %s", prog.FromImage, oldAMI)
	}
	if r.RefreshNodes == nil {
		t.Fatal("the nodes of an Auto Scaling group are not refreshed through it")
	}
	ctx := t.Context()
	if err := r.Replace(ctx, "master"); err != nil {
		t.Fatalf("replace the master: %v\n%s", err, out.String())
	}
	now := liveMaster(t, srv)
	if now.ID == before.ID || now.AMI != newAMI || now.PublicIP != before.PublicIP || now.PrivateIP != before.PrivateIP {
		t.Errorf("the replaced master is %+v; want a new instance from %s at %s and %s", now, newAMI, before.PublicIP, before.PrivateIP)
	}
	if vols := srv.Volumes(); len(vols) != 1 || !slices.Contains(slices.Collect(maps.Values(vols)), now.ID) {
		t.Errorf("volumes %v: want the one etcd volume, attached to %s", vols, now.ID)
	}

	var held []string
	if err := r.RefreshNodes(ctx, func(_ context.Context, node string) error { held = append(held, node); return nil }); err != nil {
		t.Fatalf("refresh the nodes: %v\n%s", err, out.String())
	}
	slices.Sort(held)
	slices.Sort(oldNodes)
	if !slices.Equal(held, oldNodes) {
		t.Errorf("held for their drains: %v, want the old nodes %v", held, oldNodes)
	}
	live := 0
	for _, i := range srv.Instances() {
		if i.Group != "" && i.State == "running" {
			live++
			if i.AMI != newAMI {
				t.Errorf("node %s runs %s after the refresh, want %s", i.ID, i.AMI, newAMI)
			}
		}
	}
	if live != 2 {
		t.Errorf("%d nodes run after the refresh, want 2", live)
	}

	// The rollback: the old AMI, the same volume and address.
	if err := r.Restore(ctx, "master", ""); err != nil {
		t.Fatalf("restore the master: %v\n%s", err, out.String())
	}
	if back := liveMaster(t, srv); back.AMI != oldAMI || back.PublicIP != before.PublicIP {
		t.Errorf("the restored master is %+v; want %s at %s", back, oldAMI, before.PublicIP)
	}
	// The rollback to the snapshot: the same, with the snapshot and its restore unit in the
	// master's config (behind the S3 pointer); a damaged snapshot is refused before anything.
	snap := testSnapshot(t, 4<<10)
	damaged := filepath.Join(t.TempDir(), "damaged.db")
	if err := os.WriteFile(damaged, []byte("not a snapshot"), 0o600); err != nil {
		t.Fatal(err)
	}
	id := liveMaster(t, srv).ID
	if err := r.Restore(ctx, "master", damaged); err == nil || liveMaster(t, srv).ID != id {
		t.Errorf("a rollback with a damaged snapshot: %v; want it refused with the master left as it is", err)
	}
	if err := r.Restore(ctx, "master", snap); err != nil {
		t.Fatalf("restore the master with the snapshot: %v\n%s", err, out.String())
	}
	if back := liveMaster(t, srv); back.ID == id || back.AMI != oldAMI || back.PublicIP != before.PublicIP {
		t.Errorf("the master restored with the snapshot is %+v; want a new instance from %s at %s", back, oldAMI, before.PublicIP)
	}
	if vols := srv.Volumes(); len(vols) != 1 {
		t.Errorf("volumes %v: want the one etcd volume, kept", vols)
	}
	raw, _, ok := srv.Object("kubeup-test-configs", "local/master.ign")
	if !ok || !bytes.Contains(raw, []byte(machine.EtcdRestoreUnit)) || !bytes.Contains(raw, []byte(machine.EtcdRestoreSnapshot)) {
		t.Errorf("the master's config behind the S3 pointer has no snapshot to restore (%v)", ok)
	}
}

// TestConfigChangeOnAWSNamesTheChangedMachines: EC2 cannot give back a config behind its S3
// pointer, and a node's user-data carries the pool's token, so each instance is tagged with the
// SHA-256 of its config as rendered from the bundle. At the same release, a render that changed
// nothing changes no machine; a node snippet changes every node of the group and not the
// master, and once the group is refreshed, nothing; a master snippet changes the master alone;
// a new AMI changes every machine.
func TestConfigChangeOnAWSNamesTheChangedMachines(t *testing.T) {
	srv, cfg, path, state := awsUp(t)
	var out bytes.Buffer
	nodes := func() []string {
		var names []string
		for _, i := range srv.Instances() {
			if i.Group != "" && i.State != "shutting-down" && i.State != "terminated" {
				names = append(names, strings.Split(i.PrivateDNS, ".")[0])
			}
		}
		slices.Sort(names)
		return names
	}
	changes := func(image string) map[string]string {
		t.Helper()
		cfg, err := cluster.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := machineChanges(t.Context(), cfg, state, upgradeOptions{to: cfg.KubernetesVersion, image: image}, nil, nodes())
		if err != nil || got == nil {
			t.Fatalf("machineChanges: %v, %v; want what each instance's tag tells", got, err)
		}
		return got
	}
	// want is the changes with the master's reason and every node's.
	want := func(master, node string) map[string]string {
		m := map[string]string{"master": master}
		for _, n := range nodes() {
			m[n] = node
		}
		return m
	}
	if n := nodes(); len(n) != 2 {
		t.Fatalf("after up the group runs %v, want 2 nodes", n)
	}
	if got := changes(""); !maps.Equal(got, want("", "")) {
		t.Errorf("nothing changed, yet the changes are %v", got)
	}
	if got := changes("ami-0fedcba9876543210"); !maps.Equal(got, want("image", "image")) {
		t.Errorf("with a new AMI the changes are %v, want every machine's image", got)
	}
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	snippet := func(role string) string {
		return "butane:\n  " + role + ": |\n    variant: fcos\n    version: 1.5.0\n    storage:\n      files:\n        - path: /etc/kubeup-test\n          contents:\n            inline: changed\n"
	}
	if err := os.WriteFile(path, append(bytes.Clone(src), snippet("node")...), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := changes(""); !maps.Equal(got, want("", "config")) {
		t.Errorf("with a node snippet the changes are %v, want every node's config and not the master's", got)
	}
	r, _ := upgradeSteps(t, path, state, cfg.KubernetesVersion, "", &out)
	if err := r.RefreshNodes(t.Context(), func(context.Context, string) error { return nil }); err != nil {
		t.Fatalf("refresh the nodes: %v\n%s", err, out.String())
	}
	if got := changes(""); !maps.Equal(got, want("", "")) {
		t.Errorf("after the refresh with the node snippet the changes are %v, want none", got)
	}
	if err := os.WriteFile(path, append(bytes.Clone(src), snippet("master")...), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := changes(""); got["master"] != "config" {
		t.Errorf("with a master snippet (and the node snippet gone) the changes are %v, want the master's config", got)
	}
}

// testSnapshot is a file of size random bytes that passes a snapshot's integrity check, as
// they are followed by their SHA-256.
func testSnapshot(t *testing.T, size int) string {
	t.Helper()
	data := make([]byte, size)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	path := filepath.Join(t.TempDir(), "upgrade.db")
	if err := os.WriteFile(path, append(data, sum[:]...), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestUpgradeOnVSphereReplacesThroughTheProvider: on vSphere the upgrade records the template
// the master was cloned from; the master and each node are cloned again from the new template
// (the master with its etcd disk), and a master that failed is cloned from its old one.
func TestUpgradeOnVSphereReplacesThroughTheProvider(t *testing.T) {
	sim := vsphereStandIn(t)
	cfg, path := vsphereConfig(t)
	state := filepath.Join(t.TempDir(), "state")
	var out bytes.Buffer
	if err := up(t.Context(), &out, cfg, state, cloudOptions{numNodes: 2, configPath: path}); err != nil {
		t.Fatalf("up: %v\n%s", err, out.String())
	}
	const image = "guestinfo.kubeup.image"
	const newTemplate = "DC0_C0_RP0_VM1" // vcsim's second VM, cloned as a template would be
	ctx := t.Context()
	ref := func(name string) string {
		vm, err := sim.Finder.VirtualMachine(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return vm.Reference().Value
	}
	before := map[string]string{}
	for _, m := range []string{"master", "node-1", "node-2"} {
		before[m] = ref("vsphere-" + m)
		if got := extraConfig(t, sim, "vsphere-"+m, image); got != "kubeup-debian" {
			t.Errorf("%s records template %q, want kubeup-debian", m, got)
		}
	}

	out.Reset()
	r, prog := upgradeSteps(t, path, state, "v1.36.3", newTemplate, &out)
	if prog.FromImage != "kubeup-debian" || r.RefreshNodes != nil {
		t.Errorf("the old image %q (want kubeup-debian); nodes by group %v (want by name)", prog.FromImage, r.RefreshNodes != nil)
	}
	for _, m := range []string{"master", "node-1"} {
		if err := r.Replace(ctx, m); err != nil {
			t.Fatalf("replace %s: %v\n%s", m, err, out.String())
		}
		if ref("vsphere-"+m) == before[m] || extraConfig(t, sim, "vsphere-"+m, image) != newTemplate {
			t.Errorf("%s was not cloned again from %s", m, newTemplate)
		}
	}
	if ref("vsphere-node-2") != before["node-2"] {
		t.Error("node-2 was replaced too")
	}
	if !strings.Contains(out.String(), "detached") {
		t.Errorf("the master's replacement does not say it kept the etcd disk:\n%s", out.String())
	}
	if err := r.Restore(ctx, "master", ""); err != nil {
		t.Fatalf("restore the master: %v\n%s", err, out.String())
	}
	if got := extraConfig(t, sim, "vsphere-master", image); got != "kubeup-debian" {
		t.Errorf("the restored master is a clone of %q, want kubeup-debian", got)
	}
	// The rollback to the snapshot: its config carries the snapshot and its unit. A small
	// one fits guestinfo; a large one is over its limit, so the config is written where
	// vsphere.configURL serves it (as up writes such configs), and guestinfo holds the pointer.
	guestinfo := func() []byte { return guestinfoConfig(t, sim, "vsphere-master") }
	if err := r.Restore(ctx, "master", testSnapshot(t, 4<<10)); err != nil {
		t.Fatalf("restore the master with the snapshot: %v\n%s", err, out.String())
	}
	if !bytes.Contains(guestinfo(), []byte(machine.EtcdRestoreUnit)) || extraConfig(t, sim, "vsphere-master", image) != "kubeup-debian" {
		t.Errorf("the master restored with the snapshot: a clone of %q, its config in guestinfo without the restore unit", extraConfig(t, sim, "vsphere-master", image))
	}
	if err := r.Restore(ctx, "master", testSnapshot(t, 256<<10)); err != nil {
		t.Fatalf("restore the master with a large snapshot: %v\n%s", err, out.String())
	}
	served := filepath.Join(targets.Dir(state, cluster.TargetVSphere), "ignition", "master.ign")
	file, err := os.ReadFile(served)
	fi, serr := os.Stat(served)
	if err != nil || serr != nil || fi.Mode().Perm() != 0o600 || !bytes.Contains(file, []byte(machine.EtcdRestoreUnit)) {
		t.Errorf("the master's config with a large snapshot is not at %s, 0600, with the restore unit (%v)", served, err)
	}
	if ptr := guestinfo(); !bytes.Contains(ptr, []byte("https://configs.example.internal/vsphere/master.ign")) || bytes.Contains(ptr, []byte(machine.EtcdRestoreUnit)) {
		t.Errorf("guestinfo does not point at the served config:\n%s", ptr)
	}
}

// TestConfigChangeOnVSphereNamesTheChangedMachines: vSphere cannot read back the config a VM
// booted (Ignition overwrites it in guestinfo), but its mark keeps the config's SHA-256: at the
// same release, a render that changed nothing changes no machine, and a Butane snippet added to
// node-2 changes node-2 alone; once node-2 is cloned with its new config, nothing is left.
func TestConfigChangeOnVSphereNamesTheChangedMachines(t *testing.T) {
	vsphereStandIn(t)
	cfg, path := vsphereConfig(t)
	state := filepath.Join(t.TempDir(), "state")
	var out bytes.Buffer
	if err := up(t.Context(), &out, cfg, state, cloudOptions{numNodes: 2, configPath: path}); err != nil {
		t.Fatalf("up: %v\n%s", err, out.String())
	}
	changes := func() map[string]string {
		t.Helper()
		cfg, err := cluster.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := machineChanges(t.Context(), cfg, state, upgradeOptions{to: cfg.KubernetesVersion}, nil, nil)
		if err != nil || got == nil {
			t.Fatalf("machineChanges: %v, %v; want what each machine's mark tells", got, err)
		}
		return got
	}
	if got := changes(); got["master"] != "" || got["node-1"] != "" || got["node-2"] != "" || len(got) != 3 {
		t.Errorf("nothing changed, yet the changes are %v", got)
	}
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const node2 = "  - name: node-2\n"
	if !bytes.Contains(src, []byte(node2)) {
		t.Fatal("configs/vsphere.yaml has no node-2 to change")
	}
	snippet := node2 + "    butane: |\n      variant: fcos\n      version: 1.5.0\n      storage:\n        files:\n          - path: /etc/kubeup-test\n            contents:\n              inline: changed\n"
	if err := os.WriteFile(path, bytes.Replace(src, []byte(node2), []byte(snippet), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := changes(); got["master"] != "" || got["node-1"] != "" || got["node-2"] != "config" {
		t.Errorf("with node-2's snippet the changes are %v, want node-2's config alone", got)
	}
	r, _ := upgradeSteps(t, path, state, cfg.KubernetesVersion, "", &out)
	if err := r.Replace(t.Context(), "node-2"); err != nil {
		t.Fatalf("replace node-2: %v\n%s", err, out.String())
	}
	if got := changes(); got["node-2"] != "" {
		t.Errorf("node-2 was cloned with its new config, yet the changes are %v", got)
	}
}
