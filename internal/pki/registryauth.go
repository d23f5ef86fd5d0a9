package pki

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/fsutil"
)

// RegistryAuthFile holds the credentials of the registry mirrors that ask for them, in the
// format of Docker's config.json ({"auths": {"HOST": {"auth": base64("USER:PASSWORD")}}}), so
// an entry can be copied from one. `kubeup registry login` writes it; no file means every
// mirror is pulled from anonymously.
const RegistryAuthFile = "registry-auth.json"

// RegistryCredential is a mirror's user name and password (or token).
type RegistryCredential struct {
	Username, Password string
}

// BasicAuth is the value of the Authorization header HTTP basic authentication sends.
func (c RegistryCredential) BasicAuth() string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(c.Username+":"+c.Password))
}

type registryAuthJSON struct {
	Auths map[string]registryAuthEntry `json:"auths"`
}

type registryAuthEntry struct {
	Auth string `json:"auth"`
}

// decodeRegistryAuth reads RegistryAuthFile's content: mirror host → credential.
func decodeRegistryAuth(data []byte) (map[string]RegistryCredential, error) {
	var f registryAuthJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("not a registry credentials file (%v): remove it, then log in to each mirror again (kubeup registry login)", err)
	}
	out := map[string]RegistryCredential{}
	for host, e := range f.Auths {
		raw, err := base64.StdEncoding.DecodeString(e.Auth)
		user, pass, ok := strings.Cut(string(raw), ":")
		if err != nil || !ok || user == "" {
			return nil, fmt.Errorf("auths.%q.auth is not base64 of USER:PASSWORD: correct it, or remove the file and log in to each mirror again (kubeup registry login %s ...)", host, host)
		}
		out[host] = RegistryCredential{Username: user, Password: pass}
	}
	return out, nil
}

func encodeRegistryAuth(creds map[string]RegistryCredential) ([]byte, error) {
	f := registryAuthJSON{Auths: map[string]registryAuthEntry{}}
	for host, c := range creds {
		f.Auths[host] = registryAuthEntry{Auth: base64.StdEncoding.EncodeToString([]byte(c.Username + ":" + c.Password))}
	}
	data, err := json.MarshalIndent(f, "", "  ")
	return append(data, '\n'), err
}

// registryAuth reads RegistryAuthFile if the bundle has one and checks that every host in it is
// a mirror the config names: a credential for no mirror is most likely a mirror renamed in the
// config, whose machines would then pull anonymously.
func (e *ensurer) registryAuth() error {
	data, ok, err := e.read(RegistryAuthFile)
	if err != nil || !ok {
		return err
	}
	path := filepath.Join(e.b.Dir, RegistryAuthFile)
	if e.b.RegistryAuth, err = decodeRegistryAuth(data); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	mirrors := e.cfg.MirrorHosts()
	for host := range e.b.RegistryAuth {
		if !slices.Contains(mirrors, host) {
			e.conflicts = append(e.conflicts, fmt.Sprintf("%s: credentials for %s, which no mirror in the config's registries names; "+
				"add the mirror, or drop them with: kubeup registry logout %s --config %s", RegistryAuthFile, host, host, e.configPath()))
		}
	}
	return nil
}

// SetRegistryAuth records the credential of mirror host in the bundle in dir (nil removes it),
// replacing RegistryAuthFile atomically, 0600. The caller checks that the config names the
// mirror. It reports whether anything changed.
func SetRegistryAuth(dir, host string, c *RegistryCredential) (bool, error) {
	path := filepath.Join(dir, RegistryAuthFile)
	creds := map[string]RegistryCredential{}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return false, err
	default:
		if creds, err = decodeRegistryAuth(data); err != nil {
			return false, fmt.Errorf("%s: %w", path, err)
		}
	}
	old, had := creds[host]
	switch {
	case c == nil && !had, c != nil && had && old == *c:
		return false, nil
	case c == nil:
		delete(creds, host)
	default:
		creds[host] = *c
	}
	if len(creds) == 0 {
		if err := os.Remove(path); err != nil {
			return false, err
		}
		return true, nil
	}
	if data, err = encodeRegistryAuth(creds); err != nil {
		return false, err
	}
	if _, err := os.Stat(filepath.Join(dir, MetaFile)); err != nil {
		return false, fmt.Errorf("no secrets bundle in %s (run ignition-gen or kubeup up once to create it): %w", dir, err)
	}
	return true, fsutil.ReplaceFile(path, data, 0o600)
}

// RegistryAuthFor returns the credentials of the mirrors of r that have them, by mirror URL.
func (b *Bundle) RegistryAuthFor(r cluster.Registry) map[string]RegistryCredential {
	out := map[string]RegistryCredential{}
	for _, m := range r.Mirrors {
		if c, ok := b.RegistryAuth[cluster.MirrorHost(m)]; ok {
			out[m] = c
		}
	}
	return out
}
