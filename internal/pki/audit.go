package pki

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"sigs.k8s.io/yaml"
)

// AuditPolicyFile is the API server's audit policy. It is written into the bundle once, like the
// secrets, so an operator can tune it there and every later render uses their version.
const AuditPolicyFile = "audit-policy.yaml"

// newAuditPolicy logs every request's metadata (who did what to which object), never request or
// response bodies (they hold Secrets and tokens), and drops the noisiest read-only traffic.
func newAuditPolicy() ([]byte, error) {
	p := auditv1.Policy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "audit.k8s.io/v1", Kind: "Policy"},
		OmitStages: []auditv1.Stage{auditv1.StageRequestReceived},
		Rules: []auditv1.PolicyRule{
			{Level: auditv1.LevelNone, NonResourceURLs: []string{"/healthz*", "/livez*", "/readyz*", "/version"}},
			{Level: auditv1.LevelNone, Users: []string{"system:kube-proxy"}, Verbs: []string{"watch"},
				Resources: []auditv1.GroupResources{{Group: "", Resources: []string{"endpoints", "services"}}, {Group: "discovery.k8s.io", Resources: []string{"endpointslices"}}}},
			{Level: auditv1.LevelNone, Resources: []auditv1.GroupResources{{Group: "", Resources: []string{"events"}}, {Group: "events.k8s.io", Resources: []string{"events"}}}},
			{Level: auditv1.LevelMetadata},
		},
	}
	return yaml.Marshal(p)
}
