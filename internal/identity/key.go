package identity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"filippo.io/edwards25519"
)

// ErrInvalidKey is wrapped by every error about malformed key material. The
// errors never contain the key bytes.
var ErrInvalidKey = errors.New("identity: invalid agent identity key")

var oidEd25519 = asn1.ObjectIdentifier{1, 3, 101, 112}

// PrivateKey is an Agent Identity Ed25519 signing key.
//
// The zero value is not usable; obtain keys from [ParsePrivateKey],
// [NewPrivateKeyFromSeed] or [GenerateKey]. A PrivateKey is immutable and safe
// for concurrent use. It never prints its secret: every fmt verb and
// log/slog show only the public key.
type PrivateKey struct {
	priv ed25519.PrivateKey
	ssh  string
}

// NewPrivateKeyFromSeed returns the key for a 32-byte Ed25519 seed.
func NewPrivateKeyFromSeed(seed []byte) (*PrivateKey, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%w: seed is %d bytes, want %d", ErrInvalidKey, len(seed), ed25519.SeedSize)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	return &PrivateKey{priv: priv, ssh: FormatSSHPublicKey(priv.Public().(ed25519.PublicKey))}, nil
}

// GenerateKey creates a new key from r, or from crypto/rand when r is nil.
func GenerateKey(r io.Reader) (*PrivateKey, error) {
	if r == nil {
		r = rand.Reader
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(r, seed); err != nil {
		return nil, fmt.Errorf("identity: generating key: %w", err)
	}
	return NewPrivateKeyFromSeed(seed)
}

// oneAsymmetricKey is the RFC 5958 structure; PublicKey is present only in
// the v2 form (version 1) that ed25519-dalek and therefore Codex emit.
type oneAsymmetricKey struct {
	Version    int
	Algorithm  pkix.AlgorithmIdentifier
	PrivateKey []byte
	Attributes asn1.RawValue  `asn1:"optional,tag:0"`
	PublicKey  asn1.BitString `asn1:"optional,tag:1"`
}

// ParsePrivateKey parses the stored form of an agent private key: standard,
// padded base64 of a PKCS#8 DER document, either v1 (seed only) or v2 (seed
// and public key). A v2 document whose public key does not belong to the
// seed is rejected.
func ParsePrivateKey(b64 string) (*PrivateKey, error) {
	der, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("%w: private key is not valid base64", ErrInvalidKey)
	}
	return parsePKCS8(der)
}

// parsePKCS8 parses a DER PKCS#8 Ed25519 private key (v1 or v2).
func parsePKCS8(der []byte) (*PrivateKey, error) {
	var doc oneAsymmetricKey
	rest, err := asn1.Unmarshal(der, &doc)
	if err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("%w: private key is not valid PKCS#8", ErrInvalidKey)
	}
	if doc.Version != 0 && doc.Version != 1 {
		return nil, fmt.Errorf("%w: unsupported PKCS#8 version %d", ErrInvalidKey, doc.Version)
	}
	if !doc.Algorithm.Algorithm.Equal(oidEd25519) {
		return nil, fmt.Errorf("%w: private key is not Ed25519", ErrInvalidKey)
	}
	// x509 validates the inner CurvePrivateKey encoding the same way the
	// standard library does for every other caller.
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: private key is not valid PKCS#8", ErrInvalidKey)
	}
	priv, ok := parsed.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: private key is not Ed25519", ErrInvalidKey)
	}
	k, err := NewPrivateKeyFromSeed(priv.Seed())
	if err != nil {
		return nil, err
	}
	if len(doc.PublicKey.Bytes) > 0 || doc.PublicKey.BitLength > 0 {
		if doc.PublicKey.BitLength != 8*ed25519.PublicKeySize ||
			!bytes.Equal(doc.PublicKey.Bytes, k.PublicKey()) {
			return nil, fmt.Errorf("%w: PKCS#8 public key does not match the private key", ErrInvalidKey)
		}
	}
	return k, nil
}

// MarshalPKCS8 returns the PKCS#8 v2 DER form (seed and public key), byte
// for byte what the Codex CLI stores.
func (k *PrivateKey) MarshalPKCS8() []byte {
	inner, err := asn1.Marshal(k.priv.Seed())
	if err != nil {
		panic("identity: marshal seed: " + err.Error()) // cannot happen for a byte slice
	}
	der, err := asn1.Marshal(oneAsymmetricKey{
		Version:    1,
		Algorithm:  pkix.AlgorithmIdentifier{Algorithm: oidEd25519},
		PrivateKey: inner,
		PublicKey:  asn1.BitString{Bytes: k.PublicKey(), BitLength: 8 * ed25519.PublicKeySize},
	})
	if err != nil {
		panic("identity: marshal PKCS#8: " + err.Error())
	}
	return der
}

