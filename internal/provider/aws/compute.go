package aws

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	asgtypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"k8s.io/apimachinery/pkg/util/wait"
)

// etcdDevice is where the etcd volume is attached on the master.
const etcdDevice = "/dev/sdf"

// metadataOptions: IMDSv2 only (a session token, which a forwarded request from a container or
// an SSRF cannot get), and a hop limit of 1 so that the token cannot leave the instance itself.
func metadataOptions() *ec2types.InstanceMetadataOptionsRequest {
	return &ec2types.InstanceMetadataOptionsRequest{HttpTokens: ec2types.HttpTokensStateRequired,
		HttpPutResponseHopLimit: aws.Int32(1), HttpEndpoint: ec2types.InstanceMetadataEndpointStateEnabled}
}

// ensureEIP finds the master's Elastic IP by its tags, or the operator's address that
// controlPlane.endpoint names, or allocates one. It comes before everything else: kubeup puts
// the address into the API server certificate, so the secrets bundle is made after it.
func (r *Run) ensureEIP(ctx context.Context) error {
	s, c := r.s, r.p.ec2
	name := s.name("master")
	id, err := r.ensure(ctx, "elastic-ip", name, func(ctx context.Context) (string, error) {
		out, err := c.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{Filters: s.tagFilters(name)})
		if err != nil {
			return "", r.wrap("DescribeAddresses", "elastic IP "+name, err)
		}
		if len(out.Addresses) == 0 {
			return r.adoptEIP(ctx, s.endpointHost())
		}
		a := out.Addresses[0]
		r.eip, r.eipOwner = aws.ToString(a.PublicIp), aws.ToString(a.InstanceId)
		return aws.ToString(a.AllocationId), nil
	}, func(ctx context.Context) (string, error) {
		out, err := c.AllocateAddress(ctx, &ec2.AllocateAddressInput{Domain: ec2types.DomainTypeVpc,
			TagSpecifications: tagSpecs(ec2types.ResourceTypeElasticIp, s.tagMap(name, "master"))})
		if err != nil {
			return "", r.wrap("AllocateAddress", "elastic IP "+name, err)
		}
		r.eip = aws.ToString(out.PublicIp)
		return aws.ToString(out.AllocationId), nil
	})
	r.allocID = id
	return err
}

// checkCertCoversEIP refuses to start machines whose API server certificate does not cover the
// Elastic IP: kubectl from outside the VPC could not verify it.
func (r *Run) checkCertCoversEIP(context.Context) error {
	s := r.s
	if r.eip == "" || r.eip == s.endpointHost() || slices.Contains(s.CertSANs, r.eip) {
		return nil // a dry run's address is not allocated yet; kubeup adds it once it is
	}
	msg := fmt.Sprintf("the master's Elastic IP is %s but the API server certificate covers only controlPlane.endpoint %q and certSANs %v: "+
		"kubectl from outside the VPC would fail TLS verification. Add %s to controlPlane.certSANs in the cluster config, re-issue the "+
		"certificate with 'kubeup certs renew apiserver --config <cluster config>', and run kubeup up again; the Elastic IP is kept "+
		"(tagged %s=%s) until kubeup down", r.eip, s.Endpoint, s.CertSANs, r.eip, ClusterTag, s.Cluster)
	if r.dry {
		r.rep.TODO = append(r.rep.TODO, msg)
		return nil
	}
	return fmt.Errorf("aws: %s", msg)
}

