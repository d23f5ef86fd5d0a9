// Package qemu is the local provider: it makes copy-on-write overlays of the baked image, starts
// one QEMU process per machine on a private network, hands each its Ignition config through
// fw_cfg, forwards the master's API port to the host, and stops and removes exactly what it
// made. Everything it makes lives in one directory, described by its state.json.
package qemu
