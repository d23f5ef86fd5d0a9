package pki

import (
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/fsutil"
)

// MetaFile records what the bundle was made for.
const MetaFile = "bundle.json"

// Meta is the bundle's own record: which cluster, which key algorithm.
type Meta struct {
	Cluster      string       `json:"cluster"`
	KeyAlgorithm KeyAlgorithm `json:"keyAlgorithm"`
	Created      time.Time    `json:"created"`
}

// Bundle is a cluster's secrets, read into memory: small, and read many times when rendering.
type Bundle struct {
	Dir   string
	Meta  Meta
	Token Token
	// RegistryAuth is RegistryAuthFile's credentials by mirror host; empty without the file.
	RegistryAuth map[string]RegistryCredential
	files        map[string][]byte // path relative to Dir → content
}

// Options tune Ensure.
type Options struct {
	// KeyAlgorithm for new keys; empty means the bundle's own (or the default for a new bundle).
	// A value that differs from an existing bundle's is an error.
	KeyAlgorithm KeyAlgorithm
	// Now is the clock; zero means time.Now.
	Now time.Time
	// Progress, if set, is told about every file created.
	Progress func(rel string)
	// ConfigPath names the cluster config in the commands that error messages suggest.
	ConfigPath string
	// readOnly makes a missing file an error instead of creating it (Load).
	readOnly bool
}

// ConflictError lists every way an existing bundle disagrees with the config.
type ConflictError struct {
	Dir       string
	Conflicts []string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("the secrets bundle in %s no longer matches the cluster config (nothing was changed):\n  %s",
		e.Dir, strings.Join(e.Conflicts, "\n  "))
}

// ensurer carries one Ensure run.
type ensurer struct {
	b         *Bundle
	cfg       *cluster.Config
	opt       Options
	now       time.Time
	conflicts []string
	cas       map[CA]*x509.Certificate
	caKeys    map[CA]crypto.Signer
}

func newEnsurer(dir string, cfg *cluster.Config, opt Options) *ensurer {
	e := &ensurer{b: &Bundle{Dir: dir, files: map[string][]byte{}}, cfg: cfg, opt: opt, now: opt.Now,
		cas: map[CA]*x509.Certificate{}, caKeys: map[CA]crypto.Signer{}}
	if e.now.IsZero() {
		e.now = time.Now()
	}
	return e
}

// Ensure creates whatever the bundle in dir lacks and checks what it has against cfg. It never
// changes an existing file. On a conflict it returns *ConflictError naming each file and the
// command that re-issues it.
func Ensure(dir string, cfg *cluster.Config, opt Options) (*Bundle, error) {
	cfg, err := withProviderSANs(dir, cfg)
	if err != nil {
		return nil, err
	}
	e := newEnsurer(dir, cfg, opt)
	for _, d := range []string{dir, filepath.Join(dir, "pki"), filepath.Join(dir, "pki", "etcd")} {
		if err := fsutil.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create bundle directory: %w", err)
		}
		// A run killed while it wrote a file leaves the temporary file behind, holding a
		// whole key: gone at the next run.
		if !opt.readOnly {
			if err := fsutil.RemoveTemps(d); err != nil {
				return nil, fmt.Errorf("bundle directory: %w", err)
			}
		}
	}
	steps := []func() error{e.meta, e.authorities, e.serviceAccount, e.leaves, e.kubeconfigs, e.token,
		e.once(EncryptionConfigFile, newEncryptionConfig), e.once(AuditPolicyFile, newAuditPolicy), e.registryAuth}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	if len(e.conflicts) > 0 {
		return nil, &ConflictError{Dir: dir, Conflicts: e.conflicts}
	}
	return e.b, nil
}

// Load reads an existing bundle and checks it against cfg, creating nothing. A missing file is
// an error: use Ensure to create a bundle.
func Load(dir string, cfg *cluster.Config) (*Bundle, error) {
	if _, err := os.Stat(filepath.Join(dir, MetaFile)); err != nil {
		return nil, fmt.Errorf("no secrets bundle in %s (run ignition-gen once to create it): %w", dir, err)
	}
	return Ensure(dir, cfg, Options{readOnly: true})
}

