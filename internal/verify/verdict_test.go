package verify

import (
	"context"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
)

// The verdicts below run against client-go's fake clientset: what a check concludes from what
// the API shows, not whether a real cluster shows it (the QEMU tests do that).

func node(name string, ready bool) *corev1.Node {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status}}}}
}

// checker is a Checker whose checks give up after a moment: a verdict that needs waiting fails.
func checker(nodes []string, objs ...runtime.Object) *Checker {
	return &Checker{Client: fake.NewClientset(objs...), Options: Options{Timeout: 300 * time.Millisecond, Nodes: nodes}}
}

func TestPhase41WantsEveryExpectedNode(t *testing.T) {
	ctx := context.Background()
	rs := checker([]string{"master", "node-1", "node-2"}, node("master", true), node("node-1", false)).phase41(ctx)
	if len(rs) != 1 || rs[0].Pass || !strings.Contains(rs[0].Evidence, "missing: [node-2]") {
		t.Errorf("node-2 missing: %+v", rs)
	}
	// NotReady is registered: the network comes in 4.2.
	rs = checker([]string{"master", "node-1"}, node("master", true), node("node-1", false), node("extra", true)).phase41(ctx)
	if !rs[0].Pass {
		t.Errorf("every expected node registered (and one more): %+v", rs)
	}
	// Expecting nothing in particular, one node is enough and none is not.
	if rs := checker(nil, node("master", true)).phase41(ctx); !rs[0].Pass {
		t.Errorf("any node: %+v", rs)
	}
	if rs := checker(nil).phase41(ctx); rs[0].Pass {
		t.Errorf("no node at all passed: %+v", rs)
	}
}

func TestPhase42WantsEveryNodeReady(t *testing.T) {
	ctx := context.Background()
	rs := checker(nil, node("master", true), node("node-1", false)).phase42(ctx)
	if rs[0].Check != "nodes-ready" || rs[0].Pass || !strings.Contains(rs[0].Evidence, "not Ready: [node-1]") {
		t.Errorf("node-1 NotReady: %+v", rs[0])
	}
	// Without a REST config no probe can run: the network checks fail, saying why, and do not
	// pass for lack of evidence.
	for _, r := range rs[1:] {
		if r.Pass || !strings.Contains(r.Evidence, "REST config") {
			t.Errorf("%s without probes: %+v", r.Check, r)
		}
	}
	if names := checks(rs); names != "nodes-ready pod-addresses pod-to-pod node-to-pod node-anonymous" {
		t.Errorf("phase 4.2's checks: %s", names)
	}
	if rs := checker(nil, node("master", true), node("node-1", true)).phase42(ctx); !rs[0].Pass {
		t.Errorf("every node Ready: %+v", rs[0])
	}
}

func checks(rs []Result) string {
	var names []string
	for _, r := range rs {
		names = append(names, r.Check)
	}
	return strings.Join(names, " ")
}

func TestLeaseHeldOnlyWhileRenewed(t *testing.T) {
	lease := func(renewed time.Duration, holder string) *coordinationv1.Lease {
		return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "kube-scheduler", Namespace: "kube-system"},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(holder), LeaseDurationSeconds: ptr.To[int32](60),
				RenewTime: &metav1.MicroTime{Time: time.Now().Add(-renewed)}}}
	}
	for name, tc := range map[string]struct {
		lease *coordinationv1.Lease
		pass  bool
		seen  string
	}{
		"renewed":  {lease(5*time.Second, "master_1"), true, "held by master_1"},
		"expired":  {lease(5*time.Minute, "master_1"), false, "renewed 5m0s ago"},
		"released": {lease(time.Second, ""), false, "has no holder"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		seen, err := leaseHeld(ctx, fake.NewClientset(tc.lease), "kube-scheduler")
		cancel()
		if (err == nil) != tc.pass || !strings.Contains(seen, tc.seen) {
			t.Errorf("%s: %q %v, want pass %v and %q", name, seen, err, tc.pass, tc.seen)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if seen, err := leaseHeld(ctx, fake.NewClientset(), "kube-scheduler"); err == nil || !strings.Contains(seen, "not found") {
		t.Errorf("no lease: %q %v", seen, err)
	}
}

func TestRunRefusesAnUnknownPhase(t *testing.T) {
	rs := checker(nil).Run(context.Background(), "7")
	if len(rs) != 1 || rs[0].Pass || !strings.Contains(rs[0].Hint, "4.1") {
		t.Errorf("%+v", rs)
	}
}

// TestAnonymousAPI: the phase-3 check passes an API server that lets anonymous requests in on
// the health endpoints only, and fails one that, like a default kube-apiserver, also answers
// /version and cluster-info; a request with credentials would not tell the two apart.
func TestAnonymousAPI(t *testing.T) {
	for _, tc := range []struct {
		name string
		open []string // paths answered 200 without credentials
		pass bool
		want string
	}{
		{"health only", []string{"/healthz", "/livez", "/readyz"}, true, "answered"},
		{"version open too", []string{"/healthz", "/livez", "/readyz", "/version"}, false, "/version: HTTP 200"},
		{"health closed", []string{"/healthz", "/livez"}, false, "/readyz: HTTP 401"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.Header.Get("Authorization") != "":
					t.Errorf("%s: the anonymous check sent credentials", r.URL.Path)
				case slices.Contains(tc.open, r.URL.Path):
					fmt.Fprintln(w, "ok")
					return
				}
				http.Error(w, "Unauthorized", http.StatusUnauthorized)
			}))
			defer srv.Close()
			k := checker(nil)
			k.REST = &rest.Config{Host: srv.URL, BearerToken: "admin-token",
				TLSClientConfig: rest.TLSClientConfig{CAData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})}}
			r := k.waiting(context.Background(), "3", "anonymous-api", "", k.anonymousRefused)
			if r.Pass != tc.pass || !strings.Contains(r.Evidence, tc.want) {
				t.Errorf("pass %v, evidence %q; want pass %v and %q", r.Pass, r.Evidence, tc.pass, tc.want)
			}
		})
	}
}

// TestAPIPodsOutlastsABusyAPIServer: a pod create that times out or is shed (a master just
// rebooted) is tried again until the check's deadline; a refusal is the answer at once.
func TestAPIPodsOutlastsABusyAPIServer(t *testing.T) {
	for _, tc := range []struct {
		name string
		errs []error // what the first creates get
		pass bool
	}{
		{"timeouts, then created", []error{apierrors.NewTimeoutError("request did not complete within requested timeout", 0),
			apierrors.NewTooManyRequests("slow down", 1), apierrors.NewServerTimeout(corev1.Resource("pods"), "create", 0)}, true},
		{"invalid", []error{apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Pod").GroupKind(), "api-check", nil)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fake.NewClientset()
			n := 0
			c.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
				if n < len(tc.errs) {
					n++
					return true, nil, tc.errs[n-1]
				}
				return false, nil, nil
			})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			seen, err := apiPods(ctx, c, "ns")
			if (err == nil) != tc.pass {
				t.Errorf("apiPods: %q, %v; want pass %v", seen, err, tc.pass)
			}
			if !tc.pass && n != 1 {
				t.Errorf("a refusal was tried %d times, want once", n)
			}
		})
	}
}
