package aws_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/ignition"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/internal/provider"
	kaws "kubeup.dev/kubeup/internal/provider/aws"
	"kubeup.dev/kubeup/internal/provider/aws/awstest"
)

// newProvider is the provider of configs/aws.yaml against the stand-in.
func newProvider(t *testing.T, srv *awstest.Server, out *bytes.Buffer) *kaws.Provider {
	t.Helper()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	cfg, err := cluster.Load("../../../configs/aws.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return &kaws.Provider{Config: cfg, Dir: filepath.Join(t.TempDir(), "aws"), AMI: "ami-0123456789abcdef0", NumNodes: 2, Out: out,
		Client: kaws.Options{Endpoint: srv.URL, PollDelay: 10 * time.Millisecond, LoadOptions: []func(*config.LoadOptions) error{
			config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")),
		}}}
}

// TestProviderReplacesTheMaster runs the seam's steps in kubeup up's order, then replaces the
// master: its instance is terminated and a new one boots the new config (stored in S3, pinned
// by its hash in the pointer user-data) with the same etcd volume, private address and Elastic
// IP. A node is not replaced by name.
func TestProviderReplacesTheMaster(t *testing.T) {
	srv := awstest.New(t, region)
	var out bytes.Buffer
	p := newProvider(t, srv, &out)
	ctx := context.Background()
	prep, configs := bringUp(t, p, &out)
	eip := awstest.AddressPlan(0)
	if !slices.Equal(prep.SANs, []string{eip}) || !strings.HasPrefix(prep.Render.EtcdDevice, "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol") ||
		!slices.Equal(prep.Roles, []string{cluster.RoleNode}) {
		t.Fatalf("Prepare = %+v", prep)
	}
	if ep, err := p.Endpoint(ctx); err != nil || ep != "https://"+eip+":6443" {
		t.Errorf("Endpoint = %q, %v", ep, err)
	}
	// A later command finds the same endpoint and machines from the tags alone.
	later := newProvider(t, srv, &out)
	if ep, err := later.Endpoint(ctx); err != nil || ep != "https://"+eip+":6443" {
		t.Errorf("a later command's Endpoint = %q, %v", ep, err)
	}
	ms, err := later.Machines(ctx)
	if err != nil || len(ms) != 3 || ms[0].Name != "master" || ms[0].Role != cluster.RoleMaster || !strings.HasPrefix(ms[1].Name, "ip-10-30-0-") {
		t.Fatalf("Machines = %+v, %v; want the master, then 2 nodes named by their private DNS names", ms, err)
	}
	old := masterInstance(t, srv)

	if err := p.Replace(ctx, ms[1].Name, configs[0]); err == nil || !strings.Contains(err.Error(), "instance refresh") {
		t.Errorf("Replace of a node: %v, want a refusal naming the instance refresh", err)
	}
	newRaw := append(bytes.Clone(configs[0].Raw), '\n')
	if err := p.Replace(ctx, "master", ignition.Config{Name: "master", Role: cluster.RoleMaster, Raw: newRaw}); err != nil {
		t.Fatalf("Replace: %v\n%s", err, out.String())
	}
	now := masterInstance(t, srv)
	if now.ID == old.ID || now.State != "running" || now.PrivateIP != old.PrivateIP || now.PublicIP != eip {
		t.Errorf("after Replace the master is %+v (was %s): want a new running instance at %s with %s", now, old.ID, old.PrivateIP, eip)
	}
	for _, i := range srv.Instances() {
		if i.ID == old.ID && i.State != "terminated" {
			t.Errorf("the old master %s is %s", old.ID, i.State)
		}
	}
	if srv.Addresses()[eip] != now.ID {
		t.Errorf("the Elastic IP is associated with %q, want %s", srv.Addresses()[eip], now.ID)
	}
	if vols := srv.Volumes(); len(vols) != 1 || !slices.Contains(slices.Collect(maps.Values(vols)), now.ID) {
		t.Errorf("volumes %v: want the one etcd volume attached to %s", vols, now.ID)
	}
	stored, _, ok := srv.Object("example-kubeup-configs", "aws/master.ign")
	sum := sha512.Sum512(newRaw)
	if !ok || !bytes.Equal(stored, newRaw) || !strings.Contains(string(now.UserData), hex.EncodeToString(sum[:])) {
		t.Errorf("the new master does not boot the new config (stored %v, user-data %s)", ok && bytes.Equal(stored, newRaw), now.UserData)
	}

	// An upgrade's provider, made by a later command with a new AMI and never prepared by
	// it: it tells the master's AMI and the render options, and replaces the master with the
	// new AMI, keeping the volume and the Elastic IP.
	again := newProvider(t, srv, &out)
	again.Dir, again.AMI = p.Dir, "ami-0fedcba9876543210"
	again.Config.ControlPlane.CertSANs = p.Config.ControlPlane.CertSANs
	if img, err := again.BootedImage(ctx, "master"); err != nil || img != p.AMI {
		t.Errorf("BootedImage = %q, %v; want %s", img, err, p.AMI)
	}
	if img, err := again.BootedImage(ctx, ms[1].Name); err != nil || img != p.AMI {
		t.Errorf("BootedImage of node %s of the group = %q, %v; want %s", ms[1].Name, img, err, p.AMI)
	}
	newSum := sha256.Sum256(newRaw)
	if got, err := again.BootedConfigSum(ctx, "master"); err != nil || got != hex.EncodeToString(newSum[:]) {
		t.Errorf("BootedConfigSum of the master = %q, %v; want its config's SHA-256 as tagged", got, err)
	}
	if _, err := again.BootedImage(ctx, "ip-10-99-0-1"); err == nil {
		t.Error("BootedImage of a machine the cluster does not have: want an error")
	}
	if ro, err := again.RenderOptions(ctx); err != nil || ro.EtcdDevice != prep.Render.EtcdDevice {
		t.Errorf("RenderOptions = %+v, %v; want Prepare's %+v", ro, err, prep.Render)
	}
	if err := again.Replace(ctx, "master", configs[0]); err != nil {
		t.Fatalf("Replace with a new AMI: %v\n%s", err, out.String())
	}
	if m := masterInstance(t, srv); m.AMI != again.AMI || m.PublicIP != eip || srv.Addresses()[eip] != m.ID {
		t.Errorf("after the upgrade's Replace the master is %+v; want AMI %s at %s", m, again.AMI, eip)
	}
	if img, err := again.BootedImage(ctx, "master"); err != nil || img != again.AMI {
		t.Errorf("BootedImage after the Replace = %q, %v; want %s", img, err, again.AMI)
	}
	if vols := srv.Volumes(); len(vols) != 1 {
		t.Errorf("volumes %v: want the one etcd volume", vols)
	}
}