// File returns a bundle file's content by its path relative to the bundle (pki/ca.crt).
func (b *Bundle) File(rel string) []byte { return b.files[rel] }

// Files lists every file of the bundle, sorted.
func (b *Bundle) Files() []string {
	out := make([]string, 0, len(b.files))
	for k := range b.files {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// read loads rel into the bundle, reporting whether it exists. A file that others may read is
// refused, naming it: kubeup writes every bundle file 0600, so another mode means something else
// changed it, and its key may have been read.
func (e *ensurer) read(rel string) ([]byte, bool, error) {
	path := filepath.Join(e.b.Dir, rel)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read bundle: %w", err)
	}
	if fi, err := os.Stat(path); err != nil {
		return nil, false, fmt.Errorf("read bundle: %w", err)
	} else if mode := fi.Mode().Perm(); mode&0o077 != 0 {
		return nil, false, fmt.Errorf("%s is mode %04o: every file of the secrets bundle must be readable by its owner only, and kubeup "+
			"changes nothing while one is not (fix: chmod 600 %s; if anyone else could have read it, replace what it holds: "+
			"kubeup certs renew for a certificate's key, kubeup certs rotate-ca for a CA's)", path, mode, path)
	}
	e.b.files[rel] = data
	return data, true, nil
}

// create writes a new bundle file, 0600, atomically, failing if it appeared meanwhile.
func (e *ensurer) create(rel string, data []byte) error {
	if e.opt.readOnly {
		return fmt.Errorf("%s is missing from the secrets bundle in %s (run ignition-gen to create it)", rel, e.b.Dir)
	}
	if err := fsutil.CreateFile(filepath.Join(e.b.Dir, rel), data, 0o600); err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	e.b.files[rel] = data
	if e.opt.Progress != nil {
		e.opt.Progress(rel)
	}
	return nil
}

func (e *ensurer) meta() error {
	data, ok, err := e.read(MetaFile)
	if err != nil {
		return err
	}
	if ok {
		if err := json.Unmarshal(data, &e.b.Meta); err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(e.b.Dir, MetaFile), err)
		}
		if e.b.Meta.Cluster != e.cfg.Name {
			return fmt.Errorf("the bundle in %s belongs to cluster %q, not %q: use --state to point at this cluster's bundle",
				e.b.Dir, e.b.Meta.Cluster, e.cfg.Name)
		}
		if e.opt.KeyAlgorithm != "" && e.opt.KeyAlgorithm != e.b.Meta.KeyAlgorithm {
			return fmt.Errorf("the bundle in %s uses %s keys; --key-algorithm %s would need a new bundle (keys are never regenerated): drop the flag or use another --state",
				e.b.Dir, e.b.Meta.KeyAlgorithm, e.opt.KeyAlgorithm)
		}
		return nil
	}
	alg := e.opt.KeyAlgorithm
	if alg == "" {
		alg = DefaultKeyAlgorithm
	}
	e.b.Meta = Meta{Cluster: e.cfg.Name, KeyAlgorithm: alg, Created: e.now.UTC().Truncate(time.Second)}
	data, err = json.MarshalIndent(e.b.Meta, "", "  ")
	if err != nil {
		return err
	}
	return e.create(MetaFile, append(data, '\n'))
}

// keyPair loads or creates the key at keyRel. The key is written before the certificate, so a
// crash leaves a key without a certificate (recoverable: the certificate is issued for the
// existing key) and never a certificate without its key.
func (e *ensurer) keyPair(keyRel string) (crypto.Signer, error) {
	data, ok, err := e.read(keyRel)
	if err != nil {
		return nil, err
	}
	if ok {
		k, err := decodeKey(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(e.b.Dir, keyRel), err)
		}
		return k, nil
	}
	k, err := e.b.Meta.KeyAlgorithm.generate()
	if err != nil {
		return nil, err
	}
	pemKey, err := encodeKey(k)
	if err != nil {
		return nil, err
	}
	return k, e.create(keyRel, pemKey)
}

