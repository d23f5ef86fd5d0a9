// Package metal is kubeup's bare-metal provider (Provider, a provider.Provider). Bare-metal
// machines network-boot from `kubeup pxe serve` (package pxe), which runs as a service of its
// own; kubeup has no power control over them. So Deliver writes each machine's config where the
// PXE server reads it, Create says what the operator does (serve them, power the machines on),
// Machines reads the reports the machines' agents post to the PXE server, Replace puts a
// machine's new config in place and waits for the operator's power cycle to bring it back, and
// Down removes the configs and leaves the machines to the operator.
package metal
