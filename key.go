package wirefleet

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
)

// KeyLen is the length in bytes of a WireGuard key (Curve25519 point or scalar, or PSK).
const KeyLen = 32

// Key is a WireGuard public, private or preshared key.
type Key [KeyLen]byte

// ParseKey decodes the standard base64 form of a key (44 characters, as `wg` prints).
// The error says what was wrong so that API facades can return it as is.
func ParseKey(s string) (Key, error) {
	var k Key
	if s == "" {
		return k, Errorf(KindInvalid, "key is empty")
	}
	if strings.TrimSpace(s) != s {
		return k, Errorf(KindInvalid, "key %q has leading or trailing whitespace", s)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return k, Errorf(KindInvalid, "key %q is not valid base64", s)
	}
	if len(b) != KeyLen {
		return k, Errorf(KindInvalid, "key %q decodes to %d bytes, want %d", s, len(b), KeyLen)
	}
	copy(k[:], b)
	return k, nil
}

// MustParseKey is ParseKey for constants in tests and examples; it panics on error.
func MustParseKey(s string) Key {
	k, err := ParseKey(s)
	if err != nil {
		panic(err)
	}
	return k
}

// String returns the standard base64 form.
func (k Key) String() string { return base64.StdEncoding.EncodeToString(k[:]) }

// IsZero reports whether k is all zeros (unset).
func (k Key) IsZero() bool { return k == Key{} }

// MarshalText implements encoding.TextMarshaler (JSON strings in base64).
func (k Key) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *Key) UnmarshalText(b []byte) error {
	p, err := ParseKey(string(b))
	if err != nil {
		return err
	}
	*k = p
	return nil
}

// GeneratePrivateKey returns a new random, clamped Curve25519 private key.
func GeneratePrivateKey() (Key, error) {
	var k Key
	if _, err := rand.Read(k[:]); err != nil {
		return k, fmt.Errorf("generate private key: %w", err)
	}
	k[0] &= 248
	k[31] = (k[31] & 127) | 64
	return k, nil
}

// GeneratePresharedKey returns 32 random bytes.
func GeneratePresharedKey() (Key, error) {
	var k Key
	if _, err := rand.Read(k[:]); err != nil {
		return k, fmt.Errorf("generate preshared key: %w", err)
	}
	return k, nil
}

// PublicKey derives the public key of a private key.
func (k Key) PublicKey() Key {
	var pub Key
	// X25519 clamps the scalar itself, so any 32 bytes give a valid public key; the
	// standard library keeps the root package free of third-party imports.
	priv, err := ecdh.X25519().NewPrivateKey(k[:])
	if err != nil {
		panic(fmt.Sprintf("wirefleet: derive public key: %v", err)) // only on a wrong length
	}
	copy(pub[:], priv.PublicKey().Bytes())
	return pub
}
