package machine

// RebootAnnotation on a machine's Node asks the machine's agent to reboot it, once. Its value
// is the boot ID to end (the Node's status.nodeInfo.bootID when the request is made): the agent
// of that boot reboots, and the next boot has another ID, so the request is done without
// anyone removing it, and a request made before a boot never ends a later one. A network-booted
// machine comes back with what the PXE server serves it now, which is how an upgrade replaces
// a bare-metal machine with no power control.
const RebootAnnotation = "kubeup.dev/reboot-boot-id"
