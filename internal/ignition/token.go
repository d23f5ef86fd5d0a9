package ignition

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/coreos/ignition/v2/config/v3_4"
	"github.com/coreos/ignition/v2/config/v3_4/types"
	"github.com/vincent-petithory/dataurl"
	"k8s.io/client-go/tools/clientcmd"

	"kubeup.dev/kubeup/internal/manifests"
)

// ErrNoBootstrapKubeconfig says a config has no bootstrap kubeconfig: it is not a node's.
var ErrNoBootstrapKubeconfig = errors.New("the config has no " + manifests.BootstrapKubeconf)

// WithBootstrapToken returns a node's rendered config with its bootstrap kubeconfig carrying
// token instead: how a fleet's role config gets the node pool's current token without the
// secrets bundle (the PXE server, kubeup tokens sync). Everything else is as rendered; the
// same config and token give the same bytes. A config with no bootstrap kubeconfig (the
// master's) is ErrNoBootstrapKubeconfig.
func WithBootstrapToken(raw []byte, token string) ([]byte, error) {
	cfg, rep, err := v3_4.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("parse the config: %w: %s", err, rep.String())
	}
	for i := range cfg.Storage.Files {
		f := &cfg.Storage.Files[i]
		if f.Path != manifests.BootstrapKubeconf {
			continue
		}
		data, inline, err := fileData(*f)
		if err != nil {
			return nil, err
		}
		if !inline {
			return nil, fmt.Errorf("%s has no inline contents", f.Path)
		}
		kc, err := clientcmd.Load(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Path, err)
		}
		if len(kc.AuthInfos) == 0 {
			return nil, fmt.Errorf("%s: no user to give the token to", f.Path)
		}
		for _, ai := range kc.AuthInfos {
			ai.Token = token
		}
		if data, err = clientcmd.Write(*kc); err != nil {
			return nil, err
		}
		if f.Contents, err = newRenderer().contents(data); err != nil {
			return nil, err
		}
		out, err := json.Marshal(cfg)
		if err != nil {
			return nil, err
		}
		return out, Check(out)
	}
	return nil, ErrNoBootstrapKubeconfig
}

// fileData is a config file's inline contents, decompressed; inline is false for contents
// fetched from elsewhere (or none).
func fileData(f types.File) (data []byte, inline bool, err error) {
	if f.Contents.Source == nil || !strings.HasPrefix(*f.Contents.Source, "data:") {
		return nil, false, nil
	}
	u, err := dataurl.DecodeString(*f.Contents.Source)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", f.Path, err)
	}
	data = u.Data
	if f.Contents.Compression != nil && *f.Contents.Compression == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", f.Path, err)
		}
		if data, err = io.ReadAll(zr); err != nil {
			return nil, false, fmt.Errorf("%s: %w", f.Path, err)
		}
	}
	return data, true, nil
}

// PrivateKeys lists the files of a rendered config whose inline contents hold a private key
// (PEM): a master's config, never a node's. Whoever hands a config to machines it does not know
// (the PXE server's default role) checks with it.
func PrivateKeys(raw []byte) ([]string, error) {
	cfg, rep, err := v3_4.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("parse the config: %w: %s", err, rep.String())
	}
	var keys []string
	for _, f := range cfg.Storage.Files {
		data, _, err := fileData(f)
		if err != nil {
			return nil, err
		}
		if bytes.Contains(data, []byte("PRIVATE KEY-----")) {
			keys = append(keys, f.Path)
		}
	}
	return keys, nil
}
