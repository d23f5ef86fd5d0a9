// Package kubeadm renders the peer that `make bench` measures kubeup against: the same cluster
// (same image, machines, addresses and preloaded images) made by kubeadm, run by first-boot
// units as kubeadm's documentation does it: `kubeadm init` on the master, `kubeadm join` with a
// bootstrap token and the CA's hash on the nodes. Only the cluster CA is given beforehand, so
// that the host can reach the API; kubeadm makes every other certificate itself.
package kubeadm
