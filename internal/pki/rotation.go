package pki

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/fsutil"
)

// RotationDir holds a CA rotation in the bundle: state.json and the new CAs, laid out as the
// bundle's own pki/ (ca-rotation/pki/ca.crt, ...). The bundle's pki/ keeps the CAs in use until
// the rotation finishes, so configs rendered meanwhile are the ones the cluster runs.
const RotationDir = "ca-rotation"

const rotationState = RotationDir + "/state.json"

// Rotation is the bundle's record of a CA rotation.
type Rotation struct {
	// ID names the rotation (its start time); the master's agent and the cluster's Secret
	// carry it, so two rotations are never mixed up.
	ID       string     `json:"id"`
	Started  time.Time  `json:"started"`
	Finished *time.Time `json:"finished,omitempty"`
}

// InProgress reports whether the rotation was started and not finished.
func (r *Rotation) InProgress() bool { return r != nil && r.Finished == nil }

// NewCA is one CA a rotation introduces, as PEM.
type NewCA struct {
	CA        CA
	Cert, Key []byte
}

// ReadRotation returns the bundle's rotation record, or nil when no rotation was ever started.
func ReadRotation(dir string) (*Rotation, error) {
	data, err := os.ReadFile(filepath.Join(dir, rotationState))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r Rotation
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, rotationState), err)
	}
	return &r, nil
}

// StartRotation makes a new CA (certificate and key) beside each of the bundle's three and
// records the rotation. A rotation already in progress is returned as it is (started false):
// starting again is a no-op, and never makes a second set of CAs. A rotation that finished
// is archived as ca-rotation.<id> first. Keys are created 0600, atomically, never overwritten:
// a run that stopped half-way is resumed with the keys it made.
func StartRotation(dir string, cfg *cluster.Config, now time.Time) (r *Rotation, started bool, err error) {
	if _, err := Load(dir, cfg); err != nil {
		return nil, false, fmt.Errorf("the bundle must be sound before a CA rotation: %w", err)
	}
	if r, err = ReadRotation(dir); err != nil {
		return nil, false, err
	}
	if r.InProgress() {
		return r, false, nil
	}
	if r != nil {
		archive := filepath.Join(dir, RotationDir+"."+r.ID)
		if err := os.Rename(filepath.Join(dir, RotationDir), archive); err != nil {
			return nil, false, fmt.Errorf("archive the finished rotation %s: %w", r.ID, err)
		}
	}
	e := newEnsurer(filepath.Join(dir, RotationDir), cfg, Options{Now: now})
	if err := e.readMeta(dir); err != nil {
		return nil, false, err
	}
	for _, d := range []string{e.b.Dir, filepath.Join(e.b.Dir, "pki"), filepath.Join(e.b.Dir, "pki", "etcd")} {
		if err := fsutil.MkdirAll(d, 0o700); err != nil {
			return nil, false, err
		}
	}
	// The same code that makes a bundle's CAs makes the new ones, in the rotation's directory.
	if err := e.authorities(); err != nil {
		return nil, false, err
	}
	r = &Rotation{ID: now.UTC().Format("20060102T150405Z"), Started: now.UTC().Truncate(time.Second)}
	data, _ := json.MarshalIndent(r, "", "  ")
	if err := fsutil.CreateFile(filepath.Join(dir, rotationState), append(data, '\n'), 0o600); err != nil {
		return nil, false, err
	}
	return r, true, nil
}

// readMeta takes the key algorithm of the bundle in dir, for an ensurer working elsewhere.
func (e *ensurer) readMeta(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, MetaFile))
	if err != nil {
		return err
	}
	return json.Unmarshal(data, &e.b.Meta)
}

// RotationCAs returns the new CAs of the rotation in progress.
func RotationCAs(dir string) ([]NewCA, error) {
	var out []NewCA
	for _, ca := range CAs {
		base := filepath.Join(dir, RotationDir, "pki", string(ca))
		cert, err := os.ReadFile(base + ".crt")
		if err != nil {
			return nil, err
		}
		key, err := os.ReadFile(base + ".key")
		if err != nil {
			return nil, err
		}
		out = append(out, NewCA{CA: ca, Cert: cert, Key: key})
	}
	return out, nil
}

