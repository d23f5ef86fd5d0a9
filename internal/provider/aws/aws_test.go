package aws_test

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/ignition"
	"kubeup.dev/kubeup/internal/pki"
	kaws "kubeup.dev/kubeup/internal/provider/aws"
	"kubeup.dev/kubeup/internal/provider/aws/awstest"
)

const region = "eu-west-1"

// clusterYAML is configs/aws.yaml's shape; the endpoint is the first address the stand-in
// allocates, as an operator would write the Elastic IP there.
const clusterYAML = `apiVersion: kubeup.dev/v1alpha1
kind: Cluster
name: %s
target: aws
controlPlane:
  endpoint: %s:6443
  certSANs: [%s]
aws:
  region: eu-west-1
  instanceType: m6i.large
  ami: ami-0123456789abcdef0
  allowedCIDRs: [198.51.100.0/24, 192.0.2.0/28]
  configURL: s3://kubeup-test-configs/%s/
machines:
  - name: master
    role: master
    address: 10.30.0.10/24
`

var (
	fixtureMu sync.Mutex
	fixtures  = map[string]*kaws.Spec{}
)

// spec renders a cluster's real configs (bundle, master, node role) once per name and
// endpoint, and returns the provider's spec for it.
func spec(t *testing.T, name, eip string) *kaws.Spec {
	t.Helper()
	fixtureMu.Lock()
	defer fixtureMu.Unlock()
	key := name + "/" + eip
	if s, ok := fixtures[key]; ok {
		c := *s
		return &c
	}
	cfg, err := cluster.Parse(name+".yaml", fmt.Appendf(nil, clusterYAML, name, eip, eip, name))
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "kubeup-aws-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	b, err := pki.Ensure(filepath.Join(dir, "bundle"), cfg, pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	masters, err := ignition.Generate(cfg, b, ignition.Options{OutDir: filepath.Join(dir, "ign")})
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := ignition.Generate(cfg, b, ignition.Options{OutDir: filepath.Join(dir, "ign"), Role: cluster.RoleNode})
	if err != nil {
		t.Fatal(err)
	}
	read := func(o ignition.Output) []byte {
		raw, err := os.ReadFile(o.File)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	s := &kaws.Spec{Cluster: name, AMI: cfg.AWS.AMI, InstanceType: cfg.AWS.InstanceType, AllowedCIDRs: cfg.AWS.AllowedCIDRs,
		ConfigURL: cfg.AWS.ConfigURL, Endpoint: cfg.ControlPlane.Endpoint, CertSANs: cfg.ControlPlane.CertSANs, NumNodes: 2, TokenSeed: "seed-" + name,
		Master: kaws.Config{Name: masters[0].Name, Address: cfg.Machines[0].Address, Raw: read(masters[0]), Secret: true},
		Node:   kaws.Config{Name: nodes[0].Name, Raw: read(nodes[0])}}
	fixtures[key] = s
	c := *s
	return &c
}

func codeOf(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func newClient(t *testing.T, srv *awstest.Server, out *bytes.Buffer) *kaws.Client {
	t.Helper()
	// No shared config or credentials files of whoever runs the tests, and no IMDS.
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	p, err := kaws.New(context.Background(), kaws.Options{Region: region, Endpoint: srv.URL, Out: out, PollDelay: 10 * time.Millisecond,
		LoadOptions: []func(*config.LoadOptions) error{
			config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")),
		}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func creates(calls []string) []string {
	var out []string
	for _, c := range calls {
		if strings.HasPrefix(c, "Create") || strings.HasPrefix(c, "Put") || strings.HasPrefix(c, "Attach") || strings.HasPrefix(c, "Associate") ||
			strings.HasPrefix(c, "Authorize") || strings.HasPrefix(c, "Add") || c == "RunInstances" || c == "AllocateAddress" {
			out = append(out, c)
		}
	}
	return out
}

func mutating(calls []string) []string {
	var out []string
	for _, c := range calls {
		if !strings.HasPrefix(c, "Describe") && !strings.HasPrefix(c, "Get") && !strings.HasPrefix(c, "Head") && !strings.HasPrefix(c, "List") && !strings.HasSuffix(c, awstest.Replayed) {
			out = append(out, c)
		}
	}
	return out
}

func TestUpCreatesTheClusterAndReUpCreatesNothing(t *testing.T) {
	srv := awstest.New(t, region)
	s := spec(t, "alpha", awstest.AddressPlan(0))
	var out bytes.Buffer
	p := newClient(t, srv, &out)
	rep, err := p.Up(context.Background(), s, false)
	if err != nil {
		t.Fatalf("up: %v\noutput:\n%s", err, out.String())
	}
	if rep.MasterIP != awstest.AddressPlan(0) {
		t.Errorf("master IP %q, want %s", rep.MasterIP, awstest.AddressPlan(0))
	}

	// Every kind of resource exists once, tagged with the cluster.
	got := srv.Tagged(kaws.ClusterTag, "alpha")
	kinds := map[string]int{}
	for _, r := range got {
		f := strings.Fields(r)
		kinds[f[0]]++
		if len(f) < 3 || !strings.Contains(f[2], "alpha") {
			t.Errorf("%s has no Name tag naming the cluster", r)
		}
	}
	want := map[string]int{"vpc": 1, "subnet": 1, "internet-gateway": 1, "security-group": 2, "volume": 1, "elastic-ip": 1,
		"instance": 3, "launch-template": 1, "autoscaling-group": 1, "iam-role": 1, "instance-profile": 1}
	for k, n := range want {
		if kinds[k] != n {
			t.Errorf("%d %s tagged %s=alpha, want %d (all: %v)", kinds[k], k, kaws.ClusterTag, n, got)
		}
	}
	if !slices.ContainsFunc(srv.MainRoutes(), func(r string) bool { return strings.Contains(r, "0.0.0.0/0 → igw-") }) {
		t.Errorf("no default route through the internet gateway: %v", srv.MainRoutes())
	}

	// The master: IMDSv2 only, hop limit 1, private address, Elastic IP, instance profile, Name.
	var master awstest.Instance
	for _, i := range srv.Instances() {
		if i.Tags["Name"] == "alpha-master" {
			master = i
		}
	}
	if master.ID == "" {
		t.Fatalf("no instance named alpha-master: %+v", srv.Instances())
	}
	if master.Metadata.HttpTokens != "required" || master.Metadata.HopLimit != 1 {
		t.Errorf("master metadata options %+v, want httpTokens required and hop limit 1", master.Metadata)
	}
	if master.State != "running" || master.PrivateIP != "10.30.0.10" || master.PublicIP != awstest.AddressPlan(0) {
		t.Errorf("master %+v: want running, 10.30.0.10, %s", master, awstest.AddressPlan(0))
	}
	if master.Tags[kaws.RoleTag] != "master" {
		t.Errorf("master tags %v", master.Tags)
	}

	// Security groups: 6443 from each allowed CIDR on the API group, the cluster group open
	// to its own members only, and no port 22 anywhere.
	var api, clusterSG awstest.SecurityGroup
	for _, g := range srv.SecurityGroups() {
		switch g.Name {
		case "alpha-apiserver":
			api = g
		case "alpha-cluster":
			clusterSG = g
		}
		for _, r := range g.Rules {
			if r.Protocol != "-1" && r.From <= 22 && 22 <= r.To {
				t.Errorf("security group %s opens port 22: %+v", g.Name, r)
			}
			if r.Protocol == "-1" && len(r.CIDRs) > 0 {
				t.Errorf("security group %s opens every port to %v", g.Name, r.CIDRs)
			}
		}
	}
	var apiCIDRs []string
	for _, r := range api.Rules {
		if r.Protocol != "tcp" || r.From != 6443 || r.To != 6443 {
			t.Errorf("apiserver group has a rule other than tcp/6443: %+v", r)
		}
		apiCIDRs = append(apiCIDRs, r.CIDRs...)
	}
	slices.Sort(apiCIDRs)
	if !slices.Equal(apiCIDRs, []string{"192.0.2.0/28", "198.51.100.0/24"}) {
		t.Errorf("6443 open to %v, want exactly aws.allowedCIDRs", apiCIDRs)
	}
	if len(clusterSG.Rules) != 1 || !slices.Equal(clusterSG.Rules[0].Groups, []string{clusterSG.ID}) {
		t.Errorf("cluster group rules %+v, want one rule from itself", clusterSG.Rules)
	}
	if !slices.Contains(master.SecurityGroups, api.ID) || !slices.Contains(master.SecurityGroups, clusterSG.ID) {
		t.Errorf("master groups %v, want %s and %s", master.SecurityGroups, api.ID, clusterSG.ID)
	}

	// The master's user-data is a pointer, hash-pinned to the S3 object, which is the exact
	// config, encrypted, in a bucket that blocks public access.
	var ptr struct {
		Ignition struct {
			Config struct {
				Replace struct {
					Source       string
					Verification struct{ Hash string }
				}
			}
		}
	}
	if err := json.Unmarshal(master.UserData, &ptr); err != nil {
		t.Fatalf("master user-data is not JSON: %v", err)
	}
	if err := ignition.Check(master.UserData); err != nil {
		t.Errorf("master user-data fails Ignition's parser: %v", err)
	}
	src := ptr.Ignition.Config.Replace.Source
	if src != "s3://kubeup-test-configs/alpha/master.ign" {
		t.Errorf("pointer source %q", src)
	}
	obj, sse, ok := srv.Object("kubeup-test-configs", "alpha/master.ign")
	if !ok {
		t.Fatalf("no S3 object alpha/master.ign: %v", srv.Objects("kubeup-test-configs"))
	}
	if !bytes.Equal(obj, s.Master.Raw) {
		t.Error("the S3 object differs from the master's config")
	}
	sum := sha512.Sum512(obj)
	if ptr.Ignition.Config.Replace.Verification.Hash != "sha512-"+hex.EncodeToString(sum[:]) {
		t.Errorf("pointer hash %q does not match the object", ptr.Ignition.Config.Replace.Verification.Hash)
	}
	if sse != "AES256" {
		t.Errorf("object encryption %q, want AES256", sse)
	}
	if exists, blocked, enc := srv.Bucket("kubeup-test-configs"); !exists || !blocked || enc == "" {
		t.Errorf("bucket exists=%v publicBlocked=%v encryption=%q", exists, blocked, enc)
	}

	// The master's role may read its object and nothing else; the master has its profile.
	doc, ok := srv.RolePolicy("kubeup-alpha-master", "read-own-config")
	if !ok {
		t.Fatal("role kubeup-alpha-master has no read-own-config policy")
	}
	var pol struct {
		Statement []struct{ Effect, Action, Resource string }
	}
	if err := json.Unmarshal([]byte(doc), &pol); err != nil || len(pol.Statement) != 1 ||
		pol.Statement[0] != (struct{ Effect, Action, Resource string }{"Allow", "s3:GetObject", "arn:aws:s3:::kubeup-test-configs/alpha/master.ign"}) {
		t.Errorf("role policy %s (%v)", doc, err)
	}
	roles, arn, ok := srv.ProfileRoles("kubeup-alpha-master")
	if !ok || !slices.Equal(roles, []string{"kubeup-alpha-master"}) || master.Profile != arn {
		t.Errorf("profile roles %v (exists %v), master profile %q, want %q", roles, ok, master.Profile, arn)
	}

	// The launch template carries the node config inline (it fits and holds no key), IMDSv2.
	lts := srv.LaunchTemplates()
	if len(lts) != 1 {
		t.Fatalf("%d launch templates", len(lts))
	}
	lt := lts[0]
	if len(s.Node.Raw) > kaws.UserDataLimit {
		t.Fatalf("the node config is %d bytes: this test expects it inline", len(s.Node.Raw))
	}
	if !bytes.Equal(lt.UserData, s.Node.Raw) {
		t.Error("the launch template's user-data is not the node config")
	}
	if lt.Metadata.HttpTokens != "required" || lt.Metadata.HopLimit != 1 {
		t.Errorf("launch template metadata options %+v", lt.Metadata)
	}
	if lt.InstanceTags[kaws.ClusterTag] != "alpha" || !slices.Equal(lt.SecurityGroups, []string{clusterSG.ID}) {
		t.Errorf("launch template instance tags %v, groups %v", lt.InstanceTags, lt.SecurityGroups)
	}

	// No user-data anywhere holds a private key.
	for _, ud := range [][]byte{master.UserData, lt.UserData} {
		if bytes.Contains(decodeAll(t, ud), []byte("PRIVATE KEY")) {
			t.Error("a user-data holds a private key")
		}
	}

	// Again: everything is found, nothing is created.
	before := len(srv.Calls())
	out.Reset()
	rep, err = p.Up(context.Background(), s, false)
	if err != nil {
		t.Fatalf("second up: %v\n%s", err, out.String())
	}
	if c := creates(srv.Calls()[before:]); len(c) > 0 {
		t.Errorf("second up made changes: %v", c)
	}
	for _, st := range rep.Steps {
		if st.State != "exists" {
			t.Errorf("second up: %s", st)
		}
	}
}

// decodeAll returns a config with every data: URL in it decoded (and gunzipped), so that a
// scan sees what the machine would write.
func decodeAll(t *testing.T, raw []byte) []byte {
	t.Helper()
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf("user-data is not JSON: %v", err)
	}
	var buf bytes.Buffer
	buf.Write(raw)
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		case string:
			if data, err := dataURL(v); err == nil {
				buf.Write(data)
			}
		}
	}
	walk(cfg)
	return buf.Bytes()
}

func TestDryRunChangesNothing(t *testing.T) {
	srv := awstest.New(t, region)
	s := spec(t, "alpha", awstest.AddressPlan(0))
	var out bytes.Buffer
	p := newClient(t, srv, &out)
	rep, err := p.Up(context.Background(), s, true)
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, out.String())
	}
	if m := mutating(srv.Calls()); len(m) > 0 {
		t.Errorf("dry run called %v", m)
	}
	kinds := map[string]bool{}
	for _, st := range rep.Steps {
		if st.State != "create" {
			t.Errorf("dry run on an empty account: %s", st)
		}
		kinds[st.Kind] = true
	}
	for _, k := range []string{"elastic-ip", "s3-object", "iam-role", "instance-profile", "vpc", "subnet", "internet-gateway", "route",
		"security-group", "ingress-rule", "ebs-volume", "instance", "volume-attachment", "eip-association", "launch-template", "autoscaling-group"} {
		if !kinds[k] {
			t.Errorf("the plan does not list %s:\n%s", k, out.String())
		}
	}

	// After a real up, the plan says every resource exists, and down's dry run deletes nothing.
	if _, err := p.Up(context.Background(), s, false); err != nil {
		t.Fatal(err)
	}
	n := len(srv.Calls())
	rep, err = p.Up(context.Background(), s, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range rep.Steps {
		if st.State != "exists" {
			t.Errorf("dry run after up: %s", st)
		}
	}
	if _, err := p.Down(context.Background(), s, true); err != nil {
		t.Fatal(err)
	}
	if m := mutating(srv.Calls()[n:]); len(m) > 0 {
		t.Errorf("dry runs called %v", m)
	}
	if len(srv.Tagged(kaws.ClusterTag, "alpha")) == 0 {
		t.Error("down's dry run deleted the cluster")
	}
}

func TestDownDeletesTheClusterAndNothingElse(t *testing.T) {
	srv := awstest.New(t, region)
	var out bytes.Buffer
	p := newClient(t, srv, &out)
	other := spec(t, "other", awstest.AddressPlan(0))
	if _, err := p.Up(context.Background(), other, false); err != nil {
		t.Fatalf("up other: %v\n%s", err, out.String())
	}
	s := spec(t, "alpha", awstest.AddressPlan(1))
	if _, err := p.Up(context.Background(), s, false); err != nil {
		t.Fatalf("up alpha: %v\n%s", err, out.String())
	}
	otherBefore := srv.Tagged(kaws.ClusterTag, "other")

	out.Reset()
	if _, err := p.Down(context.Background(), s, false); err != nil {
		t.Fatalf("down: %v\n%s", err, out.String())
	}
	if left := srv.Tagged(kaws.ClusterTag, "alpha"); len(left) > 0 {
		t.Errorf("down left %v", left)
	}
	if objs := srv.Objects("kubeup-test-configs"); !slices.Equal(objs, []string{"other/master.ign"}) {
		t.Errorf("objects after down: %v, want only other's", objs)
	}
	if after := srv.Tagged(kaws.ClusterTag, "other"); !slices.Equal(after, otherBefore) {
		t.Errorf("down of alpha touched other: before %v, after %v", otherBefore, after)
	}
	// The order AWS needs: nothing was refused on the way.
	if strings.Contains(out.String(), "failed") {
		t.Errorf("down output:\n%s", out.String())
	}
	// A second down finds nothing and succeeds.
	out.Reset()
	rep, err := p.Down(context.Background(), s, false)
	if err != nil || len(rep.Steps) != 0 {
		t.Errorf("second down: %v, steps %v", err, rep.Steps)
	}
}

func TestUpAfterDownNeedsANewTokenSeed(t *testing.T) {
	srv := awstest.New(t, region)
	var out bytes.Buffer
	p := newClient(t, srv, &out)
	s := spec(t, "alpha", awstest.AddressPlan(0))
	if _, err := p.Up(context.Background(), s, false); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Down(context.Background(), s, false); err != nil {
		t.Fatal(err)
	}
	// A new Elastic IP is allocated, so the config's endpoint must follow it.
	s = spec(t, "alpha", awstest.AddressPlan(1))
	// The same seed replays the first run's ClientTokens: EC2 answers with what was deleted.
	_, err := p.Up(context.Background(), s, false)
	if err == nil {
		t.Fatal("up after down with the old token seed succeeded: the stand-in ignored the ClientToken")
	}
	if codeOf(err) != "InvalidVolume.NotFound" {
		t.Errorf("up with the old seed: %v; want the replayed CreateVolume's deleted volume, InvalidVolume.NotFound", err)
	}
	s.TokenSeed = "after-down"
	out.Reset()
	if _, err := p.Up(context.Background(), s, false); err != nil {
		t.Fatalf("up with a new seed: %v\n%s", err, out.String())
	}
	if live := liveMasters(srv); live != 1 {
		t.Errorf("%d live masters, want 1", live)
	}
}

func TestElasticIPNotInTheCertificate(t *testing.T) {
	srv := awstest.New(t, region)
	var out bytes.Buffer
	p := newClient(t, srv, &out)
	s := spec(t, "alpha", "198.18.0.1")
	_, err := p.Up(context.Background(), s, false)
	if err == nil {
		t.Fatal("up accepted a certificate that does not cover the Elastic IP")
	}
	for _, w := range []string{awstest.AddressPlan(0), "198.18.0.1", "Add " + awstest.AddressPlan(0) + " to controlPlane.certSANs",
		"kubeup certs renew apiserver"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not say %q: %v", w, err)
		}
	}
	// Prepare's network and volume exist (a re-run finds them); no machine or config was made.
	for _, c := range creates(srv.Calls()) {
		if c == "RunInstances" || c == "PutObject" || c == "CreateLaunchTemplate" || c == "CreateAutoScalingGroup" {
			t.Errorf("up went on after the mismatch: %s", c)
		}
	}
}

