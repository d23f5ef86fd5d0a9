package aws

import (
	"context"
	"fmt"

	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// run carries one Up or Down: what was found or made so far.
type run struct {
	p   *Provider
	s   *Spec
	dry bool
	rep *Report

	vpc, subnet, az, igw   string
	sgCluster, sgAPI       string
	volume                 string
	volumeAttachedTo       string
	allocID, eip, eipOwner string
	instance               string
	// note is added to the next "exists" step (why something found is special).
	note     string
	profiles map[string]string // config name → instance profile ARN
}

// Up makes what is missing of the cluster and leaves what exists alone. With dry set it only
// looks and reports, for every resource, "exists" or "create".
func (p *Provider) Up(ctx context.Context, s *Spec, dry bool) (*Report, error) {
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("aws: the cluster config is incomplete: %w", err)
	}
	r := &run{p: p, s: s, dry: dry, rep: &Report{}, profiles: map[string]string{}}
	steps := []func(context.Context) error{
		// The Elastic IP first: if the config names another address the certificates are wrong,
		// and nothing else should be made until the config is fixed.
		r.ensureEIP,
		r.ensureConfigs,
		r.ensureNetwork,
		r.ensureSecurityGroups,
		r.ensureVolume,
		r.ensureMaster,
		r.ensureNodes,
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return r.rep, err
		}
	}
	r.rep.MasterIP = r.eip
	return r.rep, nil
}

// ensure finds a resource and creates it if it is missing (not in a dry run).
func (r *run) ensure(ctx context.Context, kind, name string, find, create func(context.Context) (string, error)) (string, error) {
	id, err := find(ctx)
	if err != nil {
		return "", err
	}
	if id != "" {
		r.rep.add(r.p.out, Step{Kind: kind, Name: name, ID: id, State: "exists", Note: r.note})
		r.note = ""
		return id, nil
	}
	if r.dry {
		r.rep.add(r.p.out, Step{Kind: kind, Name: name, State: "create"})
		return "", nil
	}
	id, err = create(ctx)
	if err != nil {
		r.rep.add(r.p.out, Step{Kind: kind, Name: name, State: "failed"})
		return "", err
	}
	r.rep.add(r.p.out, Step{Kind: kind, Name: name, ID: id, State: "created"})
	return id, nil
}

// change applies a change to an existing resource (a rule, an attachment) unless it is
// already in place or this is a dry run.
func (r *run) change(ctx context.Context, kind, name string, done bool, do func(context.Context) error) error {
	switch {
	case done:
		r.rep.add(r.p.out, Step{Kind: kind, Name: name, State: "exists"})
		return nil
	case r.dry:
		r.rep.add(r.p.out, Step{Kind: kind, Name: name, State: "create"})
		return nil
	}
	if err := do(ctx); err != nil {
		r.rep.add(r.p.out, Step{Kind: kind, Name: name, State: "failed"})
		return err
	}
	r.rep.add(r.p.out, Step{Kind: kind, Name: name, State: "created"})
	return nil
}

func (r *run) wrap(op, resource string, err error) error { return wrap(r.p.region, op, resource, err) }

func tagValue(tags []ec2types.Tag, key string) string {
	for _, t := range tags {
		if t.Key != nil && *t.Key == key && t.Value != nil {
			return *t.Value
		}
	}
	return ""
}
