package agent

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The built-in approver signs kubelet client certificates but never kubelet-serving ones (a
// node could claim any name). kubeup approves them itself, checking each against the Node.

// Decision is the approver's verdict on one CSR.
type Decision int

const (
	// Skip: not a kubelet-serving CSR, or already decided.
	Skip Decision = iota
	// Wait: the node is not registered yet (or has no addresses); look again later.
	Wait
	// Approve: the node asks for its own names and addresses only.
	Approve
	// Deny: anything else.
	Deny
)

var allowedUsages = []certificatesv1.KeyUsage{certificatesv1.UsageServerAuth, certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment}

// Review decides a CSR given the Node it names (nil when there is none). It is a pure function so
// every rule can be tested without an API server.
func Review(csr *certificatesv1.CertificateSigningRequest, node *corev1.Node) (Decision, string) {
	if csr.Spec.SignerName != certificatesv1.KubeletServingSignerName || decided(csr) {
		return Skip, ""
	}
	nodeName, ok := strings.CutPrefix(csr.Spec.Username, "system:node:")
	if !ok || nodeName == "" || !slices.Contains(csr.Spec.Groups, "system:nodes") {
		return Deny, fmt.Sprintf("requester %q is not a node", csr.Spec.Username)
	}
	if !slices.Contains(csr.Spec.Usages, certificatesv1.UsageServerAuth) {
		return Deny, "usages lack server auth"
	}
	for _, u := range csr.Spec.Usages {
		if !slices.Contains(allowedUsages, u) {
			return Deny, fmt.Sprintf("usage %q not allowed for a kubelet serving certificate", u)
		}
	}
	block, _ := pem.Decode(csr.Spec.Request)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return Deny, "request is not a PEM certificate request"
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return Deny, "unparseable request: " + err.Error()
	}
	if err := req.CheckSignature(); err != nil {
		return Deny, "bad request signature: " + err.Error()
	}
	if req.Subject.CommonName != csr.Spec.Username || !slices.Equal(req.Subject.Organization, []string{"system:nodes"}) {
		return Deny, fmt.Sprintf("subject %q does not match the requesting node", req.Subject.String())
	}
	if len(req.EmailAddresses) > 0 || len(req.URIs) > 0 {
		return Deny, "email and URI names are not allowed"
	}
	if len(req.DNSNames)+len(req.IPAddresses) == 0 {
		return Deny, "no DNS name or IP address requested"
	}
	if node == nil {
		return Wait, "node " + nodeName + " is not registered yet"
	}
	var ips, names []string
	for _, a := range node.Status.Addresses {
		switch a.Type {
		case corev1.NodeInternalIP, corev1.NodeExternalIP:
			ips = append(ips, net.ParseIP(a.Address).String())
		case corev1.NodeHostName, corev1.NodeInternalDNS, corev1.NodeExternalDNS:
			names = append(names, strings.ToLower(a.Address))
		}
	}
	if len(ips)+len(names) == 0 {
		return Wait, "node " + nodeName + " reports no addresses yet"
	}
	for _, ip := range req.IPAddresses {
		if !slices.Contains(ips, ip.String()) {
			return Deny, fmt.Sprintf("IP %s is not an address of node %s", ip, nodeName)
		}
	}
	for _, n := range req.DNSNames {
		if !slices.Contains(names, strings.ToLower(n)) {
			return Deny, fmt.Sprintf("DNS name %s is not a name of node %s", n, nodeName)
		}
	}
	return Approve, "kubeup: node " + nodeName + " asks for its own names and addresses"
}

func decided(csr *certificatesv1.CertificateSigningRequest) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == certificatesv1.CertificateApproved || c.Type == certificatesv1.CertificateDenied {
			return true
		}
	}
	return false
}

// Approver applies Review to every pending CSR.
type Approver struct {
	Client kubernetes.Interface
	// Log, if set, is told every decision made.
	Log func(csr string, d Decision, reason string)
}

// Once reviews every pending CSR once and records approvals and denials.
func (a *Approver) Once(ctx context.Context) error {
	list, err := a.Client.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for i := range list.Items {
		csr := &list.Items[i]
		var node *corev1.Node
		if name, ok := strings.CutPrefix(csr.Spec.Username, "system:node:"); ok && csr.Spec.SignerName == certificatesv1.KubeletServingSignerName {
			n, err := a.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			switch {
			case err == nil:
				node = n
			case !apierrors.IsNotFound(err):
				return err
			}
		}
		d, reason := Review(csr, node)
		if d != Approve && d != Deny {
			continue
		}
		cond := certificatesv1.CertificateSigningRequestCondition{
			Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue,
			Reason: "KubeupApproved", Message: reason, LastUpdateTime: metav1.Now(),
		}
		if d == Deny {
			cond.Type, cond.Reason = certificatesv1.CertificateDenied, "KubeupDenied"
		}
		csr.Status.Conditions = append(csr.Status.Conditions, cond)
		if _, err := a.Client.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("record decision on %s: %w", csr.Name, err)
		}
		if a.Log != nil {
			a.Log(csr.Name, d, reason)
		}
	}
	return nil
}

// Run reviews pending CSRs every interval until ctx ends. Errors are logged and retried: the
// API may come and go while the master restarts.
func (a *Approver) Run(ctx context.Context, interval time.Duration, onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := a.Once(ctx); err != nil && onErr != nil && ctx.Err() == nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (d Decision) String() string {
	return [...]string{"skip", "wait", "approve", "deny"}[d]
}