func TestAWSErrorsNameOperationAndHint(t *testing.T) {
	for _, tc := range []struct{ op, code, hint string }{
		{"RunInstances", "InstanceLimitExceeded", "quota"},
		{"CreateVpc", "UnauthorizedOperation", "not allowed"},
		{"AllocateAddress", "AuthFailure", "credentials are invalid"},
		{"PutObject", "AccessDenied", "not allowed"},
		{"CreateRole", "AccessDenied", "not allowed"},
		{"RunInstances", "InvalidAMIID.NotFound", "region eu-west-1"},
		{"CreateVolume", "RequestLimitExceeded", "throttling"},
	} {
		t.Run(tc.op+"/"+tc.code, func(t *testing.T) {
			srv := awstest.New(t, region)
			var out bytes.Buffer
			p := newClient(t, srv, &out)
			srv.Fail(tc.op, tc.code, "injected by the test")
			_, err := p.Up(context.Background(), spec(t, "alpha", awstest.AddressPlan(0)), false)
			var ae *kaws.Error
			if !errors.As(err, &ae) {
				t.Fatalf("error %v (%T), want *aws.Error", err, err)
			}
			if ae.Op != tc.op || ae.Code != tc.code || !strings.Contains(ae.Hint, tc.hint) {
				t.Errorf("got op %q code %q hint %q, want %s %s %q", ae.Op, ae.Code, ae.Hint, tc.op, tc.code, tc.hint)
			}
			for _, w := range []string{tc.op, tc.code, "hint:", "injected by the test"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message lacks %q: %v", w, err)
				}
			}
		})
	}
}

