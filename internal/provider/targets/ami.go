package targets

import (
	"fmt"
	"strings"

	"kubeup.dev/kubeup/internal/packermanifest"
)

// amiFrom is the AMI to start: the one Packer's manifest names for region, or aws.ami, or "".
func amiFrom(manifest, region, configured string) (string, error) {
	if manifest == "" {
		return configured, nil // "": the provider looks for the newest one the Packer template built
	}
	artifact, err := packermanifest.LastArtifact(manifest, "amazon-ebs")
	if err != nil {
		return "", err
	}
	// amazon-ebs artifact ids are region:ami-id, comma-separated when the AMI was copied.
	var regions []string
	for _, part := range strings.Split(artifact, ",") {
		r, ami, ok := strings.Cut(strings.TrimSpace(part), ":")
		if ok && r == region {
			return ami, nil
		}
		regions = append(regions, r)
	}
	return "", fmt.Errorf("--packer-manifest %s: its last amazon-ebs build made AMIs in %v, not in %s (fix: build in aws.region, or add %s to the template's ami_regions)",
		manifest, regions, region, region)
}
