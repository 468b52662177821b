package wirefleet

import (
	"fmt"
	"log/slog"
)

// SecretKey holds a key the server must keep but never show: a network's WireGuard private
// key or a peer's preshared key. Every rendering of it (fmt verbs, JSON, slog) is redacted;
// the only way to read the key is the explicit Reveal method, so that a handler encoding a
// Network or Peer cannot leak it by accident. The zero value means "no key".
type SecretKey struct {
	key Key
	set bool
}

// NewSecretKey wraps k. A zero key is treated as unset.
func NewSecretKey(k Key) SecretKey { return SecretKey{key: k, set: !k.IsZero()} }

// IsSet reports whether a key is held.
func (s SecretKey) IsSet() bool { return s.set }

// Reveal returns the key in clear. Call it only where the key must leave the process on
// purpose: the store, the op log for privileged replication roles, the local device.
func (s SecretKey) Reveal() Key { return s.key }

// Ptr returns a pointer to the revealed key, or nil when unset (for optional wire fields).
func (s SecretKey) Ptr() *Key {
	if !s.set {
		return nil
	}
	k := s.key
	return &k
}

// SecretKeyFrom is the inverse of Ptr.
func SecretKeyFrom(k *Key) SecretKey {
	if k == nil {
		return SecretKey{}
	}
	return NewSecretKey(*k)
}

// String never shows the key.
func (s SecretKey) String() string {
	if !s.set {
		return "(none)"
	}
	return "(redacted)"
}

// Format makes every fmt verb (%v, %+v, %#v, %s, %x...) print the redacted form.
func (s SecretKey) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// LogValue redacts the key in log/slog output.
func (s SecretKey) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON never shows the key: null when unset, "(redacted)" otherwise. Encode
// Reveal() explicitly where the key must be transmitted.
func (s SecretKey) MarshalJSON() ([]byte, error) {
	if !s.set {
		return []byte("null"), nil
	}
	return []byte(`"(redacted)"`), nil
}

// Equal lets go-cmp compare secret keys without exporting their fields.
func (s SecretKey) Equal(o SecretKey) bool { return s == o }