func TestUpResumesAfterAFailure(t *testing.T) {
	srv := awstest.New(t, region)
	var out bytes.Buffer
	p := newClient(t, srv, &out)
	s := spec(t, "alpha", awstest.AddressPlan(0))
	// The first run fails after RunInstances (AttachVolume refused); the second finds the
	// instance by its tags and carries on.
	srv.Fail("AttachVolume", "InternalError", "injected")
	if _, err := p.Up(context.Background(), s, false); err == nil {
		t.Fatal("up ignored the failed AttachVolume")
	}
	srv.Unfail("AttachVolume")
	if _, err := p.Up(context.Background(), s, false); err != nil {
		t.Fatalf("second up: %v\n%s", err, out.String())
	}
	if live := liveMasters(srv); live != 1 {
		t.Errorf("%d live masters after a retried up, want 1", live)
	}
}

func TestBigNodeConfigGoesToS3(t *testing.T) {
	srv := awstest.New(t, region)
	var out bytes.Buffer
	p := newClient(t, srv, &out)
	s := spec(t, "alpha", awstest.AddressPlan(0))
	// Pad the node config past 16 KiB with a file it carries, still a valid config.
	var cfg map[string]any
	if err := json.Unmarshal(s.Node.Raw, &cfg); err != nil {
		t.Fatal(err)
	}
	storage, _ := cfg["storage"].(map[string]any)
	if storage == nil {
		storage = map[string]any{}
		cfg["storage"] = storage
	}
	files, _ := storage["files"].([]any)
	storage["files"] = append(files, map[string]any{"path": "/etc/kubeup/padding", "mode": 420,
		"contents": map[string]any{"source": ignition.DataURL(bytes.Repeat([]byte("x"), 20000))}})
	big, _ := json.Marshal(cfg)
	s.Node.Raw = big
	if _, err := p.Up(context.Background(), s, false); err != nil {
		t.Fatalf("up: %v\n%s", err, out.String())
	}
	lt := srv.LaunchTemplates()[0]
	if len(lt.UserData) > kaws.UserDataLimit || !bytes.Contains(lt.UserData, []byte("s3://kubeup-test-configs/alpha/node.ign")) {
		t.Errorf("launch template user-data (%d bytes) is not a pointer to node.ign", len(lt.UserData))
	}
	if obj, _, ok := srv.Object("kubeup-test-configs", "alpha/node.ign"); !ok || !bytes.Equal(obj, big) {
		t.Error("the big node config is not in S3")
	}
	if _, arn, ok := srv.ProfileRoles("kubeup-alpha-node"); !ok || lt.Profile != arn {
		t.Errorf("launch template profile %q, node profile exists %v arn %q", lt.Profile, ok, arn)
	}
}

