// Package manifests builds every Kubernetes object and component configuration kubeup puts on a
// machine: static pods for the control plane, the KubeletConfiguration, the bootstrap objects a
// node needs to join (token Secret, RBAC, cluster-info) and the default add-ons (kube-proxy,
// flannel, CoreDNS, metrics-server). Everything is a typed k8s.io/api value serialized to YAML,
// never a string template, so a typo is a compile error and the output is deterministic.
package manifests
