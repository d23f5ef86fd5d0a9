package metricsserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/kubernetes"
	cliflag "k8s.io/component-base/cli/flag"

	"kubeup.dev/kubeup/internal/manifests"
)

// Options say what to serve, with which certificate, checked against whom.
type Options struct {
	// CertFile and KeyFile are the serving certificate and its key (PEM; the kubelet keeps both
	// in one file). The server starts once they exist and follows their renewals.
	CertFile, KeyFile string
	// ClientCA is the CA file that client certificates must chain to (the cluster CA; followed
	// when a CA rotation replaces it).
	ClientCA string
	// Client makes the TokenReviews and SubjectAccessReviews (a node's kubelet credentials may).
	Client kubernetes.Interface
	// Handler serves the metrics to the clients let in.
	Handler http.Handler
}

// Reviews are cached like the kubelet caches them: a scraper every few seconds costs the API
// server a review every few minutes.
const (
	tokenCacheTTL = 2 * time.Minute
	allowCacheTTL = 5 * time.Minute
	denyCacheTTL  = 30 * time.Second
	reviewTimeout = 10 * time.Second
)

// Protect wraps next so that only requests the API server authenticates and authorizes reach
// it. It follows the CA file until ctx ends.
func Protect(ctx context.Context, client kubernetes.Interface, clientCA string, next http.Handler) (http.Handler, error) {
	ca, err := dynamiccertificates.NewDynamicCAContentFromFile("client-ca", clientCA)
	if err != nil {
		return nil, err
	}
	go ca.Run(ctx, 1)
	// A review that fails is retried a few times, briefly: a scrape waits seconds, not minutes.
	backoff := wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 5}
	authn, _, err := authenticatorfactory.DelegatingAuthenticatorConfig{
		TokenAccessReviewClient: client.AuthenticationV1(), TokenAccessReviewTimeout: reviewTimeout,
		WebhookRetryBackoff: &backoff, CacheTTL: tokenCacheTTL, ClientCertificateCAContentProvider: ca,
	}.New()
	if err != nil {
		return nil, err
	}
	authz, err := authorizerfactory.DelegatingAuthorizerConfig{
		SubjectAccessReviewClient: client.AuthorizationV1(), AllowCacheTTL: allowCacheTTL, DenyCacheTTL: denyCacheTTL,
		WebhookRetryBackoff: &backoff,
	}.New()
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		res, ok, err := authn.AuthenticateRequest(r)
		if err != nil || !ok {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		decision, reason, err := authz.Authorize(r.Context(), authorizer.AttributesRecord{
			User: res.User, Verb: strings.ToLower(r.Method), Path: r.URL.Path})
		if decision != authorizer.DecisionAllow {
			msg := fmt.Sprintf("Forbidden (user=%s, verb=%s, path=%s)", res.User.GetName(), strings.ToLower(r.Method), r.URL.Path)
			if reason != "" {
				msg += ": " + reason
			}
			if err != nil {
				msg += ": " + err.Error()
			}
			http.Error(w, msg, http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	}), nil
}

// Serve serves o.Handler on ln, protected, until ctx ends. Until the serving certificate exists
// (a kubelet has it once its CSR is approved) it waits, and ln answers no one.
func Serve(ctx context.Context, ln net.Listener, o Options) error {
	defer ln.Close()
	h, err := Protect(ctx, o.Client, o.ClientCA, o.Handler)
	if err != nil {
		return err
	}
	var serving *dynamiccertificates.DynamicCertKeyPairContent
	if err := wait.PollUntilContextCancel(ctx, 5*time.Second, true, func(context.Context) (bool, error) {
		serving, err = dynamiccertificates.NewDynamicServingContentFromFiles("serving", o.CertFile, o.KeyFile)
		return err == nil, nil
	}); err != nil {
		return nil // ctx ended first
	}
	go serving.Run(ctx, 1)
	suites, err := cliflag.TLSCipherSuites(manifests.TLSCipherSuites)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler: h,
		TLSConfig: &tls.Config{
			MinVersion:   tls.VersionTLS12,
			CipherSuites: suites,
			// Asked for, not required: a scraper with a token sends none; one that is sent is
			// verified against the cluster CA by the authenticator.
			ClientAuth: tls.RequestClientCert,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				cert, key := serving.CurrentCertKeyContent()
				c, err := tls.X509KeyPair(cert, key)
				return &c, err
			},
		},
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
