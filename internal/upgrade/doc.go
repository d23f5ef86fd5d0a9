// Package upgrade decides whether a running cluster may move to another Kubernetes release, by
// the upstream version-skew policy and the releases this kubeup brings up. It is pure: it reads
// versions it is given and never a cluster, so `kubeup upgrade --dry-run` and the unit tests
// share every rule.
package upgrade