// FinishRotation makes the rotation's new CAs the bundle's own and re-issues every leaf
// certificate and kubeconfig of the bundle from them (same keys), so configs rendered from now
// on match the cluster after its rotation. Every file it replaces is kept beside the new one
// as <file>.<time>.old. It returns what it changed; a second run changes nothing.
func FinishRotation(dir string, cfg *cluster.Config, now time.Time) ([]string, error) {
	r, err := ReadRotation(dir)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, fmt.Errorf("no CA rotation in %s: start one with: kubeup certs rotate-ca start", dir)
	}
	if !r.InProgress() {
		return nil, nil
	}
	news, err := RotationCAs(dir)
	if err != nil {
		return nil, fmt.Errorf("the rotation's new CAs: %w", err)
	}
	stamp := now.UTC().Format("20060102T150405Z")
	var changed []string
	for _, n := range news {
		certRel, keyRel := "pki/"+string(n.CA)+".crt", "pki/"+string(n.CA)+".key"
		cur, err := os.ReadFile(filepath.Join(dir, certRel))
		if err != nil {
			return nil, err
		}
		if bytes.Equal(cur, n.Cert) {
			continue
		}
		// The key goes in first: a crash in between leaves the new key with the old
		// certificate, which a re-run (the certificate still differs) puts right.
		for _, f := range []struct {
			rel  string
			data []byte
		}{{keyRel, n.Key}, {certRel, n.Cert}} {
			if _, err := keepAndReplace(filepath.Join(dir, f.rel), f.data, stamp); err != nil {
				return nil, err
			}
		}
		changed = append(changed, certRel)
	}
	stale, err := staleNames(dir, cfg)
	if err != nil {
		return nil, err
	}
	for _, name := range stale {
		if _, err := Renew(dir, cfg, name, now); err != nil {
			return nil, err
		}
		changed = append(changed, name)
	}
	t := now.UTC().Truncate(time.Second)
	r.Finished = &t
	data, _ := json.MarshalIndent(r, "", "  ")
	if err := fsutil.ReplaceFile(filepath.Join(dir, rotationState), append(data, '\n'), 0o600); err != nil {
		return nil, err
	}
	return changed, nil
}

// staleNames lists the bundle's leaves and kubeconfigs not issued by the bundle's CAs as they
// are now (or, for kubeconfigs, not embedding pki/ca.crt).
func staleNames(dir string, cfg *cluster.Config) ([]string, error) {
	e := newEnsurer(dir, cfg, Options{readOnly: true})
	if err := e.meta(); err != nil {
		return nil, err
	}
	if err := e.authorities(); err != nil {
		return nil, err
	}
	var out []string
	for _, spec := range LeafSpecs(cfg) {
		cert, err := e.certFor("pki/"+spec.Name+".crt", "pki/"+spec.Name+".key")
		if err != nil {
			return nil, err
		}
		if cert == nil || cert.CheckSignatureFrom(e.cas[spec.CA]) != nil {
			out = append(out, spec.Name)
		}
	}
	caPEM, _, err := e.read("pki/ca.crt")
	if err != nil {
		return nil, err
	}
	for _, spec := range KubeconfigSpecs(cfg) {
		data, ok, err := e.read(spec.Name)
		if err != nil || !ok {
			return nil, fmt.Errorf("the bundle has no %s: %v", spec.Name, err)
		}
		kc, err := parseKubeconfig(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", spec.Name, err)
		}
		if kc.cert.CheckSignatureFrom(e.cas[spec.CA]) != nil || !bytes.Equal(kc.caPEM, caPEM) {
			out = append(out, spec.Name)
		}
	}
	return out, nil
}

// keepAndReplace keeps path's content as path.<stamp>.old (never overwriting a copy) and
// replaces it with data, 0600, atomically. It returns the copy's path.
func keepAndReplace(path string, data []byte, stamp string) (string, error) {
	old, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	backup := fmt.Sprintf("%s.%s.old", path, stamp)
	for i := 2; ; i++ {
		err := fsutil.CreateFile(backup, old, 0o600)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || i > 100 {
			return "", fmt.Errorf("keep a copy of %s: %w", path, err)
		}
		backup = fmt.Sprintf("%s.%s-%d.old", path, stamp, i)
	}
	return backup, fsutil.ReplaceFile(path, data, 0o600)
}

// CertsPEM parses every certificate of a PEM bundle (a trust file holding old and new CA).
func CertsPEM(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no CERTIFICATE PEM block")
	}
	return out, nil
}
