package pki

import (
	"crypto"
	"crypto/x509"
	"fmt"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Kubeconfig builds a kubeconfig for one client-certificate user, as kubeadm lays it out.
func Kubeconfig(cluster, server string, caPEM []byte, user string, certPEM, keyPEM []byte) ([]byte, error) {
	return writeKubeconfig(cluster, server, caPEM, user, &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM})
}

// TokenKubeconfig builds a kubeconfig that authenticates with a bearer token (the bootstrap
// kubeconfig of a joining node).
func TokenKubeconfig(cluster, server string, caPEM []byte, user, token string) ([]byte, error) {
	return writeKubeconfig(cluster, server, caPEM, user, &clientcmdapi.AuthInfo{Token: token})
}

func writeKubeconfig(cluster, server string, caPEM []byte, user string, auth *clientcmdapi.AuthInfo) ([]byte, error) {
	ctx := user + "@" + cluster
	cfg := clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{cluster: {Server: server, CertificateAuthorityData: caPEM}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{user: auth},
		Contexts:       map[string]*clientcmdapi.Context{ctx: {Cluster: cluster, AuthInfo: user}},
		CurrentContext: ctx,
	}
	return clientcmd.Write(cfg)
}

// parsedKubeconfig is what the checks need from a kubeconfig file.
type parsedKubeconfig struct {
	server string
	caPEM  []byte
	cert   *x509.Certificate
	key    crypto.Signer
}

func parseKubeconfig(data []byte) (*parsedKubeconfig, error) {
	cfg, err := clientcmd.Load(data)
	if err != nil {
		return nil, err
	}
	ctx, ok := cfg.Contexts[cfg.CurrentContext]
	if !ok {
		return nil, fmt.Errorf("current context %q not found", cfg.CurrentContext)
	}
	cl, ok := cfg.Clusters[ctx.Cluster]
	if !ok {
		return nil, fmt.Errorf("cluster %q not found", ctx.Cluster)
	}
	au, ok := cfg.AuthInfos[ctx.AuthInfo]
	if !ok {
		return nil, fmt.Errorf("user %q not found", ctx.AuthInfo)
	}
	cert, err := decodeCert(au.ClientCertificateData)
	if err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	key, err := decodeKey(au.ClientKeyData)
	if err != nil {
		return nil, fmt.Errorf("client key: %w", err)
	}
	return &parsedKubeconfig{server: cl.Server, caPEM: cl.CertificateAuthorityData, cert: cert, key: key}, nil
}
