package aws

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Down deletes what Up made for the cluster, found by its tags, dependants first: the Auto
// Scaling group, the launch template, the instances, the Elastic IP, the etcd volume, the
// security groups, the default route and internet gateway, the subnet, the VPC, the configs in
// S3 and the IAM roles. It goes on past a failure, so one stuck resource does not keep the
// others alive, and returns every failure with its reason. The bucket stays: it may hold other
// things. With dry set it only lists what it would delete.
func (p *Client) Down(ctx context.Context, s *Spec, dry bool) (*Report, error) {
	if s.Cluster == "" {
		return nil, errors.New("aws: the cluster has no name")
	}
	d := &downer{Run: Run{p: p, s: s, dry: dry, rep: &Report{}}}
	for _, step := range []func(context.Context){
		d.deleteGroup, d.deleteLaunchTemplate, d.deleteInstances, d.deleteEIP, d.deleteVolume,
		d.deleteSecurityGroups, d.deleteGateway, d.deleteSubnets, d.deleteVPC, d.deleteObjects, d.deleteRoles,
	} {
		if ctx.Err() != nil {
			d.errs = append(d.errs, ctx.Err())
			break
		}
		step(ctx)
	}
	if len(d.errs) > 0 {
		return d.rep, fmt.Errorf("aws: kubeup down could not delete everything of cluster %s (re-run it once the cause is fixed):\n%w", s.Cluster, errors.Join(d.errs...))
	}
	return d.rep, nil
}

type downer struct {
	Run
	errs []error
}

// del deletes one resource (or, in a dry run, says it would) and records the outcome.
func (d *downer) del(ctx context.Context, kind, name, id string, do func(context.Context) error) bool {
	st := Step{Kind: kind, Name: name, ID: id, State: "delete"}
	if !d.dry {
		st.State = "deleted"
		if err := do(ctx); err != nil {
			st.State, st.Note = "failed", codeOf(err)
			d.errs = append(d.errs, err)
		}
	}
	d.rep.add(d.p.out, st)
	return st.State != "failed"
}

func (d *downer) fail(err error) { d.errs = append(d.errs, err) }

func (d *downer) deleteGroup(ctx context.Context) {
	name := d.s.name("nodes")
	g, err := d.findGroup(ctx, name)
	if err != nil || g == nil {
		d.failIf(err)
		return
	}
	d.del(ctx, "autoscaling-group", name, "", func(ctx context.Context) error {
		// ForceDelete terminates the group's instances with it.
		_, err := d.p.asg.DeleteAutoScalingGroup(ctx, &autoscaling.DeleteAutoScalingGroupInput{AutoScalingGroupName: aws.String(name), ForceDelete: aws.Bool(true)})
		if err != nil {
			return d.wrap("DeleteAutoScalingGroup", "autoscaling group "+name, err)
		}
		w := autoscaling.NewGroupNotExistsWaiter(d.p.asg, func(o *autoscaling.GroupNotExistsWaiterOptions) { d.p.waitDelay(&o.MinDelay, &o.MaxDelay) })
		return d.wrap("DescribeAutoScalingGroups (wait until gone)", "autoscaling group "+name,
			w.Wait(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}}, 15*time.Minute))
	})
}

func (d *downer) failIf(err error) {
	if err != nil {
		d.fail(err)
	}
}

func (d *downer) deleteLaunchTemplate(ctx context.Context) {
	pg := ec2.NewDescribeLaunchTemplatesPaginator(d.p.ec2, &ec2.DescribeLaunchTemplatesInput{Filters: d.s.clusterFilter()})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			d.fail(d.wrap("DescribeLaunchTemplates", "launch templates of "+d.s.Cluster, err))
			return
		}
		for _, t := range page.LaunchTemplates {
			id := aws.ToString(t.LaunchTemplateId)
			d.del(ctx, "launch-template", aws.ToString(t.LaunchTemplateName), id, func(ctx context.Context) error {
				_, err := d.p.ec2.DeleteLaunchTemplate(ctx, &ec2.DeleteLaunchTemplateInput{LaunchTemplateId: aws.String(id)})
				return d.wrap("DeleteLaunchTemplate", "launch template "+id, err)
			})
		}
	}
}

