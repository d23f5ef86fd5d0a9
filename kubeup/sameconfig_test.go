package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/ignition/v2/config/v3_4/types"
	"k8s.io/client-go/tools/clientcmd"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/ignition"
	"kubeup.dev/kubeup/internal/manifests"
	"kubeup.dev/kubeup/internal/pki"
	kaws "kubeup.dev/kubeup/internal/provider/aws"
	"kubeup.dev/kubeup/internal/provider/aws/awstest"
	"kubeup.dev/kubeup/internal/provider/vsphere/vspheretest"
	"kubeup.dev/kubeup/test/testenv"
)

// Provider blocks that replace local.yaml's qemu block.
const (
	awsBlock = `aws:
  region: eu-west-1
  instanceType: m6i.large
  ami: ami-0123456789abcdef0
  allowedCIDRs: [198.51.100.0/24]
  configURL: s3://kubeup-test-configs/local/
`
	vsphereBlock = `vsphere:
  server: vcenter.example.internal
  datacenter: DC0
  datastore: LocalDS_0
  network: VM Network
  template: kubeup-debian
`
	metalBlock = `metal:
  pxeServer: https://10.10.0.2:8443
`
)

// qemuBlock is local.yaml's provider block: from "qemu:" to the next top-level key.
var qemuBlock = regexp.MustCompile(`(?m)^qemu:\n(  .*\n)+`)

// localAs writes configs/local.yaml with only its target and provider block changed, and loads
// it: the "the same cluster config with only the provider block changed".
func localAs(t *testing.T, target, block string) (*cluster.Config, string) {
	t.Helper()
	src, err := os.ReadFile("../configs/local.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	if strings.Count(s, "\ntarget: qemu\n") != 1 || len(qemuBlock.FindAllString(s, -1)) != 1 {
		t.Fatal("configs/local.yaml no longer has one target: qemu and one qemu block")
	}
	s = strings.Replace(s, "\ntarget: qemu\n", "\ntarget: "+target+"\n", 1)
	s = qemuBlock.ReplaceAllLiteralString(s, block)
	path := filepath.Join(t.TempDir(), "local-"+target+".yaml")
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := cluster.Load(path)
	if err != nil {
		t.Fatalf("local.yaml as %s: %v", target, err)
	}
	return cfg, path
}

// awsStandIn starts the EC2/Auto Scaling/IAM/S3 stand-in and points the SDK's default chain
// at it, as a user's environment would point it at AWS.
func awsStandIn(t *testing.T) *awstest.Server {
	srv := awstest.New(t, "eu-west-1")
	t.Setenv("AWS_ENDPOINT_URL", srv.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	return srv
}

// TestLocalConfigGoesUpOnAWS: configs/local.yaml with target aws and an aws block instead of
// the qemu block goes up against the stand-in: the VPC is the machines' network, nodes reach
// the master at its private endpoint, the Elastic IP is allocated before the bundle and is in
// the API server certificate, and the admin kubeconfig kubeup writes points at it. A re-run
// creates nothing.
func TestLocalConfigGoesUpOnAWS(t *testing.T) {
	srv := awsStandIn(t)
	cfg, path := localAs(t, cluster.TargetAWS, awsBlock)
	state := filepath.Join(t.TempDir(), "state")
	opt := cloudOptions{numNodes: 2, configPath: path}
	var out bytes.Buffer
	if err := up(context.Background(), &out, cfg, state, opt); err != nil {
		t.Fatalf("up: %v\n%s", err, out.String())
	}
	t.Logf("up:\n%s", out.String())
	eip := awstest.AddressPlan(0)

	var master awstest.Instance
	for _, i := range srv.Instances() {
		if i.Tags["Name"] == "local-master" {
			master = i
		}
	}
	// The subnet is 10.10.0.0/24, the machines' network: EC2 gave the master its address in it.
	if master.PrivateIP != "10.10.0.10" || master.PublicIP != eip {
		t.Errorf("master %+v: want 10.10.0.10 inside the VPC and the Elastic IP %s", master, eip)
	}
	if !strings.Contains(out.String(), "the config's 2 named nodes are not started on AWS") {
		t.Errorf("up does not say that the named nodes are not used:\n%s", out.String())
	}

	// The certificate covers the Elastic IP and the private address; the bundle's kubeconfigs
	// and the nodes' bootstrap kubeconfig name the private endpoint; kubeup's admin kubeconfig
	// names the Elastic IP.
	for _, a := range []string{eip, "10.10.0.10"} {
		if _, covers, err := pki.APIServerCovers(state, a); !covers || err != nil {
			t.Errorf("the API server certificate does not cover %s (%v)", a, err)
		}
	}
	kubeconfig := filepath.Join(state, "aws", "admin.conf")
	if st, err := os.Stat(kubeconfig); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("admin kubeconfig %s: %v", kubeconfig, err)
	}
	if !strings.Contains(out.String(), "kubectl --kubeconfig "+kubeconfig) {
		t.Errorf("up does not print the admin kubeconfig:\n%s", out.String())
	}
	for file, want := range map[string]string{kubeconfig: "https://" + eip + ":6443", filepath.Join(state, "admin.conf"): "https://10.10.0.10:6443"} {
		kc, err := clientcmd.LoadFromFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range kc.Clusters {
			if c.Server != want {
				t.Errorf("%s: server %s, want %s", file, c.Server, want)
			}
		}
	}
	lts := srv.LaunchTemplates()
	if len(lts) != 1 {
		t.Fatalf("%d launch templates", len(lts))
	}
	_, nodeFiles := testenv.IgnitionFiles(t, lts[0].UserData)
	if !bytes.Contains(nodeFiles[manifests.BootstrapKubeconf], []byte("server: https://10.10.0.10:6443")) {
		t.Errorf("the nodes' bootstrap kubeconfig does not name the private endpoint:\n%s", nodeFiles[manifests.BootstrapKubeconf])
	}

	// The master's config (in S3) formats and mounts the etcd volume that up attached.
	raw, _, ok := srv.Object("kubeup-test-configs", "local/master.ign")
	if !ok {
		t.Fatal("no master config in S3")
	}
	mc, masterFiles := testenv.IgnitionFiles(t, raw)
	var vol string
	for _, r := range srv.Tagged(kaws.ClusterTag, "local") {
		if f := strings.Fields(r); f[0] == "volume" {
			vol = f[1]
		}
	}
	if !slices.ContainsFunc(mc.Systemd.Units, func(u types.Unit) bool {
		return u.Name == ignition.EtcdMountUnit && u.Contents != nil && strings.Contains(*u.Contents, "What="+kaws.EtcdDevicePath(vol)+"\n")
	}) {
		t.Errorf("the master's config has no %s of the etcd volume %s", ignition.EtcdMountUnit, kaws.EtcdDevicePath(vol))
	}
	// The master's agent checks the machines that exist: not the config's named nodes.
	if agentCfg := string(masterFiles["/etc/kubeup/agent.yaml"]); strings.Contains(agentCfg, "node-1") {
		t.Errorf("the master's agent waits for named nodes that AWS does not start:\n%s", agentCfg)
	}

	// Again: the Elastic IP is found by its tag, and nothing is made.
	n := len(srv.Calls())
	out.Reset()
	cfg, _ = localAs(t, cluster.TargetAWS, awsBlock)
	if err := up(context.Background(), &out, cfg, state, opt); err != nil {
		t.Fatalf("re-run: %v\n%s", err, out.String())
	}
	for _, c := range srv.Calls()[n:] {
		if !strings.HasPrefix(c, "Describe") && !strings.HasPrefix(c, "Get") && !strings.HasPrefix(c, "Head") && !strings.HasPrefix(c, "List") {
			t.Errorf("re-run called %s", c)
		}
	}
}