// adoptEIP finds an Elastic IP the operator allocated and wrote into controlPlane.endpoint (a
// public endpoint of their choosing). It is used but not tagged: it is the operator's, and
// kubeup down leaves it allocated.
func (r *Run) adoptEIP(ctx context.Context, host string) (string, error) {
	if a, err := netip.ParseAddr(host); err != nil || a.IsPrivate() {
		return "", nil // a name, or the master's private address: nothing to adopt
	}
	out, err := r.p.ec2.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{Filters: []ec2types.Filter{filter("public-ip", host)}})
	if err != nil {
		return "", r.wrap("DescribeAddresses", "elastic IP "+host, err)
	}
	if len(out.Addresses) == 0 {
		return "", nil
	}
	a := out.Addresses[0]
	if owner := tagValue(a.Tags, ClusterTag); owner != "" && owner != r.s.Cluster {
		return "", fmt.Errorf("aws: controlPlane.endpoint %s is the Elastic IP of kubeup cluster %s: give this cluster its own address", host, owner)
	}
	if a.InstanceId != nil && aws.ToString(a.InstanceId) != "" {
		// Associated with something else than our master? Checked once the master is known.
		r.eipOwner = aws.ToString(a.InstanceId)
	}
	r.eip = aws.ToString(a.PublicIp)
	r.note = "yours (controlPlane.endpoint): used, not tagged; kubeup down leaves it allocated"
	return aws.ToString(a.AllocationId), nil
}

// ensureVolume makes the master's etcd data volume in the subnet's zone.
func (r *Run) ensureVolume(ctx context.Context) error {
	s, c := r.s, r.p.ec2
	name := s.name("etcd")
	var err error
	r.volume, err = r.ensure(ctx, "ebs-volume", name, func(ctx context.Context) (string, error) {
		pg := ec2.NewDescribeVolumesPaginator(c, &ec2.DescribeVolumesInput{Filters: s.tagFilters(name,
			filter("status", "creating", "available", "in-use"))})
		for pg.HasMorePages() {
			page, err := pg.NextPage(ctx)
			if err != nil {
				return "", r.wrap("DescribeVolumes", "volume "+name, err)
			}
			for _, v := range page.Volumes {
				for _, a := range v.Attachments {
					r.volumeAttachedTo = aws.ToString(a.InstanceId)
				}
				return aws.ToString(v.VolumeId), nil
			}
		}
		return "", nil
	}, func(ctx context.Context) (string, error) {
		out, err := c.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String(r.az), Size: aws.Int32(s.etcdGiB()),
			VolumeType: ec2types.VolumeTypeGp3, Encrypted: aws.Bool(true), ClientToken: s.token("etcd-volume"),
			TagSpecifications: tagSpecs(ec2types.ResourceTypeVolume, s.tagMap(name, "master"))})
		if err != nil {
			return "", r.wrap("CreateVolume", "volume "+name, err)
		}
		id := aws.ToString(out.VolumeId)
		w := ec2.NewVolumeAvailableWaiter(c, func(o *ec2.VolumeAvailableWaiterOptions) { r.p.waitDelay(&o.MinDelay, &o.MaxDelay) })
		return id, r.wrap("DescribeVolumes (wait until available)", "volume "+id,
			w.Wait(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{id}}, 5*time.Minute))
	})
	return err
}