// certFor loads the certificate at certRel, or returns nil when there is none. A certificate
// whose key is missing is damage we cannot repair without losing trust: an error.
func (e *ensurer) certFor(certRel, keyRel string) (*x509.Certificate, error) {
	data, ok, err := e.read(certRel)
	if err != nil || !ok {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(e.b.Dir, keyRel)); err != nil {
		return nil, fmt.Errorf("%s exists but its key %s is missing: the bundle is damaged; restore it from a backup",
			filepath.Join(e.b.Dir, certRel), keyRel)
	}
	c, err := decodeCert(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(e.b.Dir, certRel), err)
	}
	return c, nil
}

// pair loads the certificate at certRel (nil if there is none yet) and loads or creates its key.
func (e *ensurer) pair(certRel, keyRel string) (*x509.Certificate, crypto.Signer, error) {
	cert, err := e.certFor(certRel, keyRel)
	if err != nil {
		return nil, nil, err
	}
	key, err := e.keyPair(keyRel)
	return cert, key, err
}

func (e *ensurer) authorities() error {
	for _, ca := range CAs {
		certRel, keyRel := "pki/"+string(ca)+".crt", "pki/"+string(ca)+".key"
		cert, key, err := e.pair(certRel, keyRel)
		if err != nil {
			return err
		}
		if cert == nil {
			pemCert, err := newCA(caCommonNames[ca], key, e.now)
			if err != nil {
				return err
			}
			if err := e.create(certRel, pemCert); err != nil {
				return err
			}
			cert, _ = decodeCert(pemCert)
		} else {
			if !samePublicKey(cert.PublicKey, key.Public()) {
				return fmt.Errorf("%s does not match its key %s: the bundle is damaged; restore it from a backup", certRel, keyRel)
			}
			if !cert.IsCA || cert.Subject.CommonName != caCommonNames[ca] {
				return fmt.Errorf("%s is not the %s CA (CN %q)", certRel, caCommonNames[ca], cert.Subject.CommonName)
			}
			if e.now.After(cert.NotAfter) {
				e.conflicts = append(e.conflicts, fmt.Sprintf("%s: the CA expired on %s; a CA rotation is needed", certRel, cert.NotAfter.Format(time.RFC3339)))
			}
		}
		e.cas[ca], e.caKeys[ca] = cert, key
	}
	return nil
}

func (e *ensurer) serviceAccount() error {
	key, err := e.keyPair("pki/sa.key")
	if err != nil {
		return err
	}
	pub, err := encodePublicKey(key.Public())
	if err != nil {
		return err
	}
	data, ok, err := e.read("pki/sa.pub")
	if err != nil {
		return err
	}
	if !ok {
		return e.create("pki/sa.pub", pub)
	}
	if string(data) != string(pub) {
		return fmt.Errorf("pki/sa.pub does not match pki/sa.key: the bundle is damaged; restore it from a backup")
	}
	return nil
}

func (e *ensurer) renewHint(name string) string {
	return fmt.Sprintf("re-issue it with: kubeup certs renew %s --config %s", name, e.configPath())
}

func (e *ensurer) leaves() error {
	for _, spec := range LeafSpecs(e.cfg) {
		certRel, keyRel := "pki/"+spec.Name+".crt", "pki/"+spec.Name+".key"
		cert, key, err := e.pair(certRel, keyRel)
		if err != nil {
			return err
		}
		if cert != nil {
			e.check(certRel, spec, cert, key)
			continue
		}
		pemCert, err := newLeaf(spec, key.Public(), e.cas[spec.CA], e.caKeys[spec.CA], e.now, LeafValidity)
		if err != nil {
			return err
		}
		if err := e.create(certRel, pemCert); err != nil {
			return err
		}
	}
	return nil
}