// MarshalPrivateKey returns the stored form of the key: standard padded
// base64 of [PrivateKey.MarshalPKCS8]. The result is a secret.
func (k *PrivateKey) MarshalPrivateKey() string {
	return base64.StdEncoding.EncodeToString(k.MarshalPKCS8())
}

// PublicKey returns the Ed25519 public key.
func (k *PrivateKey) PublicKey() ed25519.PublicKey {
	return k.priv.Public().(ed25519.PublicKey)
}

// SSHPublicKey returns the public key in OpenSSH form, "ssh-ed25519 AAAA...".
func (k *PrivateKey) SSHPublicKey() string { return k.ssh }

// Sign signs msg with Ed25519.
func (k *PrivateKey) Sign(msg []byte) []byte { return ed25519.Sign(k.priv, msg) }

// Equal reports whether k and other hold the same key.
func (k *PrivateKey) Equal(other *PrivateKey) bool {
	return k != nil && other != nil && k.priv.Equal(other.priv)
}

// x25519Secret derives the X25519 secret that sealed task ids are addressed
// to: the clamped first half of SHA-512(seed), i.e. the Ed25519 scalar
// (libsodium crypto_sign_ed25519_sk_to_curve25519).
func (k *PrivateKey) x25519Secret() *[32]byte {
	h := sha512.Sum512(k.priv.Seed())
	var s [32]byte
	copy(s[:], h[:32])
	s[0] &= 248
	s[31] &= 127
	s[31] |= 64
	return &s
}

// String implements fmt.Stringer without revealing the secret.
func (k *PrivateKey) String() string {
	if k == nil {
		return "identity.PrivateKey(nil)"
	}
	return "identity.PrivateKey(" + k.ssh + ", private part redacted)"
}

// GoString implements fmt.GoStringer without revealing the secret.
func (k *PrivateKey) GoString() string { return k.String() }

// Format makes every fmt verb, including %#v and %+v, print [PrivateKey.String].
func (k *PrivateKey) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }

// LogValue implements slog.LogValuer without revealing the secret.
func (k *PrivateKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// MarshalJSON encodes the key as a redacted string, so any struct holding
// a *PrivateKey is safe to marshal without a method of its own.
func (k *PrivateKey) MarshalJSON() ([]byte, error) { return json.Marshal(k.String()) }

const sshKeyType = "ssh-ed25519"

// FormatSSHPublicKey returns pub in OpenSSH authorized-key form.
func FormatSSHPublicKey(pub ed25519.PublicKey) string {
	blob := make([]byte, 0, 4+len(sshKeyType)+4+len(pub))
	blob = binary.BigEndian.AppendUint32(blob, uint32(len(sshKeyType)))
	blob = append(blob, sshKeyType...)
	blob = binary.BigEndian.AppendUint32(blob, uint32(len(pub)))
	blob = append(blob, pub...)
	return sshKeyType + " " + base64.StdEncoding.EncodeToString(blob)
}

// ParseSSHPublicKey parses "ssh-ed25519 <base64>" (an optional trailing
// comment is ignored) into an Ed25519 public key.
func ParseSSHPublicKey(s string) (ed25519.PublicKey, error) {
	fields := strings.Fields(s)
	if len(fields) < 2 || fields[0] != sshKeyType {
		return nil, fmt.Errorf("%w: public key is not in ssh-ed25519 form", ErrInvalidKey)
	}
	blob, err := base64.StdEncoding.Strict().DecodeString(fields[1])
	if err != nil {
		return nil, fmt.Errorf("%w: ssh public key is not valid base64", ErrInvalidKey)
	}
	want := FormatSSHPublicKey(make(ed25519.PublicKey, ed25519.PublicKeySize))
	wantBlob, _ := base64.StdEncoding.DecodeString(strings.Fields(want)[1])
	prefix := wantBlob[:len(wantBlob)-ed25519.PublicKeySize]
	if len(blob) != len(wantBlob) || !bytes.Equal(blob[:len(prefix)], prefix) {
		return nil, fmt.Errorf("%w: ssh public key blob is malformed", ErrInvalidKey)
	}
	pub := ed25519.PublicKey(bytes.Clone(blob[len(prefix):]))
	if _, err := new(edwards25519.Point).SetBytes(pub); err != nil {
		return nil, fmt.Errorf("%w: ssh public key is not a valid Ed25519 point", ErrInvalidKey)
	}
	return pub, nil
}
