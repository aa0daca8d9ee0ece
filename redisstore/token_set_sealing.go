package redisstore

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/agentauth/agentauth/transport"
)

// storedSet is the sealed form of a TokenSet.
type storedSet struct {
	IDToken      string    `json:"id_token"`
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token"`
	AccountID    string    `json:"account_id,omitempty"`
	LastRefresh  time.Time `json:"last_refresh"`
}

// setDigest identifies a set by its access and refresh tokens, the two
// that CompareAndSwap compares. A SHA-256 of high-entropy tokens reveals
// nothing about them.
func setDigest(ts *transport.TokenSet) string {
	h := sha256.New()
	h.Write([]byte("agentauth/redisstore token set\x00"))
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(ts.AccessToken)))
	h.Write(n[:])
	h.Write([]byte(ts.AccessToken))
	h.Write([]byte(ts.RefreshToken))
	return hex.EncodeToString(h.Sum(nil))
}

func (c *Coordinator) sealSet(ts *transport.TokenSet) (digest, sealed string, err error) {
	pt, err := json.Marshal(storedSet{IDToken: ts.IDToken, AccessToken: ts.AccessToken,
		RefreshToken: ts.RefreshToken, AccountID: ts.AccountID, LastRefresh: ts.LastRefresh})
	if err != nil {
		return "", "", fmt.Errorf("redisstore: encoding the token set: %w", err)
	}
	b, err := c.s.sealer.seal(c.keys.tokens, pt)
	if err != nil {
		return "", "", err
	}
	return setDigest(ts), string(b), nil
}

func (c *Coordinator) openSet(sealed string) (*transport.TokenSet, error) {
	pt, err := c.s.sealer.open(c.keys.tokens, []byte(sealed))
	if err != nil {
		return nil, fmt.Errorf("redisstore: opening the stored token set: %w", err)
	}
	var ss storedSet
	if err := json.Unmarshal(pt, &ss); err != nil {
		return nil, fmt.Errorf("redisstore: the stored token set is not a token set: %w", ErrSealedValueInvalid)
	}
	return &transport.TokenSet{IDToken: ss.IDToken, AccessToken: ss.AccessToken,
		RefreshToken: ss.RefreshToken, AccountID: ss.AccountID, LastRefresh: ss.LastRefresh}, nil
}

func copySet(ts *transport.TokenSet) *transport.TokenSet {
	if ts == nil {
		return nil
	}
	cp := *ts
	return &cp
}
