package pxe

import (
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"os"
	"sync"
	"time"

	"kubeup.dev/kubeup/internal/fsutil"
)

// grant is one boot's permission to fetch one machine's real config.
type grant struct {
	machine string
	key     string // one outstanding grant per key: the machine, or an unknown machine's MAC
	name    string // the config file's name (<name>.ign)
	config  []byte // the bytes the pointer's hash pins
	sum     [sha512.Size]byte
	ip      netip.Addr
	expires time.Time
	used    bool
	// anonymous: an unknown machine given the default role.
	anonymous bool
}

// tokens holds the outstanding grants: one per machine (a new script revokes the last one),
// so memory follows the number of machines, not of requests.
type tokens struct {
	mu    sync.Mutex
	byTok map[string]*grant
	byKey map[string]string
	// anonymous counts the grants of unknown machines.
	anonymous int
	// dirty says the table changed since it was last saved.
	dirty bool
}

// maxAnonymous bounds the grants of unknown machines (default role), whose keys an attacker
// could invent.
const maxAnonymous = 4096

func newTokens() *tokens {
	return &tokens{byTok: map[string]*grant{}, byKey: map[string]string{}}
}

// mint records a grant and returns its token: 128 random bits, hex.
func (t *tokens) mint(g *grant) string {
	var b [16]byte
	rand.Read(b[:])
	tok := hex.EncodeToString(b[:])
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, ok := t.byKey[g.key]; ok {
		t.remove(old)
	}
	if g.anonymous && t.anonymous >= maxAnonymous {
		for old, o := range t.byTok { // the oldest are as good as any: they expire first
			if o.anonymous {
				t.remove(old)
				break
			}
		}
	}
	t.byTok[tok] = g
	t.byKey[g.key] = tok
	if g.anonymous {
		t.anonymous++
	}
	t.dirty = true
	return tok
}

func (t *tokens) remove(tok string) {
	g := t.byTok[tok]
	delete(t.byTok, tok)
	delete(t.byKey, g.key)
	if g.anonymous {
		t.anonymous--
	}
}

// valid returns the grant of tok if it is known, unexpired and, when singleUse, unused; else
// why not. The caller holds mu.
func (t *tokens) valid(tok string, now time.Time, singleUse bool) (*grant, string) {
	g, ok := t.byTok[tok]
	switch {
	case !ok:
		return nil, "unknown token"
	case now.After(g.expires):
		return nil, "token expired"
	case g.used && singleUse:
		return nil, "token already used"
	}
	return g, ""
}

// lookup returns a grant that is still good for its pointer.
func (t *tokens) lookup(tok string, now time.Time, singleUse bool) (*grant, string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.valid(tok, now, singleUse)
}

// redeem hands out a grant's config: once when singleUse, and only to ip when the grant is
// bound to an address.
func (t *tokens) redeem(tok string, ip netip.Addr, now time.Time, singleUse bool) (*grant, string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	g, why := t.valid(tok, now, singleUse)
	if g == nil {
		return nil, why
	}
	if g.ip.IsValid() && g.ip != ip {
		return nil, "token minted for " + g.ip.String()
	}
	g.used = true
	t.dirty = true
	return g, ""
}

func (t *tokens) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byTok)
}

// savedGrant is a grant as the state file keeps it: the config by name and hash, not its bytes.
type savedGrant struct {
	Machine   string    `json:"machine"`
	Key       string    `json:"key"`
	Config    string    `json:"config"`
	SHA512    string    `json:"sha512"`
	IP        string    `json:"ip,omitempty"`
	Expires   time.Time `json:"expires"`
	Used      bool      `json:"used,omitempty"`
	Anonymous bool      `json:"anonymous,omitempty"`
}

// save writes the table to file (0600, atomic rename) if it changed: a restarted server still
// honours the tokens in the scripts and pointers machines already hold.
func (t *tokens) save(file string, now time.Time) error {
	t.mu.Lock()
	if !t.dirty {
		t.mu.Unlock()
		return nil
	}
	saved := map[string]savedGrant{}
	for tok, g := range t.byTok {
		if now.After(g.expires) {
			continue
		}
		sg := savedGrant{Machine: g.machine, Key: g.key, Config: g.name, SHA512: hex.EncodeToString(g.sum[:]), Expires: g.expires, Used: g.used, Anonymous: g.anonymous}
		if g.ip.IsValid() {
			sg.IP = g.ip.String()
		}
		saved[tok] = sg
	}
	t.dirty = false
	t.mu.Unlock()
	data, err := json.Marshal(saved)
	if err != nil {
		return err
	}
	return fsutil.ReplaceFile(file, data, 0o600)
}

// load reads a table save wrote. A grant whose config changed since (another hash) is dropped:
// the pointer the machine holds pins the old bytes, which no longer exist.
func (t *tokens) load(file string, now time.Time, read func(name string) ([]byte, error)) (dropped []string, err error) {
	data, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var saved map[string]savedGrant
	if err := json.Unmarshal(data, &saved); err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for tok, sg := range saved {
		if now.After(sg.Expires) {
			continue
		}
		raw, err := read(sg.Config)
		sum := sha512.Sum512(raw)
		if err != nil || hex.EncodeToString(sum[:]) != sg.SHA512 {
			dropped = append(dropped, sg.Machine)
			continue
		}
		g := &grant{machine: sg.Machine, key: sg.Key, name: sg.Config, config: raw, sum: sum, expires: sg.Expires, used: sg.Used, anonymous: sg.Anonymous}
		g.ip, _ = netip.ParseAddr(sg.IP)
		t.byTok[tok] = g
		t.byKey[g.key] = tok
		if g.anonymous {
			t.anonymous++
		}
	}
	return dropped, nil
}
