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

// Channel limits: how much config each target hands a machine.
const (
	// AWSUserDataLimit is EC2's user-data limit, on the raw bytes.
	AWSUserDataLimit = 16 * 1024
	// VSphereGuestinfoLimit is what we allow in guestinfo.ignition.config.data, measured on the
	// gzip+base64 encoding we set. govc's inline arguments top out near 128 KiB; half that leaves
	// room for the rest of the VM's extraConfig.
	VSphereGuestinfoLimit = 64 * 1024
)

// Sizes of one config in the encodings the channels use.
type Sizes struct {
	Raw        int
	GzipBase64 int
}

// FitsAWS reports whether the config fits EC2 user-data as is.
func (s Sizes) FitsAWS() bool { return s.Raw <= AWSUserDataLimit }

// FitsVSphere reports whether the config fits guestinfo as gzip+base64.
func (s Sizes) FitsVSphere() bool { return s.GzipBase64 <= VSphereGuestinfoLimit }

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
