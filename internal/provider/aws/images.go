package aws

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// ImagePattern is the name of the AMIs the Packer templates build for an OS
// (images/aws-<os>*.pkr.hcl: kubeup-<os>-...-{{timestamp}}), as an EC2 name filter.
func ImagePattern(os string) string { return "kubeup-" + os + "-*" }

// NewestImage is the newest available AMI of this account whose name matches pattern (EC2's
// * and ? wildcards): the last image Packer built, when the config names none.
func (c *Client) NewestImage(ctx context.Context, pattern string) (id, name string, err error) {
	var newest string
	pg := ec2.NewDescribeImagesPaginator(c.ec2, &ec2.DescribeImagesInput{Owners: []string{"self"},
		Filters: []ec2types.Filter{filter("name", pattern), filter("state", "available")}})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return "", "", wrap(c.region, "DescribeImages", "AMIs named "+pattern, err)
		}
		for _, im := range page.Images {
			// creationDate is RFC 3339 in UTC: its text orders as its time.
			if created := aws.ToString(im.CreationDate); id == "" || created > newest {
				id, name, newest = aws.ToString(im.ImageId), aws.ToString(im.Name), created
			}
		}
	}
	if id == "" {
		return "", "", fmt.Errorf("aws: this account has no AMI named %s in %s: build one with the Packer template (docs/image.md), or set aws.ami, or pass --packer-manifest", pattern, c.region)
	}
	return id, name, nil
}

// DefaultRegion is the region the SDK's settings name (AWS_REGION, AWS_DEFAULT_REGION, the
// profile), or "".
func DefaultRegion(ctx context.Context) string {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return ""
	}
	return cfg.Region
}
