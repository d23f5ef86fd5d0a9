package aws

import (
	"context"
	"errors"
	"fmt"
	"strings"

	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Run carries one Up (or Down): what was found or made so far. Up happens in two halves,
// because the machines' configs depend on AWS: Prepare makes the Elastic IP (the API server
// certificate must cover it, so the secrets bundle is made after it), the network and the etcd
// volume (its device is in the master's config); then the configs are rendered, and Finish
// makes the rest.
type Run struct {
	p   *Client
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
	// delivered: Deliver stored the configs, so Create may start machines.
	delivered bool
	// instanceToken names the master instance's creation for its ClientToken ("" is the first
	// one's; a replacement's names its config).
	instanceToken string
}

// Up makes what is missing of the cluster and leaves what exists alone: Prepare and Finish with
// the configs in s. With dry set it only looks and reports, for every resource, "exists" or
// "create".
func (p *Client) Up(ctx context.Context, s *Spec, dry bool) (*Report, error) {
	r, err := p.Prepare(ctx, s, dry)
	if err != nil {
		if r != nil {
			return r.rep, err
		}
		return nil, err
	}
	return r.Finish(ctx, s.Master, s.Node)
}

// Prepare finds or makes what the configs depend on: the master's Elastic IP (found by its
// tags, or the operator's address named by controlPlane.endpoint, or allocated), the VPC and
// subnet, and the etcd volume. s.Master needs its Name and Address only; the configs come
// with Finish.
func (p *Client) Prepare(ctx context.Context, s *Spec, dry bool) (*Run, error) {
	if err := s.checkPrepare(); err != nil {
		return nil, fmt.Errorf("aws: the cluster config is incomplete: %w", err)
	}
	r := &Run{p: p, s: s, dry: dry, rep: &Report{}, profiles: map[string]string{}}
	for _, step := range []func(context.Context) error{r.ensureEIP, r.ensureNetwork, r.ensureVolume} {
		if err := step(ctx); err != nil {
			return r, err
		}
	}
	return r, nil
}

// ElasticIP is the master's public address, or "" in a dry run that would allocate it.
func (r *Run) ElasticIP() string { return r.eip }

// EtcdDevice is the udev path of the etcd volume as the master sees it: EBS volumes on Nitro
// instances are NVMe disks whose serial is the volume id, and udev's standard rules (in every
// distribution and initramfs) link /dev/disk/by-id/nvme-<model>_<serial> to them, whatever
// nvmeXn1 the kernel gave. The attachment's /dev/sdf names nothing there. In a dry run before
// the volume exists it is a placeholder of the same length.
func (r *Run) EtcdDevice() string {
	id := r.volume
	if id == "" {
		id = "vol-00000000000000000"
	}
	return EtcdDevicePath(id)
}

// EtcdDevicePath is the udev path of an EBS volume on a Nitro instance.
func EtcdDevicePath(volumeID string) string {
	return "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_" + strings.ReplaceAll(volumeID, "-", "")
}

// Finish stores the configs and makes the rest: Deliver, then Create.
func (r *Run) Finish(ctx context.Context, master, node Config) (*Report, error) {
	if err := r.Deliver(ctx, master, node); err != nil {
		return r.rep, err
	}
	return r.Create(ctx)
}

// Deliver checks the configs and stores them where the machines read them: the master's (and a
// node config too big for user-data) as a private S3 object behind a hash-pinned pointer.
func (r *Run) Deliver(ctx context.Context, master, node Config) error {
	r.s.Master, r.s.Node = master, node
	if err := r.s.check(); err != nil {
		return fmt.Errorf("aws: the cluster config is incomplete: %w", err)
	}
	// First: if the certificate does not cover the Elastic IP, nothing more is made until the
	// bundle is fixed.
	if err := r.checkCertCoversEIP(ctx); err != nil {
		return err
	}
	if err := r.ensureConfigs(ctx, r.s.Master, r.s.Node); err != nil {
		return err
	}
	r.delivered = true
	return nil
}

// Create makes the machines from the delivered configs: security groups, the master with its
// volume and Elastic IP, the nodes' launch template and Auto Scaling group.
func (r *Run) Create(ctx context.Context) (*Report, error) {
	if !r.delivered {
		return r.rep, errors.New("aws: Create before Deliver")
	}
	for _, step := range []func(context.Context) error{r.ensureSecurityGroups, r.ensureMaster, r.ensureNodes} {
		if err := step(ctx); err != nil {
			return r.rep, err
		}
	}
	r.rep.MasterIP = r.eip
	return r.rep, nil
}

// ensure finds a resource and creates it if it is missing (not in a dry run).
func (r *Run) ensure(ctx context.Context, kind, name string, find, create func(context.Context) (string, error)) (string, error) {
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
func (r *Run) change(ctx context.Context, kind, name string, done bool, do func(context.Context) error) error {
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

func (r *Run) wrap(op, resource string, err error) error { return wrap(r.p.region, op, resource, err) }

func tagValue(tags []ec2types.Tag, key string) string {
	for _, t := range tags {
		if t.Key != nil && *t.Key == key && t.Value != nil {
			return *t.Value
		}
	}
	return ""
}
