package tokenpool

import (
	"context"
	"fmt"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"kubeup.dev/kubeup/internal/manifests"
	"kubeup.dev/kubeup/internal/pki"
)

// DistributorUser is the user name of the distributors' client certificates.
const DistributorUser = "kubeup:token-distributor"

// distributorCertTTL bounds the in-memory client certificate: a certificate cannot be revoked,
// so it lives a day and a long-running Source issues a new one halfway through.
const distributorCertTTL = 24 * time.Hour

// Source reads the current node token for a distributor (the PXE server, kubeup up and tokens
// sync), with an identity that may read that one Secret and nothing else.
type Source struct {
	// Client, if set, is used as is (tests); otherwise one is made from Bundle and Server.
	Client kubernetes.Interface
	Bundle *pki.Bundle
	Server string // the API server URL
	// Fallback, if set, is given while it is valid and the cluster has not answered yet: the
	// bundle's token, the pool's first member, so that machines booting alongside the master
	// get a config before its agent has published anything.
	Fallback pki.Token
	Now      func() time.Time

	mu       sync.Mutex
	renewAt  time.Time
	last     pki.Token
	haveLast bool
	// The last read's time and error: reads closer together than readEvery share it, so that
	// a burst of boots (or a restarted PXE server loading its grants) asks the API server
	// once, and an unreachable one is not waited for again and again.
	readAt  time.Time
	readErr error
}

// readEvery bounds how often a Source asks the API server.
const readEvery = 2 * time.Second

func (s *Source) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// DistributorConfig is a client config for server as DistributorUser in the distributors'
// group, with a certificate issued in memory from the bundle's cluster CA.
func DistributorConfig(b *pki.Bundle, server string, validity time.Duration) (*rest.Config, error) {
	certPEM, keyPEM, err := pki.ClientCert(b, DistributorUser, []string{manifests.TokenDistributorsGroup}, validity)
	if err != nil {
		return nil, fmt.Errorf("issue the token distributor's client certificate: %w", err)
	}
	return &rest.Config{Host: server, Timeout: 15 * time.Second,
		TLSClientConfig: rest.TLSClientConfig{CAData: b.File("pki/ca.crt"), CertData: certPEM, KeyData: keyPEM}}, nil
}

func (s *Source) client() (kubernetes.Interface, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Bundle == nil {
		return s.Client, nil
	}
	if s.Client == nil || !s.now().Before(s.renewAt) {
		cfg, err := DistributorConfig(s.Bundle, s.Server, distributorCertTTL)
		if err != nil {
			return nil, err
		}
		if s.Client, err = kubernetes.NewForConfig(cfg); err != nil {
			return nil, err
		}
		s.renewAt = s.now().Add(distributorCertTTL / 2)
	}
	return s.Client, nil
}

// Current returns the published node token. When the API server cannot be asked, the last
// token read (or, before any was read, Fallback) is returned as long as it is valid, with the
// error (the caller logs it); an expired token is never returned.
func (s *Source) Current(ctx context.Context) (pki.Token, error) {
	s.mu.Lock()
	recent := !s.readAt.IsZero() && s.now().Sub(s.readAt) < readEvery
	s.mu.Unlock()
	var t pki.Token
	var err error
	if !recent {
		t, err = s.read(ctx)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if recent {
		err = s.readErr
		if err == nil && s.now().Before(s.last.Expires) {
			return s.last, nil
		}
	} else {
		s.readAt, s.readErr = s.now(), err
		if err == nil {
			s.last, s.haveLast = t, true
			return t, nil
		}
	}
	if err == nil {
		err = fmt.Errorf("the node token %s read %v ago has expired", s.last.ID, s.now().Sub(s.readAt).Round(time.Second))
	}
	if s.haveLast && s.now().Before(s.last.Expires) {
		return s.last, err
	}
	if !s.haveLast && s.Fallback.ID != "" && s.now().Before(s.Fallback.Expires) {
		return s.Fallback, err
	}
	return pki.Token{}, err
}

func (s *Source) read(ctx context.Context) (pki.Token, error) {
	c, err := s.client()
	if err != nil {
		return pki.Token{}, err
	}
	sec, err := c.CoreV1().Secrets(metav1.NamespaceSystem).Get(ctx, manifests.NodeTokenSecret, metav1.GetOptions{})
	if err != nil {
		return pki.Token{}, fmt.Errorf("read the node token (kube-system/%s): %w", manifests.NodeTokenSecret, err)
	}
	t, err := fromSecret(sec)
	if err != nil {
		return t, err
	}
	if !s.now().Before(t.Expires) {
		return pki.Token{}, fmt.Errorf("the published node token %s expired at %s: is the master's agent running with pki.bootstrapTokenPool set?",
			t.ID, t.Expires.Format(time.RFC3339))
	}
	return t, nil
}