func (e *ensurer) check(rel string, spec CertSpec, cert *x509.Certificate, key crypto.Signer) {
	if !samePublicKey(cert.PublicKey, key.Public()) {
		e.conflicts = append(e.conflicts, fmt.Sprintf("%s: certificate does not match its key; %s", rel, e.renewHint(spec.Name)))
		return
	}
	if m := mismatches(spec, cert, e.cas[spec.CA], e.now); len(m) > 0 {
		e.conflicts = append(e.conflicts, fmt.Sprintf("%s: %s; %s", rel, strings.Join(m, "; "), e.renewHint(spec.Name)))
	}
}

func (e *ensurer) kubeconfigs() error {
	caPEM := e.b.files["pki/ca.crt"]
	for _, spec := range KubeconfigSpecs(e.cfg) {
		data, ok, err := e.read(spec.Name)
		if err != nil {
			return err
		}
		if ok {
			kc, err := parseKubeconfig(data)
			if err != nil {
				return fmt.Errorf("%s: %w", filepath.Join(e.b.Dir, spec.Name), err)
			}
			if kc.server != spec.Server {
				e.conflicts = append(e.conflicts, fmt.Sprintf("%s: server is %s, config wants %s; %s", spec.Name, kc.server, spec.Server, e.renewHint(spec.Name)))
			}
			if string(kc.caPEM) != string(caPEM) {
				e.conflicts = append(e.conflicts, fmt.Sprintf("%s: embeds another CA than pki/ca.crt; %s", spec.Name, e.renewHint(spec.Name)))
			}
			e.check(spec.Name, spec, kc.cert, kc.key)
			continue
		}
		data, err = e.newKubeconfig(spec, nil)
		if err != nil {
			return err
		}
		if err := e.create(spec.Name, data); err != nil {
			return err
		}
	}
	return nil
}

// newKubeconfig issues a client certificate for spec, for key (a new key when nil), and wraps it.
func (e *ensurer) newKubeconfig(spec CertSpec, key crypto.Signer) ([]byte, error) {
	if key == nil {
		var err error
		if key, err = e.b.Meta.KeyAlgorithm.generate(); err != nil {
			return nil, err
		}
	}
	certPEM, err := newLeaf(spec, key.Public(), e.cas[spec.CA], e.caKeys[spec.CA], e.now, LeafValidity)
	if err != nil {
		return nil, err
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	return Kubeconfig(e.cfg.Name, spec.Server, e.b.files["pki/ca.crt"], spec.CN, certPEM, keyPEM)
}

func (e *ensurer) token() error {
	data, ok, err := e.read(TokenFile)
	if err != nil {
		return err
	}
	if ok {
		if e.b.Token, err = decodeToken(data); err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(e.b.Dir, TokenFile), err)
		}
		// With the node token pool the master's agent keeps a token valid and the distributors
		// put it into node configs: the bundle's token, the pool's first member, may expire.
		if e.now.After(e.b.Token.Expires) && !e.cfg.PKI.BootstrapTokenPool {
			e.conflicts = append(e.conflicts, fmt.Sprintf("%s: bootstrap token %s expired on %s, so new nodes could not join; mint a new one with: kubeup certs renew bootstrap-token --config %s",
				TokenFile, e.b.Token.ID, e.b.Token.Expires.Format(time.RFC3339), e.configPath()))
		}
		return nil
	}
	if e.b.Token, err = NewToken(e.now, e.cfg.TokenTTL()); err != nil {
		return err
	}
	if data, err = e.b.Token.encode(); err != nil {
		return err
	}
	return e.create(TokenFile, data)
}

func (e *ensurer) configPath() string {
	if e.opt.ConfigPath == "" {
		return "<cluster config>"
	}
	return e.opt.ConfigPath
}

// once creates a file that has no relation to the config the first time and keeps it after.
func (e *ensurer) once(rel string, gen func() ([]byte, error)) func() error {
	return func() error {
		if _, ok, err := e.read(rel); err != nil || ok {
			return err
		}
		data, err := gen()
		if err != nil {
			return err
		}
		return e.create(rel, data)
	}
}