func TestUpUsesTheOperatorsElasticIP(t *testing.T) {
	srv := awstest.New(t, region)
	// The operator allocated the address first, untagged, and wrote it into the config.
	c := ec2.New(ec2.Options{Region: region, BaseEndpoint: awssdk.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")})
	a, err := c.AllocateAddress(context.Background(), &ec2.AllocateAddressInput{})
	if err != nil {
		t.Fatal(err)
	}
	ip := awssdk.ToString(a.PublicIp)
	var out bytes.Buffer
	p := newClient(t, srv, &out)
	s := spec(t, "alpha", ip)
	n := len(srv.Calls())
	rep, err := p.Up(context.Background(), s, false)
	if err != nil {
		t.Fatalf("up: %v\n%s", err, out.String())
	}
	if slices.Contains(srv.Calls()[n:], "AllocateAddress") {
		t.Error("up allocated an address although the config names the operator's")
	}
	if rep.MasterIP != ip || srv.Addresses()[ip] == "" {
		t.Errorf("master IP %s, %s associated with %q", rep.MasterIP, ip, srv.Addresses()[ip])
	}
	if _, err := p.Down(context.Background(), s, false); err != nil {
		t.Fatalf("down: %v\n%s", err, out.String())
	}
	if inst, ok := srv.Addresses()[ip]; !ok || inst != "" {
		t.Errorf("after down the operator's address is allocated=%v, associated with %q; want kept, free", ok, inst)
	}
}

func TestChangedNodeConfigMakesANewTemplateVersion(t *testing.T) {
	srv := awstest.New(t, region)
	var out bytes.Buffer
	p := newClient(t, srv, &out)
	s := spec(t, "alpha", awstest.AddressPlan(0))
	if _, err := p.Up(context.Background(), s, false); err != nil {
		t.Fatal(err)
	}
	s.AMI = "ami-0newer"
	changed := append(bytes.TrimSuffix(bytes.Clone(s.Node.Raw), []byte("}")), []byte(`,"storage":{}}`)...)
	if !json.Valid(changed) {
		t.Fatalf("test config is not JSON: %s", changed[len(changed)-40:])
	}
	s.Node.Raw = changed
	n := len(srv.Calls())
	if _, err := p.Up(context.Background(), s, false); err != nil {
		t.Fatalf("up: %v\n%s", err, out.String())
	}
	if c := creates(srv.Calls()[n:]); !slices.Equal(c, []string{"CreateLaunchTemplateVersion"}) {
		t.Errorf("up after the node config changed made %v, want one new launch template version", c)
	}
	lt := srv.LaunchTemplates()[0]
	if lt.Versions != 2 || !bytes.Equal(lt.UserData, changed) {
		t.Errorf("launch template has %d versions, newest user-data current: %v", lt.Versions, bytes.Equal(lt.UserData, changed))
	}
	n = len(srv.Calls())
	if _, err := p.Up(context.Background(), s, false); err != nil {
		t.Fatal(err)
	}
	if c := creates(srv.Calls()[n:]); len(c) > 0 {
		t.Errorf("third up made %v", c)
	}
}

// liveMasters counts the live instances that no Auto Scaling group launched: a second one would
// be a duplicate master.
func liveMasters(srv *awstest.Server) int {
	live := 0
	for _, i := range srv.Instances() {
		if i.State != "terminated" && i.Group == "" {
			live++
		}
	}
	return live
}

// TestPrepareGivesTheAddressAndTheEtcdDevice: what the configs are made from exists after
// Prepare, before any config is stored or machine started, and a second Prepare finds the
// same address and volume by their tags.
func TestPrepareGivesTheAddressAndTheEtcdDevice(t *testing.T) {
	srv := awstest.New(t, region)
	var out bytes.Buffer
	p := newClient(t, srv, &out)
	s := spec(t, "alpha", awstest.AddressPlan(0))
	r, err := p.Prepare(context.Background(), s, false)
	if err != nil {
		t.Fatalf("prepare: %v\n%s", err, out.String())
	}
	var vol string
	for _, res := range srv.Tagged(kaws.ClusterTag, "alpha") {
		if f := strings.Fields(res); f[0] == "volume" {
			vol = f[1]
		}
	}
	if vol == "" {
		t.Fatalf("no etcd volume after Prepare: %v", srv.Tagged(kaws.ClusterTag, "alpha"))
	}
	want := "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_" + strings.ReplaceAll(vol, "-", "")
	if r.EtcdDevice() != want || r.ElasticIP() != awstest.AddressPlan(0) {
		t.Errorf("device %q, address %q; want %q, %s", r.EtcdDevice(), r.ElasticIP(), want, awstest.AddressPlan(0))
	}
	for _, c := range creates(srv.Calls()) {
		if c == "RunInstances" || c == "PutObject" || c == "CreateLaunchTemplate" {
			t.Errorf("Prepare called %s", c)
		}
	}
	n := len(srv.Calls())
	r2, err := p.Prepare(context.Background(), s, false)
	if err != nil {
		t.Fatal(err)
	}
	if c := creates(srv.Calls()[n:]); len(c) > 0 || r2.EtcdDevice() != want || r2.ElasticIP() != r.ElasticIP() {
		t.Errorf("second Prepare made %v, device %q, address %q", c, r2.EtcdDevice(), r2.ElasticIP())
	}
}
