package pki

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"time"
)

// Token is a kubeadm-format bootstrap token: <id>.<secret>, [a-z0-9]{6}.[a-z0-9]{16}.
type Token struct {
	ID          string    `json:"id"`
	Secret      string    `json:"secret"`
	Expires     time.Time `json:"expires"`
	Description string    `json:"description"`
}

// TokenFile is where the bundle keeps the bootstrap token.
const TokenFile = "bootstrap-token.json"

// TokenRegexp is the format the API server accepts (k8s.io/cluster-bootstrap/token/api).
var TokenRegexp = regexp.MustCompile(`^([a-z0-9]{6})\.([a-z0-9]{16})$`)

// String is the token as a client presents it.
func (t Token) String() string { return t.ID + "." + t.Secret }

const tokenAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

func randomString(n int) (string, error) {
	b := make([]byte, n)
	max := big.NewInt(int64(len(tokenAlphabet)))
	for i := range b {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", err
		}
		b[i] = tokenAlphabet[v.Int64()]
	}
	return string(b), nil
}

// NewToken mints a bootstrap token that expires ttl after now.
func NewToken(now time.Time, ttl time.Duration) (Token, error) {
	id, err := randomString(6)
	if err != nil {
		return Token{}, err
	}
	secret, err := randomString(16)
	if err != nil {
		return Token{}, err
	}
	return Token{ID: id, Secret: secret, Expires: now.Add(ttl).UTC().Truncate(time.Second),
		Description: "kubeup node bootstrap token"}, nil
}

func (t Token) encode() ([]byte, error) {
	b, err := json.MarshalIndent(t, "", "  ")
	return append(b, '\n'), err
}

func decodeToken(data []byte) (Token, error) {
	var t Token
	if err := json.Unmarshal(data, &t); err != nil {
		return t, err
	}
	if !TokenRegexp.MatchString(t.String()) {
		return t, fmt.Errorf("token %q is not in kubeadm format", t.ID)
	}
	return t, nil
}
