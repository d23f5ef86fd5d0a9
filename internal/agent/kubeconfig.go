package agent

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// ReloadingConfig is a client config for a kubeconfig with an embedded client certificate that
// the agent itself renews (admin.conf): every new connection presents the certificate the file
// holds then, so a long-running agent keeps working after a renewal instead of failing when
// the certificate it read at start expires. (client-go reloads certificates only from
// client-certificate files, not from embedded data.)
func ReloadingConfig(path string) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(cfg.CAData) {
		return nil, fmt.Errorf("%s: no embedded CA certificate", path)
	}
	kc := &kubeconfigCert{path: path}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     90 * time.Second,
		MaxIdleConnsPerHost: 25,
		ForceAttemptHTTP2:   true,
		TLSClientConfig: &tls.Config{
			RootCAs:              pool,
			ServerName:           cfg.TLSClientConfig.ServerName,
			GetClientCertificate: kc.get,
			MinVersion:           tls.VersionTLS12,
		},
	}
	cfg.TLSClientConfig = rest.TLSClientConfig{}
	cfg.Transport = tr
	return cfg, nil
}

// kubeconfigCert reads a kubeconfig's client certificate again whenever the file changes.
type kubeconfigCert struct {
	path string
	mu   sync.Mutex
	cert *tls.Certificate
}

func (k *kubeconfigCert) get(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	cfg, err := clientcmd.LoadFromFile(k.path)
	if err != nil {
		if k.cert != nil {
			return k.cert, nil // mid-rename or unreadable for a moment: the last good one
		}
		return nil, err
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	if ctx == nil || cfg.AuthInfos[ctx.AuthInfo] == nil {
		return nil, fmt.Errorf("%s: no user in the current context", k.path)
	}
	ai := cfg.AuthInfos[ctx.AuthInfo]
	c, err := tls.X509KeyPair(ai.ClientCertificateData, ai.ClientKeyData)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k.path, err)
	}
	k.cert = &c
	return k.cert, nil
}
