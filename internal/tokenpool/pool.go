package tokenpool

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"

	"kubeup.dev/kubeup/internal/manifests"
	"kubeup.dev/kubeup/internal/pki"
)

// DefaultShare: a successor is minted when less than a third of the current token's TTL is
// left, which is also how long the two overlap.
const DefaultShare = 1.0 / 3

// fieldManager owns the published Secret's fields.
const fieldManager = "kubeup-token-pool"

// Pool keeps the node pool's token valid. Its methods are safe to run from more than one
// place (the agent, kubeup tokens revoke): the worst a race makes is one extra valid token,
// and the newest wins.
type Pool struct {
	Client kubernetes.Interface
	// TTL is each minted token's lifetime (pki.bootstrapTokenTTL).
	TTL time.Duration
	// Share of TTL below which the current token gets a successor (DefaultShare if 0).
	Share float64
	Now   func() time.Time
	Log   func(format string, args ...any)
}

// Round is what one pass of the pool found and did.
type Round struct {
	// Current is the pool's newest valid token, published as the node token.
	Current pki.Token
	// Minted says Current was made in this round.
	Minted bool
	// Valid counts the pool's unexpired tokens (Current included).
	Valid int
}

func (p *Pool) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Pool) logf(format string, args ...any) {
	if p.Log != nil {
		p.Log(format, args...)
	}
}

// Members lists the pool's tokens that have not expired, the newest (latest expiry) first.
func Members(ctx context.Context, c kubernetes.Interface, now time.Time) ([]pki.Token, error) {
	list, err := c.CoreV1().Secrets(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{
		LabelSelector: manifests.TokenPoolLabel + "=" + manifests.TokenPoolNode})
	if err != nil {
		return nil, fmt.Errorf("list the node pool's bootstrap tokens: %w", err)
	}
	var out []pki.Token
	for i := range list.Items {
		s := &list.Items[i]
		t, err := fromSecret(s)
		if err != nil || s.Type != corev1.SecretTypeBootstrapToken || !now.Before(t.Expires) {
			continue // the token cleaner deletes expired ones; a malformed one never authenticates
		}
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b pki.Token) int { return b.Expires.Compare(a.Expires) })
	return out, nil
}

// Once looks at the pool, mints a successor if the newest token is missing or has less than
// Share of TTL left, and publishes the newest token in kube-system/kubeup-node-token.
func (p *Pool) Once(ctx context.Context) (Round, error) {
	if p.TTL <= 0 {
		return Round{}, errors.New("token pool: no TTL (pki.bootstrapTokenTTL)")
	}
	share := p.Share
	if share <= 0 {
		share = DefaultShare
	}
	now := p.now()
	members, err := Members(ctx, p.Client, now)
	if err != nil {
		return Round{}, err
	}
	if members, err = p.dropRevoked(ctx, members, now); err != nil {
		return Round{}, err
	}
	r := Round{Valid: len(members)}
	if len(members) > 0 {
		r.Current = members[0]
	}
	if len(members) == 0 || r.Current.Expires.Sub(now) < time.Duration(share*float64(p.TTL)) {
		t, err := pki.NewToken(now, p.TTL)
		if err != nil {
			return r, err
		}
		t.Description = "kubeup node pool token"
		s := manifests.BootstrapTokenSecret(manifests.BootstrapToken{ID: t.ID, Secret: t.Secret, Description: t.Description, Expires: t.Expires})
		if _, err := p.Client.CoreV1().Secrets(metav1.NamespaceSystem).Create(ctx, s, metav1.CreateOptions{FieldManager: fieldManager}); err != nil {
			return r, fmt.Errorf("mint node pool token %s: %w", t.ID, err)
		}
		if len(members) == 0 {
			p.logf("node token pool: minted %s (valid until %s): no valid token was left", t.ID, t.Expires.Format(time.RFC3339))
		} else {
			p.logf("node token pool: minted %s (valid until %s) to succeed %s (expires %s, stays valid until then)",
				t.ID, t.Expires.Format(time.RFC3339), r.Current.ID, r.Current.Expires.Format(time.RFC3339))
		}
		r.Current, r.Minted = t, true
		r.Valid++
	}
	return r, Publish(ctx, p.Client, r.Current)
}

// Run runs Once every interval until ctx ends; failures go to onErr and are tried again.
func (p *Pool) Run(ctx context.Context, interval time.Duration, onErr func(error)) {
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		if _, err := p.Once(ctx); err != nil && ctx.Err() == nil && onErr != nil {
			onErr(err)
		}
	}, interval)
}

// Publish copies t into kube-system/kubeup-node-token by server-side apply (a no-op when it is
// already there).
func Publish(ctx context.Context, c kubernetes.Interface, t pki.Token) error {
	ac := corev1ac.Secret(manifests.NodeTokenSecret, metav1.NamespaceSystem).WithType(corev1.SecretTypeOpaque).
		WithLabels(map[string]string{manifests.TokenPoolLabel: manifests.TokenPoolNode}).
		WithData(map[string][]byte{
			"token-id":     []byte(t.ID),
			"token-secret": []byte(t.Secret),
			"expiration":   []byte(t.Expires.UTC().Format(time.RFC3339)),
		})
	if _, err := c.CoreV1().Secrets(metav1.NamespaceSystem).Apply(ctx, ac, metav1.ApplyOptions{FieldManager: fieldManager, Force: true}); err != nil {
		return fmt.Errorf("publish the node token in kube-system/%s: %w", manifests.NodeTokenSecret, err)
	}
	return nil
}

// fromSecret reads a token from a bootstrap-token Secret or the published copy.
func fromSecret(s *corev1.Secret) (pki.Token, error) {
	t := pki.Token{ID: string(s.Data["token-id"]), Secret: string(s.Data["token-secret"]), Description: string(s.Data["description"])}
	if !pki.TokenRegexp.MatchString(t.String()) {
		return t, fmt.Errorf("kube-system/%s: token-id and token-secret are not a bootstrap token", s.Name)
	}
	exp, err := time.Parse(time.RFC3339, string(s.Data["expiration"]))
	if err != nil {
		return t, fmt.Errorf("kube-system/%s: expiration: %w", s.Name, err)
	}
	t.Expires = exp
	return t, nil
}
