// Package targets is the one table from a cluster config's target to its provider: how the
// commands make the provider from their options, how a config reaches a machine there
// (provider.Channel), whether up and down can print a plan, whether nodes are named machines
// or a group's anonymous members, and which admin kubeconfig the host uses. kubeup and
// ignition-gen look a target up here and hold no per-target switch of their own: a new target
// is a provider package and a row in this table.
package targets
