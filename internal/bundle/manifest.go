package bundle

import (
	"encoding/json"
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
