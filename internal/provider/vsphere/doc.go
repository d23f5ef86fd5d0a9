// Package vsphere is kubeup's vSphere provider (Provider, a provider.Provider): it clones one
// VM per machine from the baked template, hands each VM its Ignition config through guestinfo,
// powers it on, follows each machine through its VMware Tools heartbeat and the guestinfo
// variables its agent sets (machine.GuestinfoKeys), replaces a machine's VM (the master's with
// its etcd disk), and deletes exactly those VMs again on down. It speaks the vSphere API through
// govmomi, the library govc is built on, and is tested against govmomi's simulator (vcsim).
//
// # What a VM gets
//
// A VM is named <cluster>-<machine> and cloned from the template into the datacenter, datastore
// and network of the config's vsphere block, with the machine's MAC (manual address type) on its
// first network card. Its extraConfig carries
//
//   - guestinfo.ignition.config.data, .encoding=gzip+base64: the machine's config, or, when the
//     encoding is over GuestinfoLimit, a hash-pinned pointer to
//     vsphere.configURL/<machine>.ign, which the operator serves (Plan says which file goes where);
//   - guestinfo.kubeup.cluster and guestinfo.kubeup.machine: the mark by which up and down know
//     the VMs kubeup made for the cluster. A VM of the same name without the mark is never touched;
//   - guestinfo.kubeup.config.sha256: the config a VM was made with, so a re-run can say that the
//     config changed since (it never reconfigures a VM that exists);
//   - guestinfo.kubeup.image: the template it was cloned from, which an upgrade gives back to a
//     master that fails at the new release;
//   - disk.EnableUUID: so that the guest names a disk by its VMDK's UUID.
//
// The master's clone also gets the etcd disk, which outlives it (etcddisk.go).
//
// guestinfo is readable from inside the guest and by vSphere users who may read the VM's
// configuration: the master's config holds the cluster's CA keys. Ignition (2.14 and later)
// overwrites guestinfo.ignition.config.data once it has applied it; limit who may read the VMs'
// settings in vCenter for the time before that.
//
// # Credentials
//
// As govc reads them, from the environment, never from the cluster config:
//
//   - GOVC_URL: the vCenter or ESXi server (host, host:port or https://host/sdk, possibly
//     https://user:password@host); when unset, the config's vsphere.server is used;
//   - GOVC_USERNAME, GOVC_PASSWORD: the login, overriding any in GOVC_URL;
//   - GOVC_INSECURE=1: skip verifying the server's certificate (test servers only);
//   - GOVC_TLS_CA_CERTS: PEM file(s), separated by the OS path-list separator, to trust besides
//     the system roots;
//   - GOVC_FOLDER, GOVC_RESOURCE_POOL: the VM folder and resource pool to clone into (default: the
//     datacenter's VM folder and its only resource pool).
//
// The password is never printed: Credentials.String shows the URL without it.
package vsphere
