// Package cluster holds the cluster config schema (apiVersion kubeup.dev/v1alpha1, kind Cluster),
// its defaults and its validation. Loading is strict: an unknown field is an error. Validation
// reports every problem at once, each with the file, the line where known, the field path and a
// hint that says how to fix it.
package cluster