// deleteInstances terminates every live instance of the cluster: the master, and any node the
// Auto Scaling group left behind.
func (d *downer) deleteInstances(ctx context.Context) {
	var ids []string
	pg := ec2.NewDescribeInstancesPaginator(d.p.ec2, &ec2.DescribeInstancesInput{Filters: d.s.clusterFilter(
		filter("instance-state-name", "pending", "running", "stopping", "stopped", "shutting-down"))})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			d.fail(d.wrap("DescribeInstances", "instances of "+d.s.Cluster, err))
			return
		}
		for _, res := range page.Reservations {
			for _, in := range res.Instances {
				id := aws.ToString(in.InstanceId)
				d.del(ctx, "instance", tagValue(in.Tags, "Name"), id, func(ctx context.Context) error {
					_, err := d.p.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
					if err == nil {
						ids = append(ids, id)
					}
					return d.wrap("TerminateInstances", "instance "+id, err)
				})
			}
		}
	}
	if len(ids) == 0 {
		return
	}
	// The volume, the addresses and the security groups stay in use until the instances are gone.
	w := ec2.NewInstanceTerminatedWaiter(d.p.ec2, func(o *ec2.InstanceTerminatedWaiterOptions) { d.p.waitDelay(&o.MinDelay, &o.MaxDelay) })
	if err := w.Wait(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids}, 10*time.Minute); err != nil {
		d.fail(d.wrap("DescribeInstances (wait until terminated)", fmt.Sprint("instances ", ids), err))
	}
}

func (d *downer) deleteEIP(ctx context.Context) {
	out, err := d.p.ec2.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{Filters: d.s.clusterFilter()})
	if err != nil {
		d.fail(d.wrap("DescribeAddresses", "elastic IPs of "+d.s.Cluster, err))
		return
	}
	for _, a := range out.Addresses {
		alloc, assoc := aws.ToString(a.AllocationId), aws.ToString(a.AssociationId)
		d.del(ctx, "elastic-ip", tagValue(a.Tags, "Name"), aws.ToString(a.PublicIp), func(ctx context.Context) error {
			if assoc != "" {
				if _, err := d.p.ec2.DisassociateAddress(ctx, &ec2.DisassociateAddressInput{AssociationId: aws.String(assoc)}); err != nil {
					return d.wrap("DisassociateAddress", "elastic IP "+aws.ToString(a.PublicIp), err)
				}
			}
			_, err := d.p.ec2.ReleaseAddress(ctx, &ec2.ReleaseAddressInput{AllocationId: aws.String(alloc)})
			return d.wrap("ReleaseAddress", "elastic IP "+aws.ToString(a.PublicIp), err)
		})
	}
}

func (d *downer) deleteVolume(ctx context.Context) {
	pg := ec2.NewDescribeVolumesPaginator(d.p.ec2, &ec2.DescribeVolumesInput{Filters: d.s.clusterFilter(
		filter("status", "creating", "available", "in-use"))})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			d.fail(d.wrap("DescribeVolumes", "volumes of "+d.s.Cluster, err))
			return
		}
		for _, v := range page.Volumes {
			id := aws.ToString(v.VolumeId)
			d.del(ctx, "ebs-volume", tagValue(v.Tags, "Name"), id, func(ctx context.Context) error {
				// Terminating the master detaches the volume; it is deletable once available.
				w := ec2.NewVolumeAvailableWaiter(d.p.ec2, func(o *ec2.VolumeAvailableWaiterOptions) { d.p.waitDelay(&o.MinDelay, &o.MaxDelay) })
				if err := w.Wait(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{id}}, 5*time.Minute); err != nil {
					return d.wrap("DescribeVolumes (wait until available)", "volume "+id, err)
				}
				_, err := d.p.ec2.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: aws.String(id)})
				return d.wrap("DeleteVolume", "volume "+id, err)
			})
		}
	}
}

