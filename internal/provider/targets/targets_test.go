package targets

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/ignition"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/internal/provider"
)

// configs renders every machine's config (or role's) of the repository's example config file,
// after edit.
func configs(t *testing.T, file string, edit func(string) string, role string) (*cluster.Config, []ignition.Config) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("../../../configs", file))
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	if edit != nil {
		s = edit(s)
	}
	cfg, err := cluster.Parse(file, []byte(s))
	if err != nil {
		t.Fatal(err)
	}
	b, err := pki.Ensure(t.TempDir(), cfg, pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := ignition.Configs(cfg, b, ignition.Options{Role: role})
	if err != nil {
		t.Fatal(err)
	}
	return cfg, cs
}

func channel(t *testing.T, cfg *cluster.Config, c ignition.Config) provider.Channel {
	t.Helper()
	row, err := Lookup(cfg.Target)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := row.Channel(cfg, c)
	if err != nil {
		t.Fatalf("%s: %v", c.Name, err)
	}
	return ch
}

// Every target a config may name has a row, the row's provider serves that target, and the
// row says what `kubeup up` with no config and `kubeup tokens sync` do there.
func TestEveryTargetHasARow(t *testing.T) {
	for _, target := range []string{cluster.TargetQEMU, cluster.TargetAWS, cluster.TargetVSphere, cluster.TargetMetal} {
		row, err := Lookup(target)
		if err != nil {
			t.Fatal(err)
		}
		cfg := &cluster.Config{Name: "x", Target: target}
		p, err := row.New(cfg, Options{State: t.TempDir()})
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		if p.Target() != target {
			t.Errorf("row %s makes a provider of %s", target, p.Target())
		}
		// Each row says what up does with no config, and what tokens sync does.
		if (row.Starter == nil) == (row.NoStarter == "") {
			t.Errorf("row %s: a starter (%v) or why none (%q), and not both", target, row.Starter != nil, row.NoStarter)
		}
		if (row.SyncTokens == nil) == (row.TokensNote == "") {
			t.Errorf("row %s: a token sync (%v) or why none (%q), and not both", target, row.SyncTokens != nil, row.TokensNote)
		}
		if row.Starter != nil {
			if _, err := cluster.Starter(target, cluster.StarterValues{Name: "x", Region: "r", Bucket: "b"}); err != nil {
				t.Errorf("row %s has a starter, but: %v", target, err)
			}
		}
	}
	if _, err := Lookup("gce"); err == nil || !strings.Contains(err.Error(), "aws, metal, qemu, vsphere") {
		t.Errorf("an unknown target: %v; want an error listing the targets", err)
	}
}

// Whole configs go through fw_cfg, the PXE server and guestinfo; none needs a pointer there.
func TestConfigsGoWholeWhereTheChannelTakesThem(t *testing.T) {
	for _, file := range []string{"local.yaml", "metal.yaml", "vsphere.yaml"} {
		cfg, cs := configs(t, file, nil, "")
		for _, c := range cs {
			if ch := channel(t, cfg, c); ch.How == "" || ch.PointerURL != "" {
				t.Errorf("%s %s: %+v; want the channel's name and no pointer", file, c.Name, ch)
			}
		}
	}
}

// On AWS the master's config holds the CA keys: user-data gets a pointer to its S3 object,
// at the URL the provider uploads it to. The node role's config goes whole.
func TestAWSMasterGoesBehindAPointer(t *testing.T) {
	cfg, cs := configs(t, "aws.yaml", nil, "")
	ch := channel(t, cfg, cs[0])
	if cs[0].Role != cluster.RoleMaster || ch.PointerURL != "s3://example-kubeup-configs/aws/master.ign" || ch.Why != "holds private keys" {
		t.Errorf("master %s: %+v; want a pointer to s3://example-kubeup-configs/aws/master.ign because it holds keys", cs[0].Name, ch)
	}
	cfg, nodes := configs(t, "aws.yaml", nil, cluster.RoleNode)
	if ch := channel(t, cfg, nodes[0]); ch.PointerURL != "" || ch.How != "EC2 user-data" {
		t.Errorf("the node role's config: %+v; want it whole in user-data", ch)
	}
}

// A config over vSphere's guestinfo limit gets a pointer under vsphere.configURL, or, with
// none set, an error naming the field.
func TestVSphereOversizeConfigGetsPointerOrError(t *testing.T) {
	// A machine snippet with incompressible data pushes node-1's config past the limit.
	var sb strings.Builder
	seed := uint32(1)
	for sb.Len() < 2*64*1024 {
		seed = seed*1664525 + 1013904223
		sb.WriteString(hex.EncodeToString([]byte{byte(seed >> 24), byte(seed >> 16)}))
	}
	edit := func(s string) string {
		return strings.Replace(s, "    mac: \"00:50:56:00:00:11\"\n", "    mac: \"00:50:56:00:00:11\"\n    butane: |\n      storage:\n        files:\n          - path: /etc/big\n            contents:\n              inline: "+sb.String()+"\n", 1)
	}
	cfg, cs := configs(t, "vsphere.yaml", edit, "")
	for _, c := range cs {
		ch := channel(t, cfg, c)
		switch {
		case c.Name == "node-1" && ch.PointerURL != "https://configs.example.internal/vsphere/node-1.ign":
			t.Errorf("node-1 (%d bytes gzip+base64): %+v; want a pointer to https://configs.example.internal/vsphere/node-1.ign", c.Sizes.GzipBase64, ch)
		case c.Name != "node-1" && ch.PointerURL != "":
			t.Errorf("%s got a pointer though it fits: %+v", c.Name, ch)
		}
	}
	cfg.VSphere.ConfigURL = ""
	for _, c := range cs {
		if c.Name != "node-1" {
			continue
		}
		if _, err := table[cluster.TargetVSphere].Channel(cfg, c); err == nil || !strings.Contains(err.Error(), "vsphere.configURL") {
			t.Errorf("no configURL: %v; want an error naming vsphere.configURL", err)
		}
	}
}

func TestAMIFrom(t *testing.T) {
	manifest := filepath.Join(t.TempDir(), "manifest.json")
	os.WriteFile(manifest, []byte(`{"builds":[
		{"builder_type":"amazon-ebs","artifact_id":"eu-west-1:ami-0old"},
		{"builder_type":"vsphere-clone","artifact_id":"tmpl"},
		{"builder_type":"amazon-ebs","artifact_id":"us-east-1:ami-0aaa,eu-west-1:ami-0new"}]}`), 0o600)
	if ami, err := amiFrom(manifest, "eu-west-1", "ami-0config"); err != nil || ami != "ami-0new" {
		t.Errorf("amiFrom = %q, %v; want the last build's eu-west-1 AMI", ami, err)
	}
	if _, err := amiFrom(manifest, "ap-south-1", ""); err == nil || !strings.Contains(err.Error(), "ap-south-1") {
		t.Errorf("no AMI in the region: %v", err)
	}
	if ami, err := amiFrom("", "eu-west-1", "ami-0config"); err != nil || ami != "ami-0config" {
		t.Errorf("without a manifest: %q, %v", ami, err)
	}
}
