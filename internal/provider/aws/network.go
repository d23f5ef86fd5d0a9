package aws

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

const anywhere = "0.0.0.0/0"

// ensureNetwork makes the VPC, its one subnet (the master address's network), an internet
// gateway and the main route table's default route through it.
func (r *Run) ensureNetwork(ctx context.Context) error {
	s, c := r.s, r.p.ec2
	cidr, _ := s.network()
	name := s.name("")
	var err error
	r.vpc, err = r.ensure(ctx, "vpc", name, func(ctx context.Context) (string, error) {
		pg := ec2.NewDescribeVpcsPaginator(c, &ec2.DescribeVpcsInput{Filters: s.tagFilters(name)})
		for pg.HasMorePages() {
			page, err := pg.NextPage(ctx)
			if err != nil {
				return "", r.wrap("DescribeVpcs", "vpc "+name, err)
			}
			for _, v := range page.Vpcs {
				return aws.ToString(v.VpcId), nil
			}
		}
		return "", nil
	}, func(ctx context.Context) (string, error) {
		out, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String(cidr.String()),
			TagSpecifications: tagSpecs(ec2types.ResourceTypeVpc, s.tagMap(name, ""))})
		if err != nil {
			return "", r.wrap("CreateVpc", "vpc "+name, err)
		}
		id := aws.ToString(out.Vpc.VpcId)
		w := ec2.NewVpcAvailableWaiter(c, func(o *ec2.VpcAvailableWaiterOptions) { r.p.waitDelay(&o.MinDelay, &o.MaxDelay) })
		return id, r.wrap("DescribeVpcs (wait until available)", "vpc "+id,
			w.Wait(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{id}}, 5*time.Minute))
	})
	if err != nil {
		return err
	}

	r.subnet, err = r.ensure(ctx, "subnet", name, func(ctx context.Context) (string, error) {
		pg := ec2.NewDescribeSubnetsPaginator(c, &ec2.DescribeSubnetsInput{Filters: s.tagFilters(name)})
		for pg.HasMorePages() {
			page, err := pg.NextPage(ctx)
			if err != nil {
				return "", r.wrap("DescribeSubnets", "subnet "+name, err)
			}
			for _, sn := range page.Subnets {
				r.az = aws.ToString(sn.AvailabilityZone)
				return aws.ToString(sn.SubnetId), nil
			}
		}
		return "", nil
	}, func(ctx context.Context) (string, error) {
		out, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(r.vpc), CidrBlock: aws.String(cidr.String()),
			TagSpecifications: tagSpecs(ec2types.ResourceTypeSubnet, s.tagMap(name, ""))})
		if err != nil {
			return "", r.wrap("CreateSubnet", "subnet "+name, err)
		}
		r.az = aws.ToString(out.Subnet.AvailabilityZone)
		return aws.ToString(out.Subnet.SubnetId), nil
	})
	if err != nil {
		return err
	}

	var attachedTo []string
	r.igw, err = r.ensure(ctx, "internet-gateway", name, func(ctx context.Context) (string, error) {
		pg := ec2.NewDescribeInternetGatewaysPaginator(c, &ec2.DescribeInternetGatewaysInput{Filters: s.tagFilters(name)})
		for pg.HasMorePages() {
			page, err := pg.NextPage(ctx)
			if err != nil {
				return "", r.wrap("DescribeInternetGateways", "internet gateway "+name, err)
			}
			for _, g := range page.InternetGateways {
				for _, a := range g.Attachments {
					attachedTo = append(attachedTo, aws.ToString(a.VpcId))
				}
				return aws.ToString(g.InternetGatewayId), nil
			}
		}
		return "", nil
	}, func(ctx context.Context) (string, error) {
		out, err := c.CreateInternetGateway(ctx, &ec2.CreateInternetGatewayInput{
			TagSpecifications: tagSpecs(ec2types.ResourceTypeInternetGateway, s.tagMap(name, ""))})
		if err != nil {
			return "", r.wrap("CreateInternetGateway", "internet gateway "+name, err)
		}
		return aws.ToString(out.InternetGateway.InternetGatewayId), nil
	})
	if err != nil {
		return err
	}
	err = r.change(ctx, "igw-attachment", name+" → "+orNew(r.vpc), r.vpc != "" && slices.Contains(attachedTo, r.vpc), func(ctx context.Context) error {
		_, err := c.AttachInternetGateway(ctx, &ec2.AttachInternetGatewayInput{InternetGatewayId: aws.String(r.igw), VpcId: aws.String(r.vpc)})
		return r.wrap("AttachInternetGateway", "internet gateway "+r.igw, err)
	})
	if err != nil {
		return err
	}

	rt, hasRoute, err := r.mainRouteTable(ctx)
	if err != nil {
		return err
	}
	return r.change(ctx, "route", anywhere+" → "+orNew(r.igw), hasRoute, func(ctx context.Context) error {
		_, err := c.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: aws.String(rt), DestinationCidrBlock: aws.String(anywhere),
			GatewayId: aws.String(r.igw)})
		return r.wrap("CreateRoute", "default route in "+rt, err)
	})
}

// mainRouteTable is the VPC's main route table (AWS makes it with the VPC) and whether it
// has the default route through the cluster's internet gateway.
func (r *Run) mainRouteTable(ctx context.Context) (id string, hasRoute bool, err error) {
	if r.vpc == "" {
		return "", false, nil
	}
	pg := ec2.NewDescribeRouteTablesPaginator(r.p.ec2, &ec2.DescribeRouteTablesInput{Filters: []ec2types.Filter{
		filter("vpc-id", r.vpc), filter("association.main", "true")}})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return "", false, r.wrap("DescribeRouteTables", "main route table of "+r.vpc, err)
		}
		for _, t := range page.RouteTables {
			for _, rt := range t.Routes {
				if aws.ToString(rt.DestinationCidrBlock) == anywhere && r.igw != "" && aws.ToString(rt.GatewayId) == r.igw {
					hasRoute = true
				}
			}
			return aws.ToString(t.RouteTableId), hasRoute, nil
		}
	}
	return "", false, fmt.Errorf("aws: vpc %s has no main route table", r.vpc)
}

// orNew names a resource that a dry run has not made.
func orNew(id string) string {
	if id == "" {
		return "(new)"
	}
	return id
}