// bringUp runs the seam's steps in kubeup up's order (the master's and the node role's configs
// rendered from a new bundle covering the address Prepare gave) and returns what Prepare
// found and the master's config.
func bringUp(t *testing.T, p *kaws.Provider, out *bytes.Buffer) (provider.Prepared, []ignition.Config) {
	t.Helper()
	ctx := context.Background()
	prep, err := p.Prepare(ctx)
	if err != nil {
		t.Fatalf("Prepare: %v\n%s", err, out.String())
	}
	// As kubeup does: the certificate covers the address Prepare gave.
	p.Config.ControlPlane.CertSANs = append(p.Config.ControlPlane.CertSANs, prep.SANs...)
	b, err := pki.Ensure(filepath.Join(filepath.Dir(p.Dir), "bundle"), p.Config, pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	configs, nodes := render(t, p, b, prep)
	if err := p.Deliver(ctx, append(configs, nodes...)); err != nil {
		t.Fatalf("Deliver: %v\n%s", err, out.String())
	}
	if err := p.Create(ctx); err != nil {
		t.Fatalf("Create: %v\n%s", err, out.String())
	}
	return prep, configs
}

// render renders the master's and the node role's configs for the provider's cluster.
func render(t *testing.T, p *kaws.Provider, b *pki.Bundle, prep provider.Prepared) (master, node []ignition.Config) {
	t.Helper()
	configs, err := ignition.Configs(p.Config, b, prep.Render)
	if err != nil {
		t.Fatal(err)
	}
	ro := prep.Render
	ro.Role = cluster.RoleNode
	nodes, err := ignition.Configs(p.Config, b, ro)
	if err != nil {
		t.Fatal(err)
	}
	return configs, nodes
}

// TestProviderRefreshesTheNodes: with a new AMI and the node config, RefreshNodes replaces every
// node of the group by an instance refresh, each old one held for its drain (held is called
// with its node's name) before it goes; a second refresh has nothing to replace.
func TestProviderRefreshesTheNodes(t *testing.T) {
	srv := awstest.New(t, region)
	var out bytes.Buffer
	p := newProvider(t, srv, &out)
	ctx := context.Background()
	bringUp(t, p, &out)
	var old []awstest.Instance
	for _, i := range srv.Instances() {
		if i.Group != "" {
			old = append(old, i)
		}
	}
	if len(old) != 2 {
		t.Fatalf("the group runs %d instances, want 2", len(old))
	}
	group := old[0].Group

	// The upgrade: a new AMI, the configs delivered again, the nodes refreshed.
	later := newProvider(t, srv, &out)
	later.Dir = p.Dir
	later.AMI = "ami-0fedcba9876543210"
	prep, err := later.Prepare(ctx)
	if err != nil {
		t.Fatalf("Prepare: %v\n%s", err, out.String())
	}
	later.Config.ControlPlane.CertSANs = append(later.Config.ControlPlane.CertSANs, prep.SANs...)
	b, err := pki.Load(filepath.Join(filepath.Dir(p.Dir), "bundle"), later.Config)
	if err != nil {
		t.Fatal(err)
	}
	_, nodes := render(t, later, b, prep)
	var held []string
	err = later.RefreshNodes(ctx, nodes[0], func(_ context.Context, node string) error {
		held = append(held, node)
		return nil
	})
	if err != nil {
		t.Fatalf("RefreshNodes: %v\n%s", err, out.String())
	}
	var want []string
	for _, i := range old {
		want = append(want, strings.Split(i.PrivateDNS, ".")[0])
	}
	slices.Sort(held)
	slices.Sort(want)
	if !slices.Equal(held, want) {
		t.Errorf("held for their drains: %v, want the old nodes %v", held, want)
	}
	live := 0
	for _, i := range srv.GroupInstances(group) {
		isOld := slices.ContainsFunc(old, func(o awstest.Instance) bool { return o.ID == i.ID })
		switch {
		case isOld && (i.State == "running" || i.State == "pending"):
			t.Errorf("old node %s is %s after the refresh", i.ID, i.State)
		case !isOld && i.State != "terminated":
			live++
			if i.AMI != later.AMI {
				t.Errorf("new node %s boots %s, want %s", i.ID, i.AMI, later.AMI)
			}
		}
	}
	if live != 2 {
		t.Errorf("%d new nodes, want 2", live)
	}
	if !strings.Contains(out.String(), "instance refresh") || !strings.Contains(out.String(), "Successful") {
		t.Errorf("the output does not follow the refresh:\n%s", out.String())
	}

	held = nil
	if err := later.RefreshNodes(ctx, nodes[0], func(_ context.Context, node string) error { held = append(held, node); return nil }); err != nil || len(held) != 0 {
		t.Errorf("a second refresh: %v, held %v; want nothing to replace", err, held)
	}

	// A drain that fails cancels the refresh and names the node. (A later command's provider,
	// which did not prepare: RefreshNodes finds the cluster itself.)
	third := newProvider(t, srv, &out)
	third.Dir, third.AMI = p.Dir, "ami-0aaaaaaaaaaaaaaaa"
	third.Config.ControlPlane.CertSANs = later.Config.ControlPlane.CertSANs
	err = third.RefreshNodes(ctx, nodes[0], func(_ context.Context, node string) error {
		return fmt.Errorf("drain %s: PodDisruptionBudget allows no eviction", node)
	})
	if err == nil || !strings.Contains(err.Error(), "PodDisruptionBudget") || !strings.Contains(err.Error(), "cancelled") {
		t.Errorf("a failed drain: %v; want the refresh cancelled, naming the cause", err)
	}
}

func masterInstance(t *testing.T, srv *awstest.Server) awstest.Instance {
	t.Helper()
	for _, i := range srv.Instances() {
		if i.Tags[kaws.RoleTag] == cluster.RoleMaster && i.State != "terminated" {
			return i
		}
	}
	t.Fatalf("no live master: %+v", srv.Instances())
	return awstest.Instance{}
}

// TestImagePatternNamesThePackerBuilds: the AMIs the Packer templates name are the ones the
// provider looks for when the config names none.
func TestImagePatternNamesThePackerBuilds(t *testing.T) {
	for _, osName := range []string{"debian", "flatcar"} {
		files, _ := filepath.Glob("../../../images/aws-" + osName + "*.pkr.hcl")
		if len(files) == 0 {
			t.Fatalf("no images/aws-%s*.pkr.hcl", osName)
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			m := regexp.MustCompile(`ami_name\s*=\s*"([^"]+)"`).FindSubmatch(data)
			if m == nil {
				t.Fatalf("%s has no ami_name", f)
			}
			// As Packer names a build: the timestamp and the template's variables filled in.
			name := regexp.MustCompile(`\{\{timestamp\}\}|\$\{var\.[a-z_]+\}`).ReplaceAllString(string(m[1]), "1767225600")
			if ok, _ := path.Match(kaws.ImagePattern(osName), name); !ok {
				t.Errorf("%s builds AMIs named %s, which %s does not match", f, name, kaws.ImagePattern(osName))
			}
		}
	}
}
