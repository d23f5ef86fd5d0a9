package ignition

import (
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"

	"github.com/coreos/ignition/v2/config/v3_4/types"
	"k8s.io/utils/ptr"
)

// Sizes of one config in the encodings the channels use: raw (EC2 user-data's limit is on
// these bytes) and gzip+base64 (vSphere guestinfo's).
type Sizes struct {
	Raw        int
	GzipBase64 int
}

// Measure computes a config's sizes.
func Measure(raw []byte) Sizes {
	return newRenderer().measure(raw)
}

func (r *renderer) measure(raw []byte) Sizes {
	gz, _ := r.gzip(raw)
	return Sizes{Raw: len(raw), GzipBase64: base64.StdEncoding.EncodedLen(len(gz))}
}

// GzipBase64 encodes a config as vSphere's guestinfo.ignition.config.data.encoding=gzip+base64 expects.
func GzipBase64(raw []byte) (string, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return "", err
	}
	if _, err := zw.Write(raw); err != nil {
		return "", err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}

// Pointer is a small config that replaces itself with the config at url, pinned by its SHA-512:
// a config that was changed in transit or at rest is refused by Ignition. Each of cas (PEM)
// is trusted for fetching it over HTTPS (the PXE server's certificate chains to the cluster CA).
// The result is checked with Ignition's parser.
func Pointer(url string, raw []byte, cas ...[]byte) ([]byte, error) {
	out, err := json.Marshal(PointerConfig(url, sha512.Sum512(raw), cas...))
	if err != nil {
		return nil, err
	}
	return out, Check(out)
}

// PointerConfig is Pointer's config for a config whose SHA-512 is sum, unchecked: for the PXE
// server, which makes one per boot and whose shape the tests check with Ignition's parser.
func PointerConfig(url string, sum [sha512.Size]byte, cas ...[]byte) types.Config {
	cfg := types.Config{Ignition: types.Ignition{
		Version: SpecVersion,
		Config: types.IgnitionConfig{Replace: types.Resource{
			Source:       ptr.To(url),
			Verification: types.Verification{Hash: ptr.To("sha512-" + hex.EncodeToString(sum[:]))},
		}},
	}}
	for _, ca := range cas {
		cfg.Ignition.Security.TLS.CertificateAuthorities = append(cfg.Ignition.Security.TLS.CertificateAuthorities,
			types.Resource{Source: ptr.To(DataURL(ca))})
	}
	return cfg
}

// DataURL carries data inline in a config, as Ignition's resources take it.
func DataURL(data []byte) string {
	return "data:;base64," + base64.StdEncoding.EncodeToString(data)
}
