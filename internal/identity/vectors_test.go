package identity

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/curve25519"
)

// The test vectors of docs/protocol.md#test-vectors: seed 0x07×32, runtime
// agent-123, task task-123, second 2026-04-23T00:00:00Z.
const (
	vecPKCS8v2   = "MFECAQEwBQYDK2VwBCIEIAcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHgSEA6kpsY+KcUgq+9VB7Ey7F+ZVHdq6+vnuSQh7qaRRG0iw="
	vecSSH       = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOpKbGPinFIKvvVQexMuxfmVR3auvr57kkIe6mkURtIs"
	vecHeader    = "AgentAssertion eyJhZ2VudF9ydW50aW1lX2lkIjoiYWdlbnQtMTIzIiwic2lnbmF0dXJlIjoiK0dsck9LUi9GSHh4aGttT2hnNWhqMTkrNU83aE0yTWd4TnJnVGZSZ0lYOENZbjEzQUpFU3Y1eVhrd3dVQzlqRGQ4Y3ZRUk11MWY4UHliZjYvTEJnRHc9PSIsInRhc2tfaWQiOiJ0YXNrLTEyMyIsInRpbWVzdGFtcCI6IjIwMjYtMDQtMjNUMDA6MDA6MDBaIn0"
	vecRegSig    = "3HXOrVnOX7USh8WvXXCZnUyrvwUdaWFME6ZQv+foYCmk7QXzPpNPLR/Qe26X9XkHB2SGAZjnOifmm39FXjdACA=="
	vecX25519Sec = "28ad39fefd7fa3e200a9c626eef599e61a2d055c48a8288a4e7e4c4bca392878"
	vecX25519Pub = "761d88ec830413919dfe9d4d1d56f17e653c8c994082df5b137b90a0ae6edf74"
	vecSealed    = "pOCSkrZRwni5dyxWn1+puxPZBrRqtoyd+dwrRAn4oglMdr+mQMCLQ50FQpfP90abEU6zewaFn3g="
	vecRuntime   = "agent-123"
	vecTask      = "task-123"
)

var vecTime = time.Date(2026, 4, 23, 0, 0, 0, 0, time.UTC)

func vecSeed() []byte { return bytes.Repeat([]byte{7}, 32) }

func TestVectorKeyRoundTrip(t *testing.T) {
	k, err := ParsePrivateKey(vecPKCS8v2)
	if err != nil {
		t.Fatal(err)
	}
	fromSeed, err := NewPrivateKeyFromSeed(vecSeed())
	if err != nil {
		t.Fatal(err)
	}
	if !k.Equal(fromSeed) {
		t.Fatal("v2 key does not hold the seed 0x07 x 32")
	}
	if got := fromSeed.MarshalPrivateKey(); got != vecPKCS8v2 {
		t.Errorf("MarshalPrivateKey = %s, want %s", got, vecPKCS8v2)
	}
	if got := k.SSHPublicKey(); got != vecSSH {
		t.Errorf("SSHPublicKey = %s, want %s", got, vecSSH)
	}
	pub, err := ParseSSHPublicKey(vecSSH)
	if err != nil || !bytes.Equal(pub, k.PublicKey()) {
		t.Errorf("ParseSSHPublicKey = %x, %v", pub, err)
	}
}

func TestVectorV1KeyOfSameSeed(t *testing.T) {
	// v1 = the v2 document without the [1] public key, version 0. Built by
	// hand from the DER of the vector so it does not depend on our marshaller.
	v2, _ := base64.StdEncoding.DecodeString(vecPKCS8v2)
	body := append([]byte{0x02, 0x01, 0x00}, v2[5:5+7+36]...) // version 0, AlgorithmIdentifier, OCTET STRING
	v1 := append([]byte{0x30, byte(len(body))}, body...)
	if len(v1) != 48 {
		t.Fatalf("v1 DER is %d bytes, want 48", len(v1))
	}
	k, err := ParsePrivateKey(base64.StdEncoding.EncodeToString(v1))
	if err != nil {
		t.Fatal(err)
	}
	if k.SSHPublicKey() != vecSSH {
		t.Errorf("v1 key public = %s", k.SSHPublicKey())
	}
}

func TestVectorV2MismatchedPublicKeyRejected(t *testing.T) {
	der, _ := base64.StdEncoding.DecodeString(vecPKCS8v2)
	der[len(der)-1] ^= 1
	if _, err := ParsePrivateKey(base64.StdEncoding.EncodeToString(der)); err == nil {
		t.Fatal("v2 key with a public key of another seed was accepted")
	}
}

