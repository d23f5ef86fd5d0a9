package tokenpool

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"

	"kubeup.dev/kubeup/internal/manifests"
	"kubeup.dev/kubeup/internal/pki"
)

// revokedKey of the published Secret lists revoked tokens as id=expiration (RFC 3339) lines,
// kept until they would have expired. The master's agent applies the bundle's token with the
// other bootstrap objects every time it starts: without the list it would bring a revoked
// bundle token back.
const (
	revokedKey     = "revoked"
	revokedManager = "kubeup-token-revocations"
)

// Revoke deletes a pool token: from then on the API server refuses it. Nodes that already
// joined with it keep their certificates. The token is recorded as revoked until it would have
// expired, so that the pool deletes it again should anything re-create it; the next Once
// mints a successor if it was the newest.
func Revoke(ctx context.Context, c kubernetes.Interface, id string) error {
	secrets := c.CoreV1().Secrets(metav1.NamespaceSystem)
	s, err := secrets.Get(ctx, "bootstrap-token-"+id, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("no bootstrap token %s in kube-system (kubeup tokens list shows the pool)", id)
	} else if err != nil {
		return err
	}
	t, err := fromSecret(s)
	if err != nil {
		return err
	}
	revoked, err := revokedTokens(ctx, c, time.Now())
	if err != nil {
		return err
	}
	revoked[t.ID] = t.Expires
	var lines []string
	for id, exp := range revoked {
		lines = append(lines, id+"="+exp.UTC().Format(time.RFC3339))
	}
	slices.Sort(lines)
	// Recorded first: a token deleted but not recorded could come back.
	ac := corev1ac.Secret(manifests.NodeTokenSecret, metav1.NamespaceSystem).
		WithData(map[string][]byte{revokedKey: []byte(strings.Join(lines, "\n"))})
	if _, err := secrets.Apply(ctx, ac, metav1.ApplyOptions{FieldManager: revokedManager, Force: true}); err != nil {
		return fmt.Errorf("record token %s as revoked: %w", id, err)
	}
	if err := secrets.Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete bootstrap token %s: %w", id, err)
	}
	return nil
}

// revokedTokens reads the revoked tokens that have not expired yet, by ID.
func revokedTokens(ctx context.Context, c kubernetes.Interface, now time.Time) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	s, err := c.CoreV1().Secrets(metav1.NamespaceSystem).Get(ctx, manifests.NodeTokenSecret, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return out, nil
	} else if err != nil {
		return nil, fmt.Errorf("read the revoked node tokens (kube-system/%s): %w", manifests.NodeTokenSecret, err)
	}
	for _, line := range strings.Split(string(s.Data[revokedKey]), "\n") {
		id, when, ok := strings.Cut(line, "=")
		exp, err := time.Parse(time.RFC3339, when)
		if ok && err == nil && now.Before(exp) {
			out[id] = exp
		}
	}
	return out, nil
}

// dropRevoked deletes again the members that were revoked (re-created since) and returns the
// others.
func (p *Pool) dropRevoked(ctx context.Context, members []pki.Token, now time.Time) ([]pki.Token, error) {
	revoked, err := revokedTokens(ctx, p.Client, now)
	if err != nil || len(revoked) == 0 {
		return members, err
	}
	var kept []pki.Token
	for _, t := range members {
		if _, ok := revoked[t.ID]; !ok {
			kept = append(kept, t)
			continue
		}
		err := p.Client.CoreV1().Secrets(metav1.NamespaceSystem).Delete(ctx, "bootstrap-token-"+t.ID, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("delete revoked bootstrap token %s: %w", t.ID, err)
		}
		p.logf("node token pool: deleted bootstrap token %s again: it was revoked (the bootstrap objects re-apply the bundle's token)", t.ID)
	}
	return kept, nil
}
