package packermanifest

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
)

// Manifest is the post-processor's file. Packer appends one Build per build and run to the
// same file, oldest first, and records the run that wrote last.
type Manifest struct {
	Builds      []Build `json:"builds"`
	LastRunUUID string  `json:"last_run_uuid"`
}

// Build is one build of one run.
type Build struct {
	Name        string `json:"name"`
	BuilderType string `json:"builder_type"`
	BuildTime   int64  `json:"build_time"`
	// ArtifactID is builder-specific: the VM or template name for vsphere-clone and vsphere-iso,
	// "region:ami-id[,region:ami-id...]" for amazon-ebs.
	ArtifactID    string            `json:"artifact_id"`
	PackerRunUUID string            `json:"packer_run_uuid"`
	CustomData    map[string]string `json:"custom_data"`
}

// Read parses a manifest file.
func Read(path string) (*Manifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("packer manifest: %w (fix: give the file the \"manifest\" post-processor wrote, see images/*.pkr.hcl)", err)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("packer manifest %s: %w (is it the output of Packer's \"manifest\" post-processor?)", path, err)
	}
	return &m, nil
}

// Last is the newest build by builderType. A manifest collects every run that wrote to it,
// possibly of several templates, so "newest" is the last such build in the file (Packer
// appends), preferring one of the last run when it made one.
func (m *Manifest) Last(builderType string) (Build, bool) {
	var found *Build
	for i := range m.Builds {
		b := &m.Builds[i]
		if b.BuilderType != builderType {
			continue
		}
		if found == nil || b.PackerRunUUID == m.LastRunUUID || found.PackerRunUUID != m.LastRunUUID {
			found = b
		}
	}
	if found == nil {
		return Build{}, false
	}
	return *found, true
}

// LastArtifact is the artifact ID of the newest builderType build recorded in the manifest at path.
func LastArtifact(path, builderType string) (string, error) {
	m, err := Read(path)
	if err != nil {
		return "", err
	}
	b, ok := m.Last(builderType)
	if !ok {
		var types []string
		for _, b := range m.Builds {
			if !slices.Contains(types, b.BuilderType) {
				types = append(types, b.BuilderType)
			}
		}
		have := "no builds"
		if len(types) > 0 {
			have = "builds of " + strings.Join(types, ", ")
		}
		return "", fmt.Errorf("packer manifest %s: no %s build (it has %s; fix: give the manifest of the %s template's build)", path, builderType, have, builderType)
	}
	if b.ArtifactID == "" {
		return "", fmt.Errorf("packer manifest %s: the %s build %q of run %s has no artifact_id (did the build fail?)", path, builderType, b.Name, b.PackerRunUUID)
	}
	return b.ArtifactID, nil
}
