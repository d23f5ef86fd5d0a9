package bundle

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// ManifestFile is the bundle's record of every image.
const ManifestFile = "bundle.json"

// Manifest lists every image of a bundle with its digest: what a machine image must hold, and
// what an air-gapped site can check against.
type Manifest struct {
	Kubernetes string        `json:"kubernetes"`
	Images     []ImageRecord `json:"images"`
}

// ImageRecord is one image of the bundle.
type ImageRecord struct {
	Ref     string `json:"ref"`
	Digest  string `json:"digest"`
	Archive string `json:"archive"` // path relative to the bundle directory
	Source  string `json:"source"`  // what it was built from, or the registry it came from
}

// Encode writes the manifest sorted by reference, so the same images give the same bytes.
func (m Manifest) Encode() ([]byte, error) {
	sort.Slice(m.Images, func(i, j int) bool { return m.Images[i].Ref < m.Images[j].Ref })
	b, err := json.MarshalIndent(m, "", "  ")
	return append(b, '\n'), err
}

// ReadManifest reads a bundle directory's manifest and checks that every archive it names is
// there, so a half-copied bundle is caught before an image is built from it.
func ReadManifest(dir string) (Manifest, error) {
	var m Manifest
	path := filepath.Join(dir, ManifestFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("%s: %w", path, err)
	}
	if len(m.Images) == 0 {
		return m, fmt.Errorf("%s: lists no images", path)
	}
	for i, img := range m.Images {
		if _, err := os.Stat(filepath.Join(dir, img.Archive)); err != nil {
			return m, fmt.Errorf("%s: images[%d] (%s): archive %w", path, i, img.Ref, err)
		}
	}
	return m, nil
}
