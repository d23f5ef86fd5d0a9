package etcdsnapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"kubeup.dev/kubeup/internal/fsutil"
	"kubeup.dev/kubeup/internal/pki"
)

// Result describes a saved snapshot.
type Result struct {
	Path string `json:"path"`
	// SHA256 is the hex SHA-256 of the whole file, to compare copies with sha256sum.
	SHA256 string `json:"sha256"`
	// Revision is etcd's revision at the snapshot: every write up to it is in the file.
	Revision int64 `json:"revision"`
	Size     int64 `json:"size"`
	// EtcdVersion is the version of the etcd that made it (a restore needs one at least as new).
	EtcdVersion string `json:"etcdVersion"`
}

// ClientTLS is the TLS configuration for etcd from a secrets bundle: the etcd CA and the
// healthcheck-client certificate, the identity kubeadm's layout has for talking to etcd from
// outside the API server.
func ClientTLS(b *pki.Bundle) (*tls.Config, error) {
	const name = "pki/etcd/healthcheck-client"
	pair, err := tls.X509KeyPair(b.File(name+".crt"), b.File(name+".key"))
	if err != nil {
		return nil, fmt.Errorf("the bundle's %s certificate: %w", name, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b.File("pki/" + string(pki.EtcdCA) + ".crt")) {
		return nil, fmt.Errorf("the bundle's pki/%s.crt holds no certificate", pki.EtcdCA)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// Save streams a snapshot from the etcd at endpoint (host:port) into path, which must not
// exist. The file is 0600 and appears only once it is whole and synced; its integrity (the
// SHA-256 trailer etcd appends) is checked before Save returns, and a bad file is removed.
func Save(ctx context.Context, endpoint string, tlsCfg *tls.Config, path string) (Result, error) {
	res := Result{Path: path}
	if err := Unused(path); err != nil {
		return res, err
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: []string{endpoint}, TLS: tlsCfg, DialTimeout: 15 * time.Second,
		Logger: zap.NewNop(), Context: ctx,
	})
	if err != nil {
		return res, fmt.Errorf("etcd at %s: %w", endpoint, err)
	}
	defer cli.Close()
	// A refused certificate only shows as retries until the deadline: ask once, briefly, first.
	statusCtx, cancel := context.WithTimeout(ctx, answerTimeout)
	_, err = cli.Status(statusCtx, endpoint)
	cancel()
	if err != nil {
		return res, fmt.Errorf("etcd at %s did not answer within %v: %w (does it trust the bundle's etcd CA and healthcheck-client certificate?)", endpoint, answerTimeout, err)
	}
	snap, err := cli.SnapshotWithVersion(ctx)
	if err != nil {
		return res, fmt.Errorf("etcd at %s: snapshot: %w", endpoint, err)
	}
	defer snap.Snapshot.Close()
	res.EtcdVersion = snap.Version
	// The trailer is checked as the stream goes by: a damaged stream fails the write, and
	// nothing appears at path.
	v := &verifier{r: snap.Snapshot, name: "snapshot from " + endpoint, whole: sha256.New(), db: sha256.New()}
	if err := fsutil.CreateFrom(path, v, 0o600); err != nil {
		return res, fmt.Errorf("etcd at %s: snapshot: %w", endpoint, err)
	}
	res.SHA256, res.Size = hex.EncodeToString(v.whole.Sum(nil)), v.n
	if res.Revision, err = Revision(path); err != nil {
		return res, err
	}
	return res, nil
}

// answerTimeout bounds the first request to etcd.
const answerTimeout = 30 * time.Second

// Revision reads the revision a snapshot file holds: the newest in its key bucket, where etcd
// keys every version of every object by the revision that wrote it (8 bytes of main revision,
// big-endian, then '_' and the sub-revision). The snapshot stream's header does not carry it.
func Revision(path string) (int64, error) {
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return 0, fmt.Errorf("snapshot %s: %w", path, err)
	}
	defer db.Close()
	var rev int64
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("key"))
		if b == nil {
			return errors.New("no key bucket: not an etcd v3 snapshot")
		}
		k, _ := b.Cursor().Last()
		if len(k) < 8 {
			return errors.New("its key bucket is empty")
		}
		rev = int64(binary.BigEndian.Uint64(k[:8]))
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("snapshot %s: %w", path, err)
	}
	return rev, nil
}

// Check verifies a snapshot file's integrity: etcd ends every snapshot with the SHA-256 of the
// database before it, which a restore checks too.
func Check(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(io.Discard, &verifier{r: f, name: "snapshot " + path, whole: sha256.New(), db: sha256.New()})
	return err
}

// Unused refuses a path that exists: a snapshot is never written over anything.
func Unused(path string) error {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%s exists: a snapshot is never overwritten (fix: name another file, or move that one away)", path)
	}
	return nil
}

// verifier passes a snapshot through, hashing all of it (whole) and all but its last
// sha256.Size bytes (db), which it holds back until more comes; at the end it returns an error
// instead of io.EOF unless the held-back trailer is db's sum.
type verifier struct {
	r         io.Reader
	name      string
	whole, db hash.Hash
	tail      []byte
	n         int64
}

func (v *verifier) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	if n > 0 {
		v.whole.Write(p[:n])
		v.n += int64(n)
		v.tail = append(v.tail, p[:n]...)
		if over := len(v.tail) - sha256.Size; over > 0 {
			v.db.Write(v.tail[:over])
			v.tail = append(v.tail[:0], v.tail[over:]...)
		}
	}
	if err == io.EOF {
		switch {
		case v.n <= sha256.Size:
			return n, fmt.Errorf("%s: %d bytes, too short to be an etcd snapshot", v.name, v.n)
		case !bytes.Equal(v.db.Sum(nil), v.tail):
			return n, errors.New(v.name + ": its SHA-256 trailer does not match its content (a damaged or partial copy)")
		}
	}
	return n, err
}
