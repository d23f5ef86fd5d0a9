// Package ignition turns a cluster config and its secrets bundle into one Ignition spec 3.4.0
// config per machine or per role. It first builds a machine plan (files, directories, systemd
// units) from the manifests and the bundle, then renders the plan with Ignition's own Go types,
// merges the user's Butane snippets, and checks the result with Ignition's own parser.
//
// Rendering is a pure function of (config, bundle): the same inputs give byte-identical output.
// Node plans hold no private key: only the cluster CA certificate and the bootstrap token.
package ignition
