// Package pxe is kubeup's network boot server (`kubeup pxe serve`): bare-metal machines boot
// exactly like VMs, with the configs ignition-gen rendered and nothing else.
//
// Over plain HTTP (what iPXE and the firmware speak) it serves /boot.ipxe, which chains to a
// per-machine script chosen by MAC, UUID, hostname or serial from the cluster config's machines;
// the script boots the OS's kernel and initrd from /assets (Range requests, ETags, sendfile) with
// Ignition pointed at a small **pointer config** for that boot. The pointer holds no secret: it
// replaces itself with the machine's real config over HTTPS, pinned by its SHA-512 and trusting
// only the cluster CA. The real config is handed out once (or within a time bound), only for the
// token minted into that machine's latest script, optionally only to the address that fetched
// the script; anything else is a 404 and a log line. Machines post progress to /report.
//
// Configs, the cluster config and assets are read from disk as they change, so ignition-gen can
// re-render while the server runs. Unknown machines get nothing unless a default role is set.
package pxe
