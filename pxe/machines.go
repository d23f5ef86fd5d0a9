package pxe

import (
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"kubeup.dev/kubeup/internal/cluster"
)

// Machine is what the server knows of one machine of the cluster config.
type Machine struct {
	Name, Role string
}

// table indexes the cluster config's machines by every key iPXE can send.
type table struct {
	os                              string // the cluster's os
	byMAC, byUUID, byName, bySerial map[string]Machine
}

// Query is what a booting machine says about itself (iPXE's ${mac:hexhyp}, ${uuid},
// ${hostname}, ${serial}).
type Query struct {
	MAC, UUID, Hostname, Serial string
}

func (q Query) String() string {
	return fmt.Sprintf("mac=%s uuid=%s hostname=%s serial=%s", q.MAC, q.UUID, q.Hostname, q.Serial)
}

// normMAC writes any notation (52-54-00-..., 52:54:00:...) one way; "" if it is not a MAC.
func normMAC(s string) string {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return ""
	}
	return hw.String()
}

func newTable(cfg *cluster.Config) *table {
	t := &table{byMAC: map[string]Machine{}, byUUID: map[string]Machine{}, byName: map[string]Machine{}, bySerial: map[string]Machine{}, os: cfg.OS}
	for _, m := range cfg.Machines {
		mm := Machine{Name: m.Name, Role: m.Role}
		t.byName[m.Name] = mm
		if mac := normMAC(m.MAC); mac != "" {
			t.byMAC[mac] = mm
		}
		if m.UUID != "" {
			t.byUUID[strings.ToLower(m.UUID)] = mm
		}
		if m.Serial != "" {
			t.bySerial[m.Serial] = mm
		}
	}
	return t
}

// find picks the machine a query names: by MAC first (the most specific thing the network
// shows), then UUID, hostname, serial.
func (t *table) find(q Query) (Machine, bool) {
	if m, ok := t.byMAC[normMAC(q.MAC)]; ok && q.MAC != "" {
		return m, true
	}
	if m, ok := t.byUUID[strings.ToLower(q.UUID)]; ok && q.UUID != "" {
		return m, true
	}
	if m, ok := t.byName[q.Hostname]; ok && q.Hostname != "" {
		return m, true
	}
	if m, ok := t.bySerial[q.Serial]; ok && q.Serial != "" {
		return m, true
	}
	return Machine{}, false
}

// configFile reloads the cluster config when the file changes, so machines can be added while
// the server runs. A config that no longer loads keeps the last good table and says why.
type configFile struct {
	path string
	mu   sync.Mutex
	mod  time.Time
	size int64
	t    *table
	err  error
}

func (c *configFile) table() (*table, error) {
	st, err := os.Stat(c.path)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if c.t != nil {
			return c.t, nil
		}
		return nil, err
	}
	if c.t != nil && st.ModTime().Equal(c.mod) && st.Size() == c.size {
		return c.t, nil
	}
	cfg, err := cluster.Load(c.path)
	if err != nil {
		c.err = err
		if c.t != nil {
			return c.t, nil
		}
		return nil, err
	}
	c.t, c.mod, c.size, c.err = newTable(cfg), st.ModTime(), st.Size(), nil
	return c.t, nil
}
