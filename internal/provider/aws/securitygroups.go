package aws

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// APIPort is the API server's port, the only one open to the outside.
const APIPort = 6443

// ensureSecurityGroups makes two groups: "cluster", on every machine, letting the machines
// talk to each other on every port; and "apiserver", on the master only, letting
// aws.allowedCIDRs reach 6443. No SSH: machines are configured by Ignition and report on
// their own.
func (r *Run) ensureSecurityGroups(ctx context.Context) error {
	var err error
	var perms []ec2types.IpPermission
	r.sgCluster, perms, err = r.ensureGroup(ctx, "cluster", "kubeup cluster "+r.s.Cluster+": traffic between its machines")
	if err != nil {
		return err
	}
	self := ec2types.IpPermission{IpProtocol: aws.String("-1"),
		UserIdGroupPairs: []ec2types.UserIdGroupPair{{GroupId: aws.String(orNew(r.sgCluster))}}}
	if err := r.ensureRules(ctx, r.sgCluster, r.s.name("cluster"), perms, []ec2types.IpPermission{self}); err != nil {
		return err
	}

	r.sgAPI, perms, err = r.ensureGroup(ctx, "apiserver", "kubeup cluster "+r.s.Cluster+": the API server, from aws.allowedCIDRs")
	if err != nil {
		return err
	}
	var want []ec2types.IpPermission
	for _, cidr := range r.s.AllowedCIDRs {
		want = append(want, ec2types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(APIPort), ToPort: aws.Int32(APIPort),
			IpRanges: []ec2types.IpRange{{CidrIp: aws.String(cidr), Description: aws.String("aws.allowedCIDRs")}}})
	}
	return r.ensureRules(ctx, r.sgAPI, r.s.name("apiserver"), perms, want)
}

func (r *Run) ensureGroup(ctx context.Context, part, desc string) (string, []ec2types.IpPermission, error) {
	s, c := r.s, r.p.ec2
	name := s.name(part)
	var perms []ec2types.IpPermission
	id, err := r.ensure(ctx, "security-group", name, func(ctx context.Context) (string, error) {
		pg := ec2.NewDescribeSecurityGroupsPaginator(c, &ec2.DescribeSecurityGroupsInput{Filters: s.tagFilters(name)})
		for pg.HasMorePages() {
			page, err := pg.NextPage(ctx)
			if err != nil {
				return "", r.wrap("DescribeSecurityGroups", "security group "+name, err)
			}
			for _, g := range page.SecurityGroups {
				perms = g.IpPermissions
				return aws.ToString(g.GroupId), nil
			}
		}
		return "", nil
	}, func(ctx context.Context) (string, error) {
		out, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String(name), Description: aws.String(desc),
			VpcId: aws.String(r.vpc), TagSpecifications: tagSpecs(ec2types.ResourceTypeSecurityGroup, s.tagMap(name, ""))})
		if err != nil {
			return "", r.wrap("CreateSecurityGroup", "security group "+name, err)
		}
		return aws.ToString(out.GroupId), nil
	})
	return id, perms, err
}

// ensureRules adds the rules of want that the group does not have yet. Rules it has beyond
// them are left alone (someone added them on purpose).
func (r *Run) ensureRules(ctx context.Context, group, name string, have, want []ec2types.IpPermission) error {
	for _, w := range want {
		desc := ruleString(w)
		err := r.change(ctx, "ingress-rule", name+": "+desc, group != "" && hasRule(have, w), func(ctx context.Context) error {
			_, err := r.p.ec2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(group),
				IpPermissions: []ec2types.IpPermission{fixSelf(w, group)}})
			return r.wrap("AuthorizeSecurityGroupIngress", "security group "+name+" rule "+desc, err)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// fixSelf points a rule that names "(new)" as its source group at the group just made.
func fixSelf(p ec2types.IpPermission, group string) ec2types.IpPermission {
	for i := range p.UserIdGroupPairs {
		if aws.ToString(p.UserIdGroupPairs[i].GroupId) == orNew("") {
			p.UserIdGroupPairs[i].GroupId = aws.String(group)
		}
	}
	return p
}

func hasRule(have []ec2types.IpPermission, w ec2types.IpPermission) bool {
	for _, h := range have {
		if aws.ToString(h.IpProtocol) != aws.ToString(w.IpProtocol) || aws.ToInt32(h.FromPort) != aws.ToInt32(w.FromPort) ||
			aws.ToInt32(h.ToPort) != aws.ToInt32(w.ToPort) {
			continue
		}
		ok := true
		for _, wr := range w.IpRanges {
			found := false
			for _, hr := range h.IpRanges {
				found = found || aws.ToString(hr.CidrIp) == aws.ToString(wr.CidrIp)
			}
			ok = ok && found
		}
		for _, wg := range w.UserIdGroupPairs {
			found := false
			for _, hg := range h.UserIdGroupPairs {
				found = found || aws.ToString(hg.GroupId) == aws.ToString(wg.GroupId)
			}
			ok = ok && found
		}
		if ok {
			return true
		}
	}
	return false
}

func ruleString(p ec2types.IpPermission) string {
	what := "all traffic"
	if aws.ToString(p.IpProtocol) != "-1" {
		what = aws.ToString(p.IpProtocol) + "/" + itoa(aws.ToInt32(p.FromPort))
	}
	from := ""
	for _, ip := range p.IpRanges {
		from += " " + aws.ToString(ip.CidrIp)
	}
	for range p.UserIdGroupPairs {
		from += " its own members"
	}
	return what + " from" + from
}
