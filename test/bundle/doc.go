// Package bundle holds the bundle import test (make e2e): every image of the offline bundle is
// imported into a real containerd (Debian's) with ctr, must come out under its upstream
// reference with the digest bundle.json records, and must run.
package bundle
