// Package bundle makes the offline component bundle: every image the cluster runs, built from
// source at the pinned versions and packaged as OCI archives under the same references as
// upstream (registry.k8s.io/kube-apiserver:v1.37.2, ...), so manifests are identical online and
// offline. Images are assembled with go-containerregistry (no Docker), deterministically: the
// same binaries give the same digests. bundle.json records every reference and digest. Online,
// the same code can take the official images from their registry instead (Source Registry).
package bundle
