package pxe

import (
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
}

func (c *configs) get(name string) ([]byte, error) {
	p := filepath.Join(c.dir, name+".ign")
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	f, ok := c.m[name]
	c.mu.Unlock()
	if ok && f.mod.Equal(st.ModTime()) && f.size == st.Size() {
		return f.data, nil
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]cachedFile{}
	}
	c.m[name] = cachedFile{mod: st.ModTime(), size: st.Size(), data: data}
	c.mu.Unlock()
	return data, nil
}
