package redisstore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// SealingKeyEnv names the environment variable [New] reads when
// Options.Sealer is nil: one or more base64-encoded 32-byte keys separated
// by commas. The first key seals; every key opens, so a key is rotated in
// two phases (see the package doc): list the new key second on every
// replica, then promote it to first, and keep the old one listed until
// every value sealed with it has been rewritten (tokens are rewritten at
// each refresh; an agent identity only when it is provisioned again).
const SealingKeyEnv = "AGENTAUTH_REDIS_SEALING_KEY"

// SealingKeySize is the length of a sealing key: AES-256.
const SealingKeySize = 32

// ErrNoSealingKey is returned when a secret (a token set, an agent
// identity) would be stored or read without a sealing key: Redis never
// holds a credential in the clear.
var ErrNoSealingKey = errors.New("redisstore: no sealing key configured (set Options.Sealer or " + SealingKeyEnv + "); refusing to store secrets in Redis")

// ErrUnknownSealingKey is returned when a sealed value names a key that is
// not among the configured ones: the value was sealed by a replica
// configured with another key, or the key was dropped from the list before
// every value sealed with it was rewritten.
var ErrUnknownSealingKey = errors.New("redisstore: the value was sealed with a key that is not configured")

// ErrSealedValueInvalid is returned when a sealed value does not open with
// the key it names: it was altered, is not a sealed value at all, or was
// copied from another Redis key (the key name is authenticated with it).
var ErrSealedValueInvalid = errors.New("redisstore: the sealed value does not authenticate (altered, corrupted, or moved from another key)")

// sealVersion starts every sealed value; a later format would use another.
const sealVersion = 1

const (
	keyIDSize = 8
	nonceSize = 12
	// sealOverhead is version, key id, nonce and GCM tag.
	sealOverhead = 1 + keyIDSize + nonceSize + 16
)

// Sealer encrypts the secrets a [Store] keeps in Redis with AES-256-GCM.
// The first key seals; all keys open, chosen by the key id each sealed value
// carries (the first 8 bytes of a SHA-256 of the key, which reveals nothing
// usable about it). The Redis key name is the associated data, so a value
// copied to another key does not open. A Sealer is safe for concurrent
// use and never prints its keys.
type Sealer struct {
	keys []sealKey
	rand io.Reader
}

type sealKey struct {
	id   [keyIDSize]byte
	aead cipher.AEAD
}

// NewSealer returns a Sealer over keys, each [SealingKeySize] bytes; the
// first seals. The keys are copied.
func NewSealer(keys ...[]byte) (*Sealer, error) {
	if len(keys) == 0 {
		return nil, ErrNoSealingKey
	}
	s := &Sealer{rand: rand.Reader}
	seen := map[[keyIDSize]byte]bool{}
	for i, k := range keys {
		if len(k) != SealingKeySize {
			return nil, fmt.Errorf("redisstore: sealing key %d has %d bytes, want %d", i, len(k), SealingKeySize)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("redisstore: sealing key %d: %w", i, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("redisstore: sealing key %d: %w", i, err)
		}
		sk := sealKey{id: keyID(k), aead: aead}
		if seen[sk.id] {
			return nil, fmt.Errorf("redisstore: sealing key %d is listed twice", i)
		}
		seen[sk.id] = true
		s.keys = append(s.keys, sk)
	}
	return s, nil
}

// ParseSealingKeys returns a Sealer over comma-separated base64 keys (standard
// or URL alphabet, padded or not), the format of [SealingKeyEnv]. The first
// key seals. Errors never echo the text.
func ParseSealingKeys(text string) (*Sealer, error) {
	var keys [][]byte
	for i, part := range strings.Split(text, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, err := decodeKey(part)
		if err != nil {
			return nil, fmt.Errorf("redisstore: sealing key %d is not base64 of %d bytes", i, SealingKeySize)
		}
		keys = append(keys, k)
	}
	return NewSealer(keys...)
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil {
			return k, nil
		}
	}
	return nil, errors.New("not base64")
}

// keyID names a key without revealing it.
func keyID(k []byte) [keyIDSize]byte {
	sum := sha256.Sum256(append([]byte("agentauth/redisstore sealing key id\x00"), k...))
	var id [keyIDSize]byte
	copy(id[:], sum[:])
	return id
}

// KeyID returns the hex id of the sealing key, the one new values carry.
func (s *Sealer) KeyID() string { return hex.EncodeToString(s.keys[0].id[:]) }

// String describes the Sealer without its keys.
func (s *Sealer) String() string {
	return fmt.Sprintf("redisstore.Sealer{keys:%d sealing:%s}", len(s.keys), s.KeyID())
}

// GoString is [Sealer.String].
func (s *Sealer) GoString() string { return s.String() }

func aad(redisKey string) []byte {
	return append([]byte("agentauth/redisstore v1\x00"), redisKey...)
}

// seal encrypts plaintext for redisKey with the first key.
func (s *Sealer) seal(redisKey string, plaintext []byte) ([]byte, error) {
	k := s.keys[0]
	out := make([]byte, 1+keyIDSize+nonceSize, sealOverhead+len(plaintext))
	out[0] = sealVersion
	copy(out[1:], k.id[:])
	nonce := out[1+keyIDSize:]
	if _, err := io.ReadFull(s.rand, nonce); err != nil {
		return nil, fmt.Errorf("redisstore: sealing nonce: %w", err)
	}
	return k.aead.Seal(out, nonce, plaintext, aad(redisKey)), nil
}

// open decrypts a value sealed for redisKey with any configured key.
func (s *Sealer) open(redisKey string, sealed []byte) ([]byte, error) {
	if len(sealed) < sealOverhead || sealed[0] != sealVersion {
		return nil, ErrSealedValueInvalid
	}
	var id [keyIDSize]byte
	copy(id[:], sealed[1:])
	for _, k := range s.keys {
		if k.id != id {
			continue
		}
		nonce := sealed[1+keyIDSize : 1+keyIDSize+nonceSize]
		pt, err := k.aead.Open(nil, nonce, sealed[1+keyIDSize+nonceSize:], aad(redisKey))
		if err != nil {
			return nil, ErrSealedValueInvalid
		}
		return pt, nil
	}
	return nil, fmt.Errorf("%w (key id %s; configured: %s)", ErrUnknownSealingKey, hex.EncodeToString(id[:]), s.keyIDs())
}

func (s *Sealer) keyIDs() string {
	ids := make([]string, len(s.keys))
	for i, k := range s.keys {
		ids[i] = hex.EncodeToString(k.id[:])
	}
	return strings.Join(ids, ",")
}