// ensureMaster starts the master with its pointer user-data, then attaches the etcd volume and
// the Elastic IP.
func (r *Run) ensureMaster(ctx context.Context) error {
	s, c := r.s, r.p.ec2
	name := s.name(s.Master.Name)
	ud, err := s.userData(s.Master)
	if err != nil {
		return err
	}
	r.instance, err = r.ensure(ctx, "instance", name, func(ctx context.Context) (string, error) {
		return r.findInstance(ctx, name)
	}, func(ctx context.Context) (string, error) {
		in := &ec2.RunInstancesInput{ImageId: aws.String(s.AMI), InstanceType: ec2types.InstanceType(s.InstanceType),
			MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SubnetId: aws.String(r.subnet), PrivateIpAddress: aws.String(s.masterIP()),
			SecurityGroupIds: []string{r.sgCluster, r.sgAPI}, UserData: aws.String(base64.StdEncoding.EncodeToString(ud)),
			MetadataOptions: metadataOptions(), ClientToken: s.token(cmp.Or(r.instanceToken, "master-instance")),
			TagSpecifications: append(tagSpecs(ec2types.ResourceTypeInstance, withSum(s.tagMap(name, "master"), s.Master.Sum)),
				tagSpecs(ec2types.ResourceTypeVolume, s.tagMap(name+"-root", "master"))...)}
		if arn := r.profiles[s.Master.Name]; arn != "" {
			in.IamInstanceProfile = &ec2types.IamInstanceProfileSpecification{Arn: aws.String(arn)}
		}
		out, err := r.runInstances(ctx, in)
		if err != nil {
			return "", r.wrap("RunInstances", "instance "+name, err)
		}
		id := aws.ToString(out.Instances[0].InstanceId)
		w := ec2.NewInstanceRunningWaiter(c, func(o *ec2.InstanceRunningWaiterOptions) { r.p.waitDelay(&o.MinDelay, &o.MaxDelay) })
		return id, r.wrap("DescribeInstances (wait until running)", "instance "+id,
			w.Wait(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}, 10*time.Minute))
	})
	if err != nil {
		return err
	}
	err = r.change(ctx, "volume-attachment", s.name("etcd")+" → "+orNew(r.instance)+" "+etcdDevice,
		r.instance != "" && r.volumeAttachedTo == r.instance, func(ctx context.Context) error {
			_, err := c.AttachVolume(ctx, &ec2.AttachVolumeInput{VolumeId: aws.String(r.volume), InstanceId: aws.String(r.instance), Device: aws.String(etcdDevice)})
			return r.wrap("AttachVolume", "volume "+r.volume, err)
		})
	if err != nil {
		return err
	}
	return r.change(ctx, "eip-association", orNew(r.eip)+" → "+orNew(r.instance), r.instance != "" && r.eipOwner == r.instance, func(ctx context.Context) error {
		_, err := c.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: aws.String(r.allocID), InstanceId: aws.String(r.instance)})
		return r.wrap("AssociateAddress", "elastic IP "+r.eip, err)
	})
}

// runInstances retries while a new instance profile is not yet visible to EC2: IAM is
// eventually consistent, and a profile made seconds ago is refused for a while.
func (r *Run) runInstances(ctx context.Context, in *ec2.RunInstancesInput) (*ec2.RunInstancesOutput, error) {
	var out *ec2.RunInstancesOutput
	var err error
	// Every 5 s for 2 minutes; then the last refusal is the error. The calls get ctx, not the
	// poll's: the 2 minutes bound the retries, not a call under way.
	pollErr := wait.PollUntilContextTimeout(ctx, 5*time.Second, 2*time.Minute, true, func(context.Context) (bool, error) {
		out, err = r.p.ec2.RunInstances(ctx, in)
		return err == nil || codeOf(err) != "InvalidParameterValue" || !strings.Contains(strings.ToLower(err.Error()), "instance profile"), nil
	})
	if pollErr != nil && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return out, err
}

// findInstance finds the cluster's live instance of that Name.
func (r *Run) findInstance(ctx context.Context, name string) (string, error) {
	pg := ec2.NewDescribeInstancesPaginator(r.p.ec2, &ec2.DescribeInstancesInput{Filters: r.s.tagFilters(name,
		filter("instance-state-name", "pending", "running", "stopping", "stopped"))})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return "", r.wrap("DescribeInstances", "instance "+name, err)
		}
		for _, res := range page.Reservations {
			for _, in := range res.Instances {
				return aws.ToString(in.InstanceId), nil
			}
		}
	}
	return "", nil
}

