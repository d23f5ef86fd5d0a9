package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// amiFrom is the AMI to start: the one Packer's manifest names for region, or aws.ami.
func amiFrom(manifest, region, configured string) (string, error) {
	if manifest == "" {
		if configured == "" {
			return "", fmt.Errorf("aws.ami is empty: set it in the cluster config, or pass --packer-manifest")
		}
		return configured, nil
	}
	artifact, err := lastPackerArtifact(manifest, "amazon-ebs")
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

// lastPackerArtifact is the artifact id of the newest build by builderType in Packer's manifest.
//
// TODO: a stop-gap copy until the vsphere branch's internal/packermanifest is merged: then call
// packermanifest.LastArtifact(path, builderType), which has this signature, and delete this.
func lastPackerArtifact(path, builderType string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("packer manifest: %w", err)
	}
	var m struct {
		Builds []struct {
			BuilderType string `json:"builder_type"`
			ArtifactID  string `json:"artifact_id"`
		} `json:"builds"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return "", fmt.Errorf("packer manifest %s: %w", path, err)
	}
	for i := len(m.Builds) - 1; i >= 0; i-- {
		if m.Builds[i].BuilderType == builderType {
			return m.Builds[i].ArtifactID, nil
		}
	}
	return "", fmt.Errorf("packer manifest %s: no %s build", path, builderType)
}
