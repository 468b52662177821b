package wirefleet

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"time"
)

// Role is what a token (or mTLS identity) may do.
type Role string

// The roles.
const (
	RoleAdmin     Role = "admin"     // everything
	RoleOperator  Role = "operator"  // networks and peers, not tokens
	RoleViewer    Role = "viewer"    // read-only
	RoleGateway   Role = "gateway"   // read state and replication, push stats
	RoleFollower  Role = "follower"  // replication read
	RoleRegistrar Role = "registrar" // registration only
)

// Roles lists every role, for validation and for test matrices.
var Roles = []Role{RoleAdmin, RoleOperator, RoleViewer, RoleGateway, RoleFollower, RoleRegistrar}

// ParseRole parses a role name.
func ParseRole(s string) (Role, error) {
	r := Role(strings.TrimSpace(s))
	if slices.Contains(Roles, r) {
		return r, nil
	}
	return "", Errorf(KindInvalid, "role %q is invalid: use one of admin, operator, viewer, gateway, follower, registrar", s)
}

// TokenHash is the SHA-256 of a token secret; the secret itself is never stored.
type TokenHash [sha256.Size]byte

// HashTokenSecret returns the stored form of a secret.
func HashTokenSecret(secret string) TokenHash { return sha256.Sum256([]byte(secret)) }

// String is the hex form.
func (h TokenHash) String() string { return hex.EncodeToString(h[:]) }

// MarshalText implements encoding.TextMarshaler (hex).
func (h TokenHash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (h *TokenHash) UnmarshalText(b []byte) error {
	n, err := hex.Decode(h[:], b)
	if err != nil || n != len(h) {
		return Errorf(KindInvalid, "token hash %q is not %d hex bytes", b, len(h))
	}
	return nil
}

// Token is an API bearer token. The secret is shown once at creation; only its hash is kept
// (Hash, `json:"-"` so an API listing cannot show it; TokenValue carries it in the op log).
type Token struct {
	ID    string `json:"id"`
	Name  string `json:"name,omitempty"`
	Roles []Role `json:"roles"`
	// Networks scopes the token; empty means all networks.
	Networks   []string   `json:"networks,omitempty"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	CreatedAt  time.Time  `json:"created_at"`
	Hash       TokenHash  `json:"-"`
}

// HasRole reports whether the token has role r.
func (t Token) HasRole(r Role) bool { return slices.Contains(t.Roles, r) }

// InScope reports whether the token may act on network (always true when unscoped).
func (t Token) InScope(network string) bool {
	return len(t.Networks) == 0 || slices.Contains(t.Networks, network)
}

// Expired reports whether the token has expired at now.
func (t Token) Expired(now time.Time) bool { return t.ExpiresAt != nil && !now.Before(*t.ExpiresAt) }

// Validate checks a token as it will be stored.
func (t Token) Validate() error {
	if !tokenIDOK(t.ID) {
		return Errorf(KindInvalid, "token id %q is invalid", t.ID)
	}
	if err := ValidateName("name", t.Name); err != nil {
		return err
	}
	if len(t.Roles) == 0 {
		return Errorf(KindInvalid, "roles: a token needs at least one role")
	}
	for _, r := range t.Roles {
		if _, err := ParseRole(string(r)); err != nil {
			return err
		}
	}
	for _, n := range t.Networks {
		if err := ValidateNetworkName(n); err != nil {
			return Errorf(KindInvalid, "networks: %v", err)
		}
	}
	if t.ExpiresAt != nil && t.ExpiresAt.IsZero() {
		return Errorf(KindInvalid, "expires_at is the zero time; use null for never")
	}
	if t.Hash == (TokenHash{}) {
		return Errorf(KindInvalid, "token %s has no hash", t.ID)
	}
	return nil
}

// TokenSecretPrefix starts every token secret so that secret scanners and humans recognise
// it. The format is "wft_<id>_<random>"; the id lets the server find the hash with an index
// lookup and then compare in constant time.
const TokenSecretPrefix = "wft_"

// TokenIDFromSecret extracts the id from a secret, or reports false.
func TokenIDFromSecret(secret string) (string, bool) {
	rest, ok := strings.CutPrefix(secret, TokenSecretPrefix)
	if !ok {
		return "", false
	}
	id, random, ok := strings.Cut(rest, "_")
	if !ok || random == "" || !tokenIDOK(id) {
		return "", false
	}
	return id, true
}

func tokenIDOK(id string) bool {
	if len(id) < 4 || len(id) > 32 {
		return false
	}
	for _, c := range id {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}