// ensureNodes makes the nodes' launch template, whose user-data is the node role's config,
// and the Auto Scaling group that keeps NumNodes of them running.
func (r *Run) ensureNodes(ctx context.Context) error {
	s, c := r.s, r.p.ec2
	name := s.name(s.Node.Name)
	ud, err := s.userData(s.Node)
	if err != nil {
		return err
	}
	data := &ec2types.RequestLaunchTemplateData{ImageId: aws.String(s.AMI), InstanceType: ec2types.InstanceType(s.InstanceType),
		UserData: aws.String(base64.StdEncoding.EncodeToString(ud)), MetadataOptions: ltMetadataOptions(),
		// A public address so that nodes reach S3 and the internet without a NAT gateway;
		// the security group still lets in only the cluster's own machines.
		NetworkInterfaces: []ec2types.LaunchTemplateInstanceNetworkInterfaceSpecificationRequest{{DeviceIndex: aws.Int32(0),
			AssociatePublicIpAddress: aws.Bool(true), Groups: []string{r.sgCluster}}},
		TagSpecifications: []ec2types.LaunchTemplateTagSpecificationRequest{{ResourceType: ec2types.ResourceTypeInstance,
			Tags: ec2Tags(withSum(s.tagMap(name, "node"), s.Node.Sum))}}}
	if arn := r.profiles[s.Node.Name]; arn != "" {
		data.IamInstanceProfile = &ec2types.LaunchTemplateIamInstanceProfileSpecificationRequest{Arn: aws.String(arn)}
	}
	found, current := false, true
	var latest, dflt int64
	lt, err := r.ensure(ctx, "launch-template", name, func(ctx context.Context) (string, error) {
		id, l, d, err := r.findTemplate(ctx, name)
		if id == "" || err != nil {
			return "", err
		}
		found, latest, dflt = true, l, d
		current, err = r.templateCurrent(ctx, id, data)
		return id, err
	}, func(ctx context.Context) (string, error) {
		out, err := c.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String(name), ClientToken: s.token("node-launch-template"),
			LaunchTemplateData: data, TagSpecifications: tagSpecs(ec2types.ResourceTypeLaunchTemplate, s.tagMap(name, "node"))})
		if err != nil {
			return "", r.wrap("CreateLaunchTemplate", "launch template "+name, err)
		}
		return aws.ToString(out.LaunchTemplate.LaunchTemplateId), nil
	})
	if err != nil {
		return err
	}
	// A node config (a new pool token: docs/bootstrap-tokens.md), AMI or instance type that
	// changed since: a new version, which the group ($Latest) uses for the nodes it starts from
	// now on, made the default too, for anything that launches the template's $Default. Running
	// nodes keep theirs.
	if found && !current && s.KeepNodeConfig {
		r.rep.TODO = append(r.rep.TODO, fmt.Sprintf("launch template %s keeps its version %d: %s", name, latest, s.KeepNodeConfigWhy))
		current = true
	}
	if found {
		in := &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateId: aws.String(lt), LaunchTemplateData: data,
			ClientToken: s.token("node-launch-template-" + hashOf(ud, s.AMI, s.InstanceType))}
		if err := r.newVersion(ctx, name, "this node config, AMI and type", latest, dflt, current, in); err != nil {
			return err
		}
	}

	group := s.name("nodes")
	_, err = r.ensure(ctx, "autoscaling-group", group, func(ctx context.Context) (string, error) {
		g, err := r.findGroup(ctx, group)
		if g == nil || err != nil {
			return "", err
		}
		if have := aws.ToInt32(g.DesiredCapacity); int(have) != s.NumNodes {
			r.rep.TODO = append(r.rep.TODO, fmt.Sprintf("autoscaling group %s runs %d nodes, not %d: up does not resize it (aws autoscaling update-auto-scaling-group)", group, have, s.NumNodes))
		}
		return group, nil
	}, func(ctx context.Context) (string, error) {
		n := aws.Int32(int32(s.NumNodes))
		_, err := r.p.asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{AutoScalingGroupName: aws.String(group),
			LaunchTemplate: &asgtypes.LaunchTemplateSpecification{LaunchTemplateId: aws.String(lt), Version: aws.String("$Latest")},
			MinSize:        n, MaxSize: n, DesiredCapacity: n, VPCZoneIdentifier: aws.String(r.subnet),
			Tags: []asgtypes.Tag{
				{Key: aws.String(ClusterTag), Value: aws.String(s.Cluster), PropagateAtLaunch: aws.Bool(true)},
				{Key: aws.String("Name"), Value: aws.String(group), PropagateAtLaunch: aws.Bool(false)},
			}})
		return group, r.wrap("CreateAutoScalingGroup", "autoscaling group "+group, err)
	})
	return err
}

