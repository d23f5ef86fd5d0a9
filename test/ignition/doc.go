// Package ignition holds the apply test: the configs ignition-gen writes are applied by the real
// Ignition binary (ignition-apply, built from the module proxy at a pinned version by
// hack/tools.sh) into a scratch root, and the resulting tree is checked file by file.
package ignition
