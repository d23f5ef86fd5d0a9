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
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	certlisters "k8s.io/client-go/listers/certificates/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
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
	// Log, if set, is told every decision made, and every review that leaves a CSR waiting.
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
		if name, ok := servingNode(csr); ok {
			n, err := a.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			switch {
			case err == nil:
				node = n
			case !apierrors.IsNotFound(err):
				return err
			}
		}
		if err := a.decide(ctx, csr, node); err != nil {
			return err
		}
	}
	return nil
}

// servingNode is the node a kubelet-serving CSR comes from.
func servingNode(csr *certificatesv1.CertificateSigningRequest) (string, bool) {
	if csr.Spec.SignerName != certificatesv1.KubeletServingSignerName {
		return "", false
	}
	return strings.CutPrefix(csr.Spec.Username, "system:node:")
}

// decide reviews csr against node and records an approval or a denial; a CSR left waiting is
// looked at again when its Node changes.
func (a *Approver) decide(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, node *corev1.Node) error {
	d, reason := Review(csr, node)
	if d == Wait && a.Log != nil {
		a.Log(csr.Name, d, reason)
	}
	if d != Approve && d != Deny {
		return nil
	}
	csr = csr.DeepCopy() // it may be the informer's
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
	return nil
}

// approverResync re-lists CSRs and Nodes now and then, as a safety net under the watches.
const approverResync = 10 * time.Minute

// Run reviews kubelet-serving CSRs as they come, until ctx ends: informers on CSRs and Nodes
// feed a work queue, a CSR waiting for its Node is reviewed again when that Node is added or
// changes (it registers, then reports its addresses), and a decision that cannot be recorded
// is retried with the queue's backoff. onErr hears every failure. Watches that break while the
// API server restarts are re-established by the informers.
func (a *Approver) Run(ctx context.Context, onErr func(error)) {
	factory := informers.NewSharedInformerFactory(a.Client, approverResync)
	csrs := factory.Certificates().V1().CertificateSigningRequests()
	nodes := factory.Core().V1().Nodes()
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	defer queue.ShutDown()
	addCSR := func(obj any) {
		if csr, ok := obj.(*certificatesv1.CertificateSigningRequest); ok && !decided(csr) {
			if _, ok := servingNode(csr); ok {
				queue.Add(csr.Name)
			}
		}
	}
	addNode := func(obj any) {
		node, ok := obj.(*corev1.Node)
		if !ok {
			return
		}
		all, _ := csrs.Lister().List(labels.Everything())
		for _, csr := range all {
			if name, ok := servingNode(csr); ok && name == node.Name && !decided(csr) {
				queue.Add(csr.Name)
			}
		}
	}
	csrs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: addCSR, UpdateFunc: func(_, obj any) { addCSR(obj) }})
	nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: addNode, UpdateFunc: func(_, obj any) { addNode(obj) }})
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	go func() {
		<-ctx.Done()
		queue.ShutDown()
	}()
	if !cache.WaitForCacheSync(ctx.Done(), csrs.Informer().HasSynced, nodes.Informer().HasSynced) {
		return
	}
	for {
		name, shutdown := queue.Get()
		if shutdown {
			return
		}
		err := a.reviewCached(ctx, csrs.Lister(), nodes.Lister(), name)
		if err != nil && ctx.Err() == nil {
			if onErr != nil {
				onErr(err)
			}
			queue.AddRateLimited(name)
		} else {
			queue.Forget(name)
		}
		queue.Done(name)
	}
}

// reviewCached decides one CSR from the informers' caches.
func (a *Approver) reviewCached(ctx context.Context, csrs certlisters.CertificateSigningRequestLister, nodes corelisters.NodeLister, name string) error {
	csr, err := csrs.Get(name)
	if apierrors.IsNotFound(err) {
		return nil // deleted (the garbage collector removes old CSRs)
	} else if err != nil {
		return err
	}
	var node *corev1.Node
	if n, ok := servingNode(csr); ok {
		if node, err = nodes.Get(n); apierrors.IsNotFound(err) {
			node = nil
		} else if err != nil {
			return err
		}
	}
	return a.decide(ctx, csr, node)
}

func (d Decision) String() string {
	return [...]string{"skip", "wait", "approve", "deny"}[d]
}