// newVersion makes in's launch template version unless the newest is current, and makes the
// newest the default: also when an earlier run made the version and stopped before that.
func (r *Run) newVersion(ctx context.Context, name, what string, latest, dflt int64, current bool, in *ec2.CreateLaunchTemplateVersionInput) error {
	lt := aws.ToString(in.LaunchTemplateId)
	err := r.change(ctx, "template-version", name+" $Latest: "+what, current, func(ctx context.Context) error {
		out, err := r.p.ec2.CreateLaunchTemplateVersion(ctx, in)
		if err == nil && out.LaunchTemplateVersion != nil {
			latest = aws.ToInt64(out.LaunchTemplateVersion.VersionNumber)
		}
		return r.wrap("CreateLaunchTemplateVersion", "launch template "+lt, err)
	})
	if err != nil {
		return err
	}
	step := fmt.Sprintf("%s version %d", name, latest)
	if !current && r.dry {
		step = name + " its new version"
	}
	return r.change(ctx, "template-default", step, current && latest == dflt, func(ctx context.Context) error {
		_, err := r.p.ec2.ModifyLaunchTemplate(ctx, &ec2.ModifyLaunchTemplateInput{LaunchTemplateId: aws.String(lt),
			DefaultVersion: aws.String(strconv.FormatInt(latest, 10))})
		return r.wrap("ModifyLaunchTemplate", "launch template "+lt, err)
	})
}

func ltMetadataOptions() *ec2types.LaunchTemplateInstanceMetadataOptionsRequest {
	return &ec2types.LaunchTemplateInstanceMetadataOptionsRequest{HttpTokens: ec2types.LaunchTemplateHttpTokensStateRequired,
		HttpPutResponseHopLimit: aws.Int32(1), HttpEndpoint: ec2types.LaunchTemplateInstanceMetadataEndpointStateEnabled}
}

// findGroup finds the cluster's Auto Scaling group of that name (nil if there is none).
func (r *Run) findGroup(ctx context.Context, name string) (*asgtypes.AutoScalingGroup, error) {
	pg := autoscaling.NewDescribeAutoScalingGroupsPaginator(r.p.asg, &autoscaling.DescribeAutoScalingGroupsInput{
		AutoScalingGroupNames: []string{name}})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return nil, r.wrap("DescribeAutoScalingGroups", "autoscaling group "+name, err)
		}
		for _, g := range page.AutoScalingGroups {
			for _, t := range g.Tags {
				if aws.ToString(t.Key) == ClusterTag && aws.ToString(t.Value) == r.s.Cluster {
					return &g, nil
				}
			}
		}
	}
	return nil, nil
}

// templateCurrent says whether a launch template's newest version starts what data would.
func (r *Run) templateCurrent(ctx context.Context, id string, data *ec2types.RequestLaunchTemplateData) (bool, error) {
	out, err := r.p.ec2.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: aws.String(id),
		Versions: []string{"$Latest"}})
	if err != nil {
		return false, r.wrap("DescribeLaunchTemplateVersions", "launch template "+id, err)
	}
	for _, v := range out.LaunchTemplateVersions {
		d := v.LaunchTemplateData
		return d != nil && aws.ToString(d.UserData) == aws.ToString(data.UserData) && aws.ToString(d.ImageId) == aws.ToString(data.ImageId) &&
			d.InstanceType == data.InstanceType && instanceSum(d.TagSpecifications) == r.s.Node.Sum, nil
	}
	return false, nil
}

// instanceSum is the config SHA-256 (ConfigSumTag) a launch template version tags its
// instances with; "" for none.
func instanceSum(specs []ec2types.LaunchTemplateTagSpecification) string {
	for _, ts := range specs {
		if ts.ResourceType == ec2types.ResourceTypeInstance {
			return tagValue(ts.Tags, ConfigSumTag)
		}
	}
	return ""
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func hashOf(parts ...any) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%v\x00", p)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}
