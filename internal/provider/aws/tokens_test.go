package aws_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"kubeup.dev/kubeup/internal/ignition"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/internal/provider/aws/awstest"
)

// The node pool's new token (docs/bootstrap-tokens.md) reaches the Auto Scaling group's new
// instances: up with the node config carrying it makes a launch template version with it, the
// default one; up that could not read the token leaves the template alone.
func TestNewPoolTokenMakesTheDefaultTemplateVersion(t *testing.T) {
	srv := awstest.New(t, region)
	var out bytes.Buffer
	p := newClient(t, srv, &out)
	s := spec(t, "tokens", awstest.AddressPlan(0))
	ctx := context.Background()
	if _, err := p.Up(ctx, s, false); err != nil {
		t.Fatalf("up: %v\n%s", err, out.String())
	}
	bundleRaw := s.Node.Raw
	tok, err := pki.NewToken(time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if s.Node.Raw, err = ignition.WithBootstrapToken(bundleRaw, tok.String()); err != nil {
		t.Fatal(err)
	}
	n := len(srv.Calls())
	if _, err := p.Up(ctx, s, false); err != nil {
		t.Fatalf("up with the new token: %v\n%s", err, out.String())
	}
	if m := mutating(srv.Calls()[n:]); !slices.Equal(m, []string{"CreateLaunchTemplateVersion", "ModifyLaunchTemplate"}) {
		t.Errorf("up with a new token called %v, want a new launch template version made the default", m)
	}
	lt := srv.LaunchTemplates()[0]
	if lt.Versions != 2 || lt.Default != 2 {
		t.Fatalf("launch template: %d versions, default %d; want 2, 2", lt.Versions, lt.Default)
	}
	if !bytes.Equal(lt.DefaultUserData, s.Node.Raw) || !bytes.Contains(decodeAll(t, lt.DefaultUserData), []byte("token: "+tok.String())) {
		t.Errorf("the default version's user-data does not carry token %s", tok.ID)
	}

	// Re-run: nothing to do.
	n = len(srv.Calls())
	if _, err := p.Up(ctx, s, false); err != nil {
		t.Fatal(err)
	}
	if m := mutating(srv.Calls()[n:]); len(m) > 0 {
		t.Errorf("re-run called %v", m)
	}

	// kubeup could not read the pool's token: the bundle's config must not replace the newer one.
	s.Node.Raw, s.KeepNodeConfig, s.KeepNodeConfigWhy = bundleRaw, true, "the node pool's token could not be read"
	n = len(srv.Calls())
	rep, err := p.Up(ctx, s, false)
	if err != nil {
		t.Fatal(err)
	}
	if m := mutating(srv.Calls()[n:]); len(m) > 0 {
		t.Errorf("up with KeepNodeConfig called %v", m)
	}
	if lt := srv.LaunchTemplates()[0]; lt.Versions != 2 || lt.Default != 2 {
		t.Errorf("after KeepNodeConfig: %d versions, default %d", lt.Versions, lt.Default)
	}
	if !slices.ContainsFunc(rep.TODO, func(s string) bool { return strings.Contains(s, "keeps its version 2: the node pool's token") }) {
		t.Errorf("the report does not say the template was kept: %v", rep.TODO)
	}
}

// A version made by a run that stopped before making it the default is made the default by
// the next run.
func TestLatestVersionBecomesDefaultOnReRun(t *testing.T) {
	srv := awstest.New(t, region)
	var out bytes.Buffer
	p := newClient(t, srv, &out)
	s := spec(t, "tokens2", awstest.AddressPlan(0))
	ctx := context.Background()
	if _, err := p.Up(ctx, s, false); err != nil {
		t.Fatal(err)
	}
	tok, _ := pki.NewToken(time.Now(), time.Hour)
	s.Node.Raw, _ = ignition.WithBootstrapToken(s.Node.Raw, tok.String())
	srv.Fail("ModifyLaunchTemplate", "UnauthorizedOperation", "You are not authorized to perform this operation.")
	if _, err := p.Up(ctx, s, false); err == nil || !strings.Contains(err.Error(), "ModifyLaunchTemplate") {
		t.Fatalf("up with ModifyLaunchTemplate refused: %v", err)
	}
	srv.Unfail("ModifyLaunchTemplate")
	if lt := srv.LaunchTemplates()[0]; lt.Versions != 2 || lt.Default != 1 {
		t.Fatalf("after the failure: %d versions, default %d; want 2, 1", lt.Versions, lt.Default)
	}
	n := len(srv.Calls())
	if _, err := p.Up(ctx, s, false); err != nil {
		t.Fatal(err)
	}
	if m := mutating(srv.Calls()[n:]); !slices.Equal(m, []string{"ModifyLaunchTemplate"}) {
		t.Errorf("the next run called %v, want only ModifyLaunchTemplate", m)
	}
	if lt := srv.LaunchTemplates()[0]; lt.Default != 2 {
		t.Errorf("default version %d, want 2", lt.Default)
	}
}

// tokens sync changes the user-data alone: the new version keeps the AMI, type, security
// group, metadata options and instance tags of the one it replaces.
func TestSyncNodeConfigReplacesOnlyTheUserData(t *testing.T) {
	srv := awstest.New(t, region)
	var out bytes.Buffer
	p := newClient(t, srv, &out)
	s := spec(t, "tokens3", awstest.AddressPlan(0))
	ctx := context.Background()
	if _, err := p.SyncNodeConfig(ctx, s, false); err == nil || !strings.Contains(err.Error(), "run kubeup up first") {
		t.Fatalf("sync before up: %v", err)
	}
	if _, err := p.Up(ctx, s, false); err != nil {
		t.Fatal(err)
	}
	before := srv.LaunchTemplates()[0]
	tok, _ := pki.NewToken(time.Now(), time.Hour)
	s.Node.Raw, _ = ignition.WithBootstrapToken(s.Node.Raw, tok.String())
	s.AMI = "ami-0ignored" // sync takes the AMI of the newest version, not the spec's
	n := len(srv.Calls())
	if _, err := p.SyncNodeConfig(ctx, s, false); err != nil {
		t.Fatalf("sync: %v\n%s", err, out.String())
	}
	if m := mutating(srv.Calls()[n:]); !slices.Equal(m, []string{"CreateLaunchTemplateVersion", "ModifyLaunchTemplate"}) {
		t.Errorf("sync called %v", m)
	}
	after := srv.LaunchTemplates()[0]
	if after.Versions != 2 || after.Default != 2 || !bytes.Contains(decodeAll(t, after.DefaultUserData), []byte("token: "+tok.String())) {
		t.Fatalf("after sync: %d versions, default %d, new token in the default's user-data: %v", after.Versions, after.Default,
			bytes.Contains(decodeAll(t, after.DefaultUserData), []byte(tok.String())))
	}
	if after.AMI != before.AMI || after.InstanceType != before.InstanceType || after.Metadata != before.Metadata || !slices.Equal(after.SecurityGroups, before.SecurityGroups) || after.Profile != before.Profile ||
		len(after.InstanceTags) != len(before.InstanceTags) {
		t.Errorf("sync changed more than the user-data:\nbefore %+v\nafter  %+v", before, after)
	}
	n = len(srv.Calls())
	if _, err := p.SyncNodeConfig(ctx, s, false); err != nil {
		t.Fatal(err)
	}
	if m := mutating(srv.Calls()[n:]); len(m) > 0 {
		t.Errorf("second sync called %v", m)
	}
}
