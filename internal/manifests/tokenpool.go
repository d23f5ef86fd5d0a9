package manifests

import (
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The node token pool (docs/bootstrap-tokens.md): the bootstrap tokens that role configs of
// fleets (an Auto Scaling group's launch template, a PXE server's default role) carry. The
// master's agent keeps one of them valid and publishes the current one in NodeTokenSecret,
// which only the distributors' group may read.
const (
	// TokenPoolLabel marks a bootstrap-token Secret as a member of a pool; its value names the
	// pool (TokenPoolNode).
	TokenPoolLabel = "kubeup.dev/token-pool"
	TokenPoolNode  = "node"
	// NodeTokenSecret (kube-system) holds the pool's current token: token-id, token-secret,
	// expiration, as in the bootstrap-token Secret it copies.
	NodeTokenSecret = "kubeup-node-token"
	// TokenDistributorsGroup may get NodeTokenSecret and nothing else: the PXE server's and
	// kubeup's identity when they put the current token into the node configs they hand out.
	TokenDistributorsGroup = "kubeup:token-distributors"
	tokenDistributorsRole  = "kubeup:token-distributor"
)

// TokenDistribution is the RBAC that lets TokenDistributorsGroup read the current node token:
// get (and watch, which RBAC grants by name through a field selector) on one Secret of
// kube-system. A Role cannot name Secrets by label, so the agent copies the current token into
// that one fixed name rather than handing out list on kube-system's Secrets.
func TokenDistribution() []Object {
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: tokenDistributorsRole, Namespace: "kube-system"},
		Rules: []rbacv1.PolicyRule{{Verbs: []string{"get", "watch"}, APIGroups: []string{""}, Resources: []string{"secrets"},
			ResourceNames: []string{NodeTokenSecret}}},
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: tokenDistributorsRole, Namespace: "kube-system"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: tokenDistributorsRole},
		Subjects:   []rbacv1.Subject{group(TokenDistributorsGroup)},
	}
	return []Object{
		{GVK: gvk("rbac.authorization.k8s.io", "v1", "Role"), Obj: role},
		{GVK: gvk("rbac.authorization.k8s.io", "v1", "RoleBinding"), Obj: binding},
	}
}
