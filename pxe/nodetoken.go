package pxe

import (
	"context"
	"crypto/sha512"
	"errors"
	"fmt"
	"sync"

	"kubeup.dev/kubeup/internal/ignition"
	"kubeup.dev/kubeup/internal/pki"
)

// NodeTokens gives the node pool's current bootstrap token (tokenpool.Source reads it from the
// cluster with the distributors' narrow identity).
type NodeTokens interface {
	Current(ctx context.Context) (pki.Token, error)
}

// errNoNodeToken: the server hands out node configs with the pool's token, and has none.
var errNoNodeToken = errors.New("no valid node token")

// withNodeToken holds node configs as served: ignition-gen's file with the bootstrap
// kubeconfig carrying the pool's current token, re-made only when the file or the token
// changes.
type withNodeToken struct {
	mu sync.Mutex
	m  map[string]patched // by config name
}

type patched struct {
	fileSum [sha512.Size]byte
	token   string
	data    []byte
	sum     [sha512.Size]byte
}

// servedConfig returns config name as machines get it: with the current node token when the server
// has NodeTokens and the config is a node's (it has a bootstrap kubeconfig), else as rendered.
func (s *Server) servedConfig(ctx context.Context, name string) ([]byte, [sha512.Size]byte, error) {
	raw, sum, err := s.configs.getSum(name)
	if err != nil || s.opt.NodeTokens == nil {
		return raw, sum, err
	}
	tok, err := s.opt.NodeTokens.Current(ctx)
	if tok.ID == "" {
		return nil, sum, fmt.Errorf("%w: %w", errNoNodeToken, err)
	}
	if err != nil {
		// A token still valid (the last one read, or the bundle's before the cluster first
		// answered): serve it, and say the cluster did not answer.
		s.opt.Log.Warn("node token: the cluster did not answer; serving one still valid", "token", tok.ID, "err", err)
	}
	w := &s.nodeTokens
	w.mu.Lock()
	p, ok := w.m[name]
	w.mu.Unlock()
	if ok && p.fileSum == sum && p.token == tok.String() {
		return p.data, p.sum, nil
	}
	data, err := ignition.WithBootstrapToken(raw, tok.String())
	if errors.Is(err, ignition.ErrNoBootstrapKubeconfig) {
		data = raw // the master's: no token in it
	} else if err != nil {
		return nil, sum, err
	}
	p = patched{fileSum: sum, token: tok.String(), data: data, sum: sha512.Sum512(data)}
	w.mu.Lock()
	if w.m == nil {
		w.m = map[string]patched{}
	}
	w.m[name] = p
	w.mu.Unlock()
	return p.data, p.sum, nil
}
