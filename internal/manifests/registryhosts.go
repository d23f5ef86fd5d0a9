package manifests

import (
	"encoding/json"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
)

// The registry mirrors' files for the nodes (docs/registries.md). A node's config writes each
// registry's hosts.toml without the mirrors' credentials, which stay out of every node config;
// its agent then writes the files of RegistryHostsSecret, which carry them, as soon as its
// kubelet has joined.
const (
	// RegistryHostsSecret (kube-system) holds, under RegistryHostsKey, a JSON object from each
	// file's path under containerd's certs.d (docker.io/hosts.toml) to its content.
	RegistryHostsSecret = "kubeup-registry-hosts"
	RegistryHostsKey    = "files.json"
	registryHostsRole   = "kubeup:registry-hosts-reader"
)

// RegistryHosts is the Secret of the registry files, and the RBAC that lets every node (the
// group system:nodes) read that one Secret: get, and list and watch, which RBAC grants by name
// through a field selector.
func RegistryHosts(files map[string]string) ([]Object, error) {
	data, err := json.Marshal(files)
	if err != nil {
		return nil, err
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: RegistryHostsSecret, Namespace: metav1.NamespaceSystem},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{RegistryHostsKey: data},
	}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: registryHostsRole, Namespace: metav1.NamespaceSystem},
		Rules: []rbacv1.PolicyRule{{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{""}, Resources: []string{"secrets"},
			ResourceNames: []string{RegistryHostsSecret}}},
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: registryHostsRole, Namespace: metav1.NamespaceSystem},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: registryHostsRole},
		Subjects:   []rbacv1.Subject{group(user.NodesGroup)},
	}
	return []Object{
		{GVK: gvk("", "v1", "Secret"), Obj: secret},
		{GVK: gvk("rbac.authorization.k8s.io", "v1", "Role"), Obj: role},
		{GVK: gvk("rbac.authorization.k8s.io", "v1", "RoleBinding"), Obj: binding},
	}, nil
}
