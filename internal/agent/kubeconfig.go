package agent

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// ReloadingConfig is a client config for a kubeconfig with an embedded client certificate that
// the agent itself renews (admin.conf): every new connection presents the certificate the file
// holds then, so a long-running agent keeps working after a renewal instead of failing when
// the certificate it read at start expires. (client-go reloads certificates only from
// client-certificate files, not from embedded data.) The server is verified against the CA data
// the file holds then, too: during a CA rotation the agent itself widens it to old and new CA
// and later narrows it to the new one, and the server's certificate moves between them.
func ReloadingConfig(path string) (*rest.Config, error) {
	return ReloadingCertConfig(path, "")
}

// ReloadingCertConfig is ReloadingConfig presenting the certificate and key of certFile (one
// PEM file, as the kubelet keeps its client certificate) instead of the kubeconfig's: the
// master's kubelet.conf embeds the bundle's first certificate, and the kubelet has rotated
// away from it since. A kubeconfig naming its certificate files (a node's kubelet.conf) is
// read from them without certFile.
func ReloadingCertConfig(path, certFile string) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(cfg.CAData) {
		return nil, fmt.Errorf("%s: no embedded CA certificate", path)
	}
	// The name to verify: the URL's host unless the kubeconfig names another. (The TLS state
	// does not carry it for an IP address, which is sent in no SNI.)
	name := cfg.TLSClientConfig.ServerName
	if name == "" {
		u, err := url.Parse(cfg.Host)
		if err != nil {
			return nil, fmt.Errorf("%s: server %q: %w", path, cfg.Host, err)
		}
		name = u.Hostname()
	}
	kc := &kubeconfigCert{path: path, certFile: certFile, caData: cfg.CAData, serverName: name}
	// A certificate from files is the kubelet's, which it rotates underneath (every few minutes
	// with a short pki.nodeCertificateTTL): a connection kept open with the old one would be
	// refused (401) once that expires, so each request makes its own connection, presenting
	// the certificate of the moment and verifying against the CA of the moment. (The agent
	// makes a few requests a minute.)
	fromFiles := certFile != "" || cfg.CertFile != ""
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     90 * time.Second,
		MaxIdleConnsPerHost: 25,
		DisableKeepAlives:   fromFiles,
		ForceAttemptHTTP2:   true,
		TLSClientConfig: &tls.Config{
			ServerName:           cfg.TLSClientConfig.ServerName,
			GetClientCertificate: kc.get,
			// Verified by VerifyConnection instead, against the file's CA data of the moment.
			InsecureSkipVerify: true,
			VerifyConnection:   kc.verify,
			MinVersion:         tls.VersionTLS12,
		},
	}
	cfg.TLSClientConfig = rest.TLSClientConfig{}
	cfg.Transport = tr
	return cfg, nil
}

// kubeconfigCert reads a kubeconfig's client certificate again whenever the file changes.
type kubeconfigCert struct {
	path string
	// certFile, if set, holds the client certificate and key instead of the kubeconfig.
	certFile string
	mu       sync.Mutex
	cert     *tls.Certificate
	caData   []byte
	// serverName is the name the server's certificate must hold.
	serverName string
}

// verify checks the server's chain and name as crypto/tls would, against the CA data the
// kubeconfig holds now.
func (k *kubeconfigCert) verify(cs tls.ConnectionState) error {
	k.mu.Lock()
	if cfg, err := clientcmd.LoadFromFile(k.path); err == nil {
		if ctx := cfg.Contexts[cfg.CurrentContext]; ctx != nil && cfg.Clusters[ctx.Cluster] != nil && len(cfg.Clusters[ctx.Cluster].CertificateAuthorityData) > 0 {
			k.caData = cfg.Clusters[ctx.Cluster].CertificateAuthorityData
		}
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(k.caData)
	k.mu.Unlock()
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("%s: the server presented no certificate", k.path)
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, DNSName: k.serverName})
	return err
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
	certFile, keyFile := k.certFile, k.certFile
	if _, err := os.Stat(certFile); certFile != "" && errors.Is(err, fs.ErrNotExist) {
		certFile, keyFile = "", "" // not written yet: the kubeconfig's own
	}
	if certFile == "" && len(ai.ClientCertificateData) == 0 {
		certFile, keyFile = k.rel(ai.ClientCertificate), k.rel(ai.ClientKey)
	}
	var c tls.Certificate
	if certFile != "" {
		c, err = tls.LoadX509KeyPair(certFile, keyFile)
	} else {
		c, err = tls.X509KeyPair(ai.ClientCertificateData, ai.ClientKeyData)
	}
	if err != nil {
		if k.cert != nil {
			return k.cert, nil // the kubelet swapping its files: the last good one
		}
		return nil, fmt.Errorf("%s: %w", k.path, err)
	}
	k.cert = &c
	return k.cert, nil
}

// rel resolves a kubeconfig's file path as kubectl does: relative to the kubeconfig's directory.
func (k *kubeconfigCert) rel(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(k.path), p)
}