// deleteSecurityGroups deletes the cluster's groups once no instance uses them. (The cluster
// group's rule naming itself does not hold it back; a rule in another group would.)
func (d *downer) deleteSecurityGroups(ctx context.Context) {
	var groups []ec2types.SecurityGroup
	pg := ec2.NewDescribeSecurityGroupsPaginator(d.p.ec2, &ec2.DescribeSecurityGroupsInput{Filters: d.s.clusterFilter()})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			d.fail(d.wrap("DescribeSecurityGroups", "security groups of "+d.s.Cluster, err))
			return
		}
		groups = append(groups, page.SecurityGroups...)
	}
	for _, g := range groups {
		id := aws.ToString(g.GroupId)
		d.del(ctx, "security-group", aws.ToString(g.GroupName), id, func(ctx context.Context) error {
			_, err := d.p.ec2.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(id)})
			return d.wrap("DeleteSecurityGroup", "security group "+id, err)
		})
	}
}

func (d *downer) vpcs(ctx context.Context) ([]string, error) {
	var ids []string
	pg := ec2.NewDescribeVpcsPaginator(d.p.ec2, &ec2.DescribeVpcsInput{Filters: d.s.clusterFilter()})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return nil, d.wrap("DescribeVpcs", "VPCs of "+d.s.Cluster, err)
		}
		for _, v := range page.Vpcs {
			ids = append(ids, aws.ToString(v.VpcId))
		}
	}
	return ids, nil
}

// deleteGateway removes the default route through the cluster's internet gateway, detaches the
// gateway and deletes it.
func (d *downer) deleteGateway(ctx context.Context) {
	c := d.p.ec2
	pg := ec2.NewDescribeInternetGatewaysPaginator(c, &ec2.DescribeInternetGatewaysInput{Filters: d.s.clusterFilter()})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			d.fail(d.wrap("DescribeInternetGateways", "internet gateways of "+d.s.Cluster, err))
			return
		}
		for _, g := range page.InternetGateways {
			igw := aws.ToString(g.InternetGatewayId)
			for _, a := range g.Attachments {
				vpc := aws.ToString(a.VpcId)
				d.vpc, d.igw = vpc, igw
				rt, has, err := d.mainRouteTable(ctx)
				if err != nil {
					d.fail(err)
				} else if has {
					d.del(ctx, "route", anywhere+" → "+igw, rt, func(ctx context.Context) error {
						_, err := c.DeleteRoute(ctx, &ec2.DeleteRouteInput{RouteTableId: aws.String(rt), DestinationCidrBlock: aws.String(anywhere)})
						return d.wrap("DeleteRoute", "default route in "+rt, err)
					})
				}
				d.del(ctx, "igw-attachment", igw+" → "+vpc, "", func(ctx context.Context) error {
					_, err := c.DetachInternetGateway(ctx, &ec2.DetachInternetGatewayInput{InternetGatewayId: aws.String(igw), VpcId: aws.String(vpc)})
					return d.wrap("DetachInternetGateway", "internet gateway "+igw, err)
				})
			}
			d.del(ctx, "internet-gateway", tagValue(g.Tags, "Name"), igw, func(ctx context.Context) error {
				_, err := c.DeleteInternetGateway(ctx, &ec2.DeleteInternetGatewayInput{InternetGatewayId: aws.String(igw)})
				return d.wrap("DeleteInternetGateway", "internet gateway "+igw, err)
			})
		}
	}
}

func (d *downer) deleteSubnets(ctx context.Context) {
	pg := ec2.NewDescribeSubnetsPaginator(d.p.ec2, &ec2.DescribeSubnetsInput{Filters: d.s.clusterFilter()})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			d.fail(d.wrap("DescribeSubnets", "subnets of "+d.s.Cluster, err))
			return
		}
		for _, sn := range page.Subnets {
			id := aws.ToString(sn.SubnetId)
			d.del(ctx, "subnet", tagValue(sn.Tags, "Name"), id, func(ctx context.Context) error {
				_, err := d.p.ec2.DeleteSubnet(ctx, &ec2.DeleteSubnetInput{SubnetId: aws.String(id)})
				return d.wrap("DeleteSubnet", "subnet "+id, err)
			})
		}
	}
}

