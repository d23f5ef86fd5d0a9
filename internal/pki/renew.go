package pki

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"kubeup.dev/kubeup/internal/cluster"
)

// BootstrapTokenName is the name `certs renew` takes to mint a new bootstrap token.
const BootstrapTokenName = "bootstrap-token"

// RenewableNames lists every name Renew accepts, in bundle order.
func RenewableNames(cfg *cluster.Config) []string {
	var out []string
	for _, s := range LeafSpecs(cfg) {
		out = append(out, s.Name)
	}
	for _, s := range KubeconfigSpecs(cfg) {
		out = append(out, s.Name)
	}
	return append(out, BootstrapTokenName)
}

// Renew re-issues one certificate or kubeconfig of an existing bundle from the current config,
// keeping its private key, or mints a new bootstrap token. The old file is kept beside the new
// one as <file>.<time>.old, so nothing is lost. It returns the path of that copy.
func Renew(dir string, cfg *cluster.Config, name string, now time.Time) (string, error) {
	if _, err := os.Stat(filepath.Join(dir, MetaFile)); err != nil {
		return "", fmt.Errorf("no secrets bundle in %s: run ignition-gen to create one", dir)
	}
	cfg, err := withProviderSANs(dir, cfg)
	if err != nil {
		return "", err
	}
	e := newEnsurer(dir, cfg, Options{Now: now})
	if err := e.meta(); err != nil {
		return "", err
	}
	if err := e.authorities(); err != nil {
		return "", err
	}
	rel, data, err := e.reissue(name)
	if err != nil {
		return "", err
	}
	// A second renewal within the same second gets a numbered copy, never overwrites the first.
	backup, err := keepAndReplace(filepath.Join(dir, rel), data, e.now.UTC().Format("20060102T150405Z"))
	if err != nil {
		return "", fmt.Errorf("renew %s: %w", name, err)
	}
	return backup, nil
}

// reissue returns the bundle path and new content for name.
func (e *ensurer) reissue(name string) (string, []byte, error) {
	if name == BootstrapTokenName {
		t, err := NewToken(e.now, e.cfg.TokenTTL())
		if err != nil {
			return "", nil, err
		}
		data, err := t.encode()
		return TokenFile, data, err
	}
	for _, spec := range LeafSpecs(e.cfg) {
		if spec.Name != name {
			continue
		}
		keyRel := "pki/" + spec.Name + ".key"
		data, ok, err := e.read(keyRel)
		if err != nil || !ok {
			return "", nil, fmt.Errorf("renew %s: its key %s is missing", name, keyRel)
		}
		key, err := decodeKey(data)
		if err != nil {
			return "", nil, fmt.Errorf("%s: %w", keyRel, err)
		}
		cert, err := newLeaf(spec, key.Public(), e.cas[spec.CA], e.caKeys[spec.CA], e.now, LeafValidity)
		return "pki/" + spec.Name + ".crt", cert, err
	}
	for _, spec := range KubeconfigSpecs(e.cfg) {
		if spec.Name != name {
			continue
		}
		data, ok, err := e.read(spec.Name)
		if err != nil || !ok {
			return "", nil, fmt.Errorf("renew %s: the bundle has no %s", name, spec.Name)
		}
		kc, err := parseKubeconfig(data)
		if err != nil {
			return "", nil, fmt.Errorf("%s: %w", spec.Name, err)
		}
		out, err := e.newKubeconfig(spec, kc.key)
		return spec.Name, out, err
	}
	return "", nil, fmt.Errorf("nothing named %q to renew: use one of %s", name, strings.Join(RenewableNames(e.cfg), ", "))
}
