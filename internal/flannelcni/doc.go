// Package flannelcni is kubeup's flannel CNI plugin: the upstream one
// (github.com/flannel-io/cni-plugin) cannot be fetched here at any tag, so kubeup ships its own,
// doing what upstream does. flanneld writes the node's subnet to /run/flannel/subnet.env; the
// plugin turns the network config's "delegate" section plus that subnet into a config for the
// reference bridge plugin (host-local IPAM on the node's subnet, a route to the whole pod
// network) and delegates ADD, CHECK and DEL to it. The delegate config of each container is kept
// so DEL works even after flanneld is gone.
package flannelcni
