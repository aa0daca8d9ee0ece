package identity

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"filippo.io/edwards25519"
	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/nacl/box"
)

// ErrSealedTaskID is wrapped by every failure to open an encrypted task id.
var ErrSealedTaskID = errors.New("identity: cannot open encrypted task id")

// x25519PublicKey converts an Ed25519 public key to the X25519 key that
// sealed task ids are addressed to (the Montgomery form of the point).
func x25519PublicKey(pub ed25519.PublicKey) (*[32]byte, error) {
	p, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: not a valid Ed25519 public key", ErrInvalidKey)
	}
	var out [32]byte
	copy(out[:], p.BytesMontgomery())
	return &out, nil
}

// SealTaskID encrypts taskID as a libsodium sealed box to the X25519 form of
// recipient and returns it in standard base64, as a registration server
// does. rand supplies the ephemeral key (crypto/rand when nil).
func SealTaskID(recipient ed25519.PublicKey, taskID string, rand io.Reader) (string, error) {
	pk, err := x25519PublicKey(recipient)
	if err != nil {
		return "", err
	}
	sealed, err := box.SealAnonymous(nil, []byte(taskID), pk, rand)
	if err != nil {
		return "", fmt.Errorf("identity: sealing task id: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sealed), nil
}

// OpenTaskID decrypts an encrypted task id (standard base64 of a sealed box
// addressed to k). The plaintext must be valid UTF-8.
func (k *PrivateKey) OpenTaskID(encrypted string) (string, error) {
	sealed, err := base64.StdEncoding.Strict().DecodeString(encrypted)
	if err != nil {
		return "", fmt.Errorf("%w: not valid base64", ErrSealedTaskID)
	}
	secret := k.x25519Secret()
	var public [32]byte
	pub, err := curve25519.X25519(secret[:], curve25519.Basepoint)
	if err != nil {
		return "", fmt.Errorf("%w: deriving X25519 key", ErrSealedTaskID)
	}
	copy(public[:], pub)
	plain, ok := box.OpenAnonymous(nil, sealed, &public, secret)
	if !ok {
		return "", fmt.Errorf("%w: decryption failed", ErrSealedTaskID)
	}
	if !utf8.Valid(plain) {
		return "", fmt.Errorf("%w: plaintext is not valid UTF-8", ErrSealedTaskID)
	}
	return string(plain), nil
}