func TestVectorAssertionHeader(t *testing.T) {
	k, _ := ParsePrivateKey(vecPKCS8v2)
	got, err := SignAssertion(k, vecRuntime, vecTask, vecTime.Add(999*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if got != vecHeader {
		t.Errorf("header =\n%s\nwant\n%s", got, vecHeader)
	}
	a, err := ParseAssertion(got)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Verify(k.PublicKey()); err != nil {
		t.Fatal(err)
	}
}

func TestVectorRegistrationSignature(t *testing.T) {
	k, _ := ParsePrivateKey(vecPKCS8v2)
	sig, ts := RegistrationSignature(k, vecRuntime, vecTime)
	if sig != vecRegSig || ts != "2026-04-23T00:00:00Z" {
		t.Errorf("RegistrationSignature = %s %s", sig, ts)
	}
	if err := VerifyRegistrationSignature(k.PublicKey(), vecRuntime, ts, sig); err != nil {
		t.Fatal(err)
	}
}

func TestVectorX25519AndSealedBox(t *testing.T) {
	k, _ := ParsePrivateKey(vecPKCS8v2)
	if got := hex.EncodeToString(k.x25519Secret()[:]); got != vecX25519Sec {
		t.Errorf("x25519 secret = %s", got)
	}
	pub, err := x25519PublicKey(k.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(pub[:]); got != vecX25519Pub {
		t.Errorf("x25519 public = %s", got)
	}
	// The secret and the converted public key are one key pair.
	derived, _ := curve25519.X25519(k.x25519Secret()[:], curve25519.Basepoint)
	if !bytes.Equal(derived, pub[:]) {
		t.Error("X25519(secret, 9) differs from the Montgomery form of the Ed25519 key")
	}
	sealed, err := SealTaskID(k.PublicKey(), vecTask, bytes.NewReader(bytes.Repeat([]byte{1}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	if sealed != vecSealed {
		t.Errorf("sealed = %s, want %s", sealed, vecSealed)
	}
	plain, err := k.OpenTaskID(vecSealed)
	if err != nil || plain != vecTask {
		t.Errorf("OpenTaskID = %q, %v", plain, err)
	}
}

func TestKeyNeverPrintsSecret(t *testing.T) {
	k, _ := ParsePrivateKey(vecPKCS8v2)
	secretB64 := k.MarshalPrivateKey()
	seedHex := strings.Repeat("07", 32)
	for _, s := range fmtAll(k) {
		if strings.Contains(s, secretB64) || strings.Contains(s, seedHex) || strings.Contains(s, "7 7 7 7") {
			t.Errorf("formatted key leaks its secret: %s", s)
		}
	}
}

func TestRecordNeverPrintsKey(t *testing.T) {
	rec := Record{AgentRuntimeID: vecRuntime, AgentPrivateKey: vecPKCS8v2, AccountID: "acct"}
	outs := append(fmtAll(rec), fmtAll(&rec)...)
	outs = append(outs, fmtAll([]Record{rec})...)
	outs = append(outs, fmtAll([]*Record{&rec})...) // a nested pointer under %s is fmt's bad-verb path
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "records", []Record{rec}, "map", map[string]Record{"a": rec})
	outs = append(outs, buf.String())
	// %x prints the record's plain fields in hex (a Record has no Format
	// method of its own; its key, a Secret, prints redacted in every verb).
	keyHex, runtimeHex := hex.EncodeToString([]byte(vecPKCS8v2))[:32], hex.EncodeToString([]byte(vecRuntime))
	for _, s := range outs {
		if strings.Contains(s, vecPKCS8v2) || strings.Contains(s, "BwcHBwcH") || strings.Contains(s, keyHex) {
			t.Errorf("record output leaks the private key: %s", s)
		}
		if !strings.Contains(s, vecRuntime) && !strings.Contains(s, runtimeHex) {
			t.Errorf("record output lost the runtime id: %s", s)
		}
	}
}

func TestParseAssertionRejectsRepeatedMember(t *testing.T) {
	env := `{"agent_runtime_id":"agent-123","signature":"x","task_id":"task-evil","task_id":"task-123","timestamp":"2026-04-23T00:00:00Z"}`
	h := AssertionScheme + " " + base64.RawURLEncoding.EncodeToString([]byte(env))
	if _, err := ParseAssertion(h); !errors.Is(err, ErrInvalidAssertion) {
		t.Fatalf("repeated task_id accepted: %v", err)
	}
	trailing := `{"agent_runtime_id":"a","signature":"s","task_id":"t","timestamp":"x"} {}`
	h = AssertionScheme + " " + base64.RawURLEncoding.EncodeToString([]byte(trailing))
	if _, err := ParseAssertion(h); !errors.Is(err, ErrInvalidAssertion) {
		t.Fatalf("trailing data accepted: %v", err)
	}
}

// TestAssertionEnvelopeEscaping pins the envelope bytes for ids that Go's
// encoding/json would write differently from serde_json: no HTML escaping,
// literal U+2028/U+2029 and non-ASCII, short escapes for \n \t and
// lowercase \u00xx for other controls, compact, keys in the order of the AgentAssertion envelope
// (docs/protocol.md#agentassertion-header).
func TestAssertionEnvelopeEscaping(t *testing.T) {
	k, _ := ParsePrivateKey(vecPKCS8v2)
	runtimeID := `rt<script>&"quoted"\back`
	taskID := "tâsk-ü-日本\u2028\u2029\n\t\x01\x1f-🙂"
	header, err := SignAssertion(k, runtimeID, taskID, vecTime)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(header, "AgentAssertion "))
	if err != nil {
		t.Fatal(err)
	}
	a, err := ParseAssertion(header)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"agent_runtime_id":"rt<script>&\"quoted\"\\back","signature":"` + a.Signature.Reveal() +
		`","task_id":"tâsk-ü-日本` + "\u2028\u2029" + `\n\t\u0001\u001f-🙂","timestamp":"2026-04-23T00:00:00Z"}`
	if string(raw) != want {
		t.Fatalf("envelope =\n%s\nwant\n%s", raw, want)
	}
	if a.AgentRuntimeID != runtimeID || a.TaskID != taskID {
		t.Fatalf("round trip changed ids: %q %q", a.AgentRuntimeID, a.TaskID)
	}
	if err := a.Verify(k.PublicKey()); err != nil {
		t.Fatal(err)
	}
	if _, err := SignAssertion(k, "rt", "bad\xff", vecTime); !errors.Is(err, ErrInvalidAssertion) {
		t.Fatalf("invalid UTF-8 id accepted: %v", err)
	}
}
