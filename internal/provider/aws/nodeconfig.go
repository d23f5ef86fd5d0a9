package aws

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// SyncNodeConfig puts s.Node into the nodes' launch template and changes nothing else: a new
// version from the newest one with only its user-data replaced, made the default, so that the
// Auto Scaling group starts new nodes with it (kubeup tokens sync: the node pool's new
// bootstrap token, docs/bootstrap-tokens.md). A node config kept in S3 is uploaded first. It
// needs only ec2:DescribeLaunchTemplates, DescribeLaunchTemplateVersions,
// CreateLaunchTemplateVersion and ModifyLaunchTemplate (and s3:PutObject for a config in S3),
// not the rights up needs; nothing is made if the template already carries this config.
func (p *Client) SyncNodeConfig(ctx context.Context, s *Spec, dry bool) (*Report, error) {
	if s.Cluster == "" || s.Node.Name == "" || len(s.Node.Raw) == 0 {
		return nil, fmt.Errorf("aws: sync the node config: the cluster name and the node config are required")
	}
	r := &Run{p: p, s: s, dry: dry, rep: &Report{}, profiles: map[string]string{}}
	name := s.name(s.Node.Name)
	if behind, _ := inS3(s.Node); behind {
		if err := r.ensureObject(ctx, s.Node); err != nil {
			return r.rep, err
		}
	}
	ud, err := s.userData(s.Node)
	if err != nil {
		return r.rep, err
	}
	id, latest, dflt, err := r.findTemplate(ctx, name)
	if err != nil {
		return r.rep, err
	}
	if id == "" {
		return r.rep, fmt.Errorf("aws: cluster %s has no launch template %s in %s: run kubeup up first", s.Cluster, name, p.region)
	}
	r.rep.add(p.out, Step{Kind: "launch-template", Name: name, ID: id, State: "exists"})
	out, err := p.ec2.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: aws.String(id),
		Versions: []string{strconv.FormatInt(latest, 10)}})
	if err != nil {
		return r.rep, r.wrap("DescribeLaunchTemplateVersions", "launch template "+id, err)
	}
	encoded := base64.StdEncoding.EncodeToString(ud)
	current := len(out.LaunchTemplateVersions) == 1 && out.LaunchTemplateVersions[0].LaunchTemplateData != nil &&
		aws.ToString(out.LaunchTemplateVersions[0].LaunchTemplateData.UserData) == encoded
	in := &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateId: aws.String(id), SourceVersion: aws.String(strconv.FormatInt(latest, 10)),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{UserData: aws.String(encoded)},
		ClientToken:        s.token(fmt.Sprintf("node-user-data-%d-%s", latest, hashOf(ud)))}
	return r.rep, r.newVersion(ctx, name, "this node config", latest, dflt, current, in)
}

// findTemplate finds the cluster's launch template of that name: its ID ("" if there is none)
// and its newest and default version numbers.
func (r *Run) findTemplate(ctx context.Context, name string) (id string, latest, dflt int64, err error) {
	pg := ec2.NewDescribeLaunchTemplatesPaginator(r.p.ec2, &ec2.DescribeLaunchTemplatesInput{Filters: r.s.tagFilters(name)})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return "", 0, 0, r.wrap("DescribeLaunchTemplates", "launch template "+name, err)
		}
		for _, t := range page.LaunchTemplates {
			return aws.ToString(t.LaunchTemplateId), aws.ToInt64(t.LatestVersionNumber), aws.ToInt64(t.DefaultVersionNumber), nil
		}
	}
	return "", 0, 0, nil
}