func (d *downer) deleteVPC(ctx context.Context) {
	ids, err := d.vpcs(ctx)
	if err != nil {
		d.fail(err)
		return
	}
	for _, id := range ids {
		d.del(ctx, "vpc", d.s.name(""), id, func(ctx context.Context) error {
			_, err := d.p.ec2.DeleteVpc(ctx, &ec2.DeleteVpcInput{VpcId: aws.String(id)})
			return d.wrap("DeleteVpc", "vpc "+id, err)
		})
	}
}

// deleteObjects deletes the configs Up stored; the bucket stays.
func (d *downer) deleteObjects(ctx context.Context) {
	bucket, _, err := d.s.bucketPrefix()
	if err != nil {
		return
	}
	for _, c := range []Config{d.s.Master, d.s.Node} {
		if c.Name == "" {
			continue
		}
		key := d.s.objectKey(c)
		_, err := d.p.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if httpStatus(err) == 404 {
			continue
		}
		if err != nil {
			d.fail(d.wrap("HeadObject", "s3://"+bucket+"/"+key, err))
			continue
		}
		d.del(ctx, "s3-object", "s3://"+bucket+"/"+key, "", func(ctx context.Context) error {
			_, err := d.p.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			return d.wrap("DeleteObject", "s3://"+bucket+"/"+key, err)
		})
	}
}

// deleteRoles deletes the instance profiles and roles Up made (those tagged with the cluster).
func (d *downer) deleteRoles(ctx context.Context) {
	cl := d.p.iam
	for _, c := range []Config{d.s.Master, d.s.Node} {
		if c.Name == "" {
			continue
		}
		name := d.s.roleName(c)
		role, err := cl.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
		if codeOf(err) == "NoSuchEntity" {
			continue
		}
		if err != nil {
			d.fail(d.wrap("GetRole", "role "+name, err))
			continue
		}
		ours := false
		for _, t := range role.Role.Tags {
			ours = ours || aws.ToString(t.Key) == ClusterTag && aws.ToString(t.Value) == d.s.Cluster
		}
		if !ours {
			d.rep.add(d.p.out, Step{Kind: "iam-role", Name: name, State: "kept", Note: "not tagged " + ClusterTag + "=" + d.s.Cluster})
			continue
		}
		if prof, err := cl.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(name)}); err == nil {
			d.del(ctx, "instance-profile", name, "", func(ctx context.Context) error {
				for _, ro := range prof.InstanceProfile.Roles {
					if _, err := cl.RemoveRoleFromInstanceProfile(ctx, &iam.RemoveRoleFromInstanceProfileInput{InstanceProfileName: aws.String(name),
						RoleName: ro.RoleName}); err != nil {
						return d.wrap("RemoveRoleFromInstanceProfile", "instance profile "+name, err)
					}
				}
				_, err := cl.DeleteInstanceProfile(ctx, &iam.DeleteInstanceProfileInput{InstanceProfileName: aws.String(name)})
				return d.wrap("DeleteInstanceProfile", "instance profile "+name, err)
			})
		} else if codeOf(err) != "NoSuchEntity" {
			d.fail(d.wrap("GetInstanceProfile", "instance profile "+name, err))
		}
		d.del(ctx, "iam-role", name, "", func(ctx context.Context) error {
			_, err := cl.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(readPolicy)})
			if err != nil && codeOf(err) != "NoSuchEntity" {
				return d.wrap("DeleteRolePolicy", "role "+name, err)
			}
			_, err = cl.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String(name)})
			return d.wrap("DeleteRole", "role "+name, err)
		})
	}
}
