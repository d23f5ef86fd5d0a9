package aws

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Options say how to reach AWS.
type Options struct {
	Region string
	// Endpoint, if set, replaces every service's endpoint (a test stand-in, LocalStack). The
	// SDK also reads AWS_ENDPOINT_URL itself. With a custom endpoint S3 is addressed path-style.
	Endpoint string
	// Out receives one line per resource as it is found, created or deleted.
	Out io.Writer
	// PollDelay is the waiters' shortest delay between polls (0: the SDK's defaults, 15 s for
	// instances). Tests make it small.
	PollDelay time.Duration
	// LoadOptions are passed to config.LoadDefaultConfig after the region (credentials for tests).
	LoadOptions []func(*config.LoadOptions) error
}

// Client makes and deletes a cluster's AWS resources.
type Client struct {
	ec2    *ec2.Client
	asg    *autoscaling.Client
	iam    *iam.Client
	s3     *s3.Client
	region string
	out    io.Writer
	poll   time.Duration
}

// New loads the SDK's default configuration (environment, shared config and credentials
// files, SSO, IMDS) for the region.
func New(ctx context.Context, opt Options) (*Client, error) {
	if opt.Region == "" {
		return nil, fmt.Errorf("aws.region is empty: set it in the cluster config")
	}
	lo := append([]func(*config.LoadOptions) error{config.WithRegion(opt.Region)}, opt.LoadOptions...)
	if opt.Endpoint != "" {
		lo = append(lo, config.WithBaseEndpoint(opt.Endpoint))
	}
	cfg, err := config.LoadDefaultConfig(ctx, lo...)
	if err != nil {
		return nil, fmt.Errorf("load the AWS configuration: %w (hint: check AWS_PROFILE and ~/.aws/config)", err)
	}
	out := opt.Out
	if out == nil {
		out = io.Discard
	}
	return &Client{
		ec2: ec2.NewFromConfig(cfg),
		asg: autoscaling.NewFromConfig(cfg),
		iam: iam.NewFromConfig(cfg),
		s3: s3.NewFromConfig(cfg, func(o *s3.Options) {
			// Stand-ins and S3-compatible stores are rarely reachable as bucket.host.
			o.UsePathStyle = cfg.BaseEndpoint != nil
		}),
		region: opt.Region,
		out:    out,
		poll:   opt.PollDelay,
	}, nil
}

// Step is one resource in a plan or a run.
type Step struct {
	Kind  string // vpc, subnet, instance, ...
	Name  string
	ID    string // AWS's id, once it exists
	State string // "exists", "create" (dry run), "created", "delete" (dry run), "deleted", "absent", "failed"
	Note  string
}

func (st Step) String() string {
	s := fmt.Sprintf("%-8s %-16s %s", st.State, st.Kind, st.Name)
	if st.ID != "" && st.ID != st.Name {
		s += " (" + st.ID + ")"
	}
	if st.Note != "" {
		s += ": " + st.Note
	}
	return s
}

// Report is what Up or Down did or, in a dry run, would do.
type Report struct {
	Steps []Step
	// MasterIP is the master's Elastic IP (Up).
	MasterIP string
	// TODO lists what kubeup does not do for you yet.
	TODO []string
}

func (r *Report) add(out io.Writer, st Step) {
	r.Steps = append(r.Steps, st)
	fmt.Fprintln(out, "  "+st.String())
}

// waitDelay sets a waiter's delays from PollDelay.
func (p *Client) waitDelay(minDelay, maxDelay *time.Duration) {
	if p.poll > 0 {
		*minDelay = p.poll
		*maxDelay = 4 * p.poll
	}
}

// tags are the tags of one resource.
func (s *Spec) tagMap(name, role string) map[string]string {
	t := map[string]string{ClusterTag: s.Cluster, "Name": name}
	if role != "" {
		t[RoleTag] = role
	}
	return t
}
