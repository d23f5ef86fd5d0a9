package manifests

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Groups and names of the kubeadm join flow (kubeadm's: https://kubernetes.io/docs/reference/access-authn-authz/bootstrap-tokens/).
const (
	NodeBootstrapGroup = "system:bootstrappers:kubeadm:default-node-token"
	NodesGroup         = "system:nodes"
	ClusterAdminsGroup = "kubeadm:cluster-admins"
	APIServerKubeletCN = "kube-apiserver-kubelet-client"
)

// BootstrapToken is the token the master publishes as a Secret.
type BootstrapToken struct {
	ID, Secret, Description string
	Expires                 time.Time
}

// ClusterAdmins is the binding that makes admin.conf (group kubeadm:cluster-admins) a cluster
// admin through RBAC. The master agent applies it with super-admin.conf, the only step that needs
// system:masters; everything after runs as admin.conf.
func ClusterAdmins() []Object {
	return []Object{
		crb("kubeadm:cluster-admins", "cluster-admin", group(ClusterAdminsGroup)),
	}
}

// Bootstrap returns the objects nodes need to join by TLS bootstrapping, the apiserver's
// binding to reach kubelets, and the RBAC of the node token's distributors.
func Bootstrap(p Params, tok BootstrapToken, caPEM []byte) ([]Object, error) {
	info, err := clientcmd.Write(clientcmdapi.Config{
		Clusters: map[string]*clientcmdapi.Cluster{"": {Server: p.Endpoint, CertificateAuthorityData: caPEM}},
	})
	if err != nil {
		return nil, err
	}
	secret := BootstrapTokenSecret(tok)
	clusterInfo := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "cluster-info", Namespace: "kube-public"},
		Data:       map[string]string{"kubeconfig": string(info)},
	}
	clusterInfoRole := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "kubeadm:bootstrap-signer-clusterinfo", Namespace: "kube-public"},
		Rules:      []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"cluster-info"}}},
	}
	clusterInfoBinding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "kubeadm:bootstrap-signer-clusterinfo", Namespace: "kube-public"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "kubeadm:bootstrap-signer-clusterinfo"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "system:anonymous"}},
	}
	return append([]Object{
		// The static pods' mirror pods and the add-ons in kube-system use the host's network and
		// paths: only the privileged level admits them once unlabelled namespaces enforce another.
		{GVK: gvk("", "v1", "Namespace"), Obj: &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: metav1.NamespaceSystem, Labels: PrivilegedNamespace(nil)}}},
		{GVK: gvk("", "v1", "Secret"), Obj: secret},
		crb("kubeadm:kubelet-bootstrap", "system:node-bootstrapper", group(NodeBootstrapGroup)),
		crb("kubeadm:node-autoapprove-bootstrap", "system:certificates.k8s.io:certificatesigningrequests:nodeclient", group(NodeBootstrapGroup)),
		crb("kubeadm:node-autoapprove-certificate-rotation", "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", group(NodesGroup)),
		// Bound by CN, which works whatever O the certificate carries (reference §4.5 item 12).
		crb("kubeadm:apiserver-kubelet-client", "system:kubelet-api-admin", rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: APIServerKubeletCN}),
		{GVK: gvk("", "v1", "ConfigMap"), Obj: clusterInfo},
		{GVK: gvk("rbac.authorization.k8s.io", "v1", "Role"), Obj: clusterInfoRole},
		{GVK: gvk("rbac.authorization.k8s.io", "v1", "RoleBinding"), Obj: clusterInfoBinding},
	}, TokenDistribution()...), nil
}

// BootstrapTokenSecret is the Secret that makes tok a bootstrap token (kubeadm's layout), a
// member of the node pool (TokenPoolLabel): the bundle's token, and every successor the
// master's agent mints.
func BootstrapTokenSecret(tok BootstrapToken) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "bootstrap-token-" + tok.ID, Namespace: "kube-system",
			Labels: map[string]string{TokenPoolLabel: TokenPoolNode}},
		Type: corev1.SecretTypeBootstrapToken,
		// data, not stringData: server-side apply then owns exactly the fields the API stores,
		// and a second apply of the same file is a no-op.
		Data: map[string][]byte{
			"description":                    []byte(tok.Description),
			"token-id":                       []byte(tok.ID),
			"token-secret":                   []byte(tok.Secret),
			"expiration":                     []byte(tok.Expires.UTC().Format(time.RFC3339)),
			"usage-bootstrap-authentication": []byte("true"),
			"usage-bootstrap-signing":        []byte("true"),
			"auth-extra-groups":              []byte(NodeBootstrapGroup),
		},
	}
}

func group(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: name}
}

func crb(name, role string, subjects ...rbacv1.Subject) Object {
	return Object{GVK: gvk("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding"), Obj: &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   subjects,
	}}
}