// TestAWSBundleWithoutTheElasticIP: a bundle made before up (ignition-gen run first) has an
// API server certificate without the Elastic IP. up stops before any machine or config is made
// and names the renewal; after it, up goes on with the same address.
func TestAWSBundleWithoutTheElasticIP(t *testing.T) {
	srv := awsStandIn(t)
	cfg, path := localAs(t, cluster.TargetAWS, awsBlock)
	state := filepath.Join(t.TempDir(), "state")
	if _, err := pki.Ensure(state, cfg, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	opt := cloudOptions{numNodes: 1, configPath: path}
	var out bytes.Buffer
	err := up(context.Background(), &out, cfg, state, opt)
	eip := awstest.AddressPlan(0)
	fix := "kubeup certs renew apiserver --config " + path + " --state " + state
	if err == nil || !strings.Contains(err.Error(), fix) || !strings.Contains(err.Error(), eip) {
		t.Fatalf("up with a bundle that lacks the Elastic IP: %v; want an error naming %s and %q", err, eip, fix)
	}
	for _, c := range srv.Calls() {
		if c == "RunInstances" || c == "PutObject" || c == "CreateLaunchTemplate" {
			t.Errorf("up went on to %s", c)
		}
	}
	// The fix, as kubeup certs renew does it: the config from the file, the bundle's
	// recorded address.
	cfg, _ = localAs(t, cluster.TargetAWS, awsBlock)
	if _, err := pki.Renew(state, cfg, "apiserver", time.Now()); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := up(context.Background(), &out, cfg, state, opt); err != nil {
		t.Fatalf("up after the renewal: %v\n%s", err, out.String())
	}
	allocs := 0
	for _, c := range srv.Calls() {
		if c == "AllocateAddress" {
			allocs++
		}
	}
	if _, covers, _ := pki.APIServerCovers(state, eip); !covers || allocs != 1 {
		t.Errorf("after the renewal: certificate covers %s %v; %d addresses allocated, want 1", eip, covers, allocs)
	}
}

// TestLocalConfigOnVSphereAndMetal: the same local.yaml, with only the target and block changed,
// renders for bare metal and goes up on vSphere (vcsim).
func TestLocalConfigOnVSphereAndMetal(t *testing.T) {
	cfg, path := localAs(t, cluster.TargetMetal, metalBlock)
	b, err := pki.Ensure(filepath.Join(t.TempDir(), "metal"), cfg, pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if outs, err := ignition.Generate(cfg, b, ignition.Options{OutDir: t.TempDir()}); err != nil || len(outs) != 3 {
		t.Fatalf("%s: %d configs, %v", path, len(outs), err)
	}

	sim := vspheretest.Start(t, "kubeup-debian")
	t.Setenv("GOVC_URL", sim.URL.String())
	t.Setenv("GOVC_INSECURE", "1")
	for _, k := range []string{"GOVC_USERNAME", "GOVC_PASSWORD", "GOVC_FOLDER", "GOVC_RESOURCE_POOL", "GOVC_TLS_CA_CERTS"} {
		t.Setenv(k, "")
	}
	cfg, path = localAs(t, cluster.TargetVSphere, vsphereBlock)
	var out bytes.Buffer
	if err := up(t.Context(), &out, cfg, filepath.Join(t.TempDir(), "state"), cloudOptions{numNodes: 2, configPath: path}); err != nil {
		t.Fatalf("up on vSphere: %v\n%s", err, out.String())
	}
	names := sim.VMNames(t)
	for _, m := range []string{"local-master", "local-node-1", "local-node-2"} {
		if !slices.Contains(names, m) {
			t.Errorf("no VM %s: %v", m, names)
		}
	}
}
