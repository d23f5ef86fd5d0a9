package aws

import (
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// tagSpecs tags a resource at creation, in the same call: a resource is never untagged, so a
// re-run always finds it.
func tagSpecs(rt ec2types.ResourceType, tags map[string]string) []ec2types.TagSpecification {
	return []ec2types.TagSpecification{{ResourceType: rt, Tags: ec2Tags(tags)}}
}

func ec2Tags(tags map[string]string) []ec2types.Tag {
	var out []ec2types.Tag
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		out = append(out, ec2types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return out
}

// tagFilters finds resources by the cluster tag and Name.
func (s *Spec) tagFilters(name string, more ...ec2types.Filter) []ec2types.Filter {
	return append([]ec2types.Filter{
		{Name: aws.String("tag:" + ClusterTag), Values: []string{s.Cluster}},
		{Name: aws.String("tag:Name"), Values: []string{name}},
	}, more...)
}

// clusterFilter finds every resource of the cluster.
func (s *Spec) clusterFilter(more ...ec2types.Filter) []ec2types.Filter {
	return append([]ec2types.Filter{{Name: aws.String("tag:" + ClusterTag), Values: []string{s.Cluster}}}, more...)
}

func filter(name string, values ...string) ec2types.Filter {
	return ec2types.Filter{Name: aws.String(name), Values: values}
}

// withSum adds the config's SHA-256 (ConfigSumTag) to an instance's tags, when there is one.
func withSum(tags map[string]string, sum string) map[string]string {
	if sum != "" {
		tags[ConfigSumTag] = sum
	}
	return tags
}
