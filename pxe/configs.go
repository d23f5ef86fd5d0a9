package pxe

import (
	"crypto/sha512"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// configs reads rendered Ignition configs (<name>.ign) from ignition-gen's output directory,
// again whenever a file changes.
type configs struct {
	dir string
	mu  sync.Mutex
	m   map[string]cachedFile
}

type cachedFile struct {
	mod  time.Time
	size int64
	data []byte
	sum  [sha512.Size]byte // hashed once per version, not once per boot
}

// getSum reads a machine's config (cached until the file changes) and its SHA-512.
func (c *configs) getSum(name string) ([]byte, [sha512.Size]byte, error) {
	p := filepath.Join(c.dir, name+".ign")
	st, err := os.Stat(p)
	if err != nil {
		return nil, [sha512.Size]byte{}, err
	}
	c.mu.Lock()
	f, ok := c.m[name]
	c.mu.Unlock()
	if ok && f.mod.Equal(st.ModTime()) && f.size == st.Size() {
		return f.data, f.sum, nil
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, [sha512.Size]byte{}, err
	}
	f = cachedFile{mod: st.ModTime(), size: st.Size(), data: data, sum: sha512.Sum512(data)}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]cachedFile{}
	}
	c.m[name] = f
	c.mu.Unlock()
	return data, f.sum, nil
}
