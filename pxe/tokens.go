package pxe

import (
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"sync"
	"time"
)

// grant is one boot's permission to fetch one machine's real config.
type grant struct {
	machine string
	key     string // one outstanding grant per key: the machine, or an unknown machine's MAC
	config  []byte // the bytes the pointer's hash pins
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

// lookup returns a grant that is still good for its pointer: known, not expired, not used.
func (t *tokens) lookup(tok string, now time.Time) (*grant, string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	g, ok := t.byTok[tok]
	switch {
	case !ok:
		return nil, "unknown token"
	case now.After(g.expires):
		return nil, "token expired"
	case g.used:
		return nil, "token already used"
	}
	return g, ""
}

// redeem hands out a grant's config: once when singleUse, and only to ip when the grant is
// bound to an address.
func (t *tokens) redeem(tok string, ip netip.Addr, now time.Time, singleUse bool) (*grant, string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	g, ok := t.byTok[tok]
	switch {
	case !ok:
		return nil, "unknown token"
	case now.After(g.expires):
		return nil, "token expired"
	case g.used && singleUse:
		return nil, "token already used"
	case g.ip.IsValid() && g.ip != ip:
		return nil, "token minted for " + g.ip.String()
	}
	g.used = true
	return g, ""
}

func (t *tokens) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byTok)
}
