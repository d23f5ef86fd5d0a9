// Package pki creates and reads a cluster's secrets bundle: the three CAs, the kubeadm-compatible
// leaf certificates and kubeconfigs (kubeadm's layout at v1.37: https://kubernetes.io/docs/setup/best-practices/certificates/), the service-account key
// pair, the bootstrap token, the secrets-encryption config and the audit policy.
//
// The bundle is created once. Every file is written 0600 (directories 0700) atomically and never
// overwritten: a re-run only reads it and checks that every certificate still matches the
// cluster config. A mismatch is an error naming the file and the `kubeup certs renew`
// command that re-issues it; nothing is ever rotated silently.
package pki
