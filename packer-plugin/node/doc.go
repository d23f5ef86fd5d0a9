// Package node is the kubeup-node Packer provisioner: over any builder's communicator it turns a
// distribution's base system into a kubeup machine image. It installs the runtime (containerd,
// runc's shim, the CNI plugins), the kubelet, kubeadm and kubeup-agent from a directory of
// binaries, and on Debian the real Ignition binary in the initramfs, run once at first boot;
// imports every image of the offline bundle into containerd's store; checks the result against
// the node spec (kubeup-agent --image-check) and fails the build with the failed checks if it
// does not pass; and seals the image for first boot. What goes where for each target is the
// plan (plan.go); the provisioner only carries it out.
package node
