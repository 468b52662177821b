package wirefleet

import (
	"net/netip"
	"time"
	"unicode"
	"unicode/utf8"
)

// Peer is a WireGuard peer (a client or a site) of one network, identified by
// (Network, PublicKey).
//
// A peer is on the gateways only when Active: enabled and not expired. Expiry keeps the
// record: the sweeper sets Expired and the peer leaves the gateways (a peer.put op).
type Peer struct {
	Network   string `json:"network"`
	PublicKey Key    `json:"public_key"`
	// Name is a free label (not unique): up to 64 printable characters.
	Name string `json:"name"`
	// Addresses are the peer's tunnel addresses (its AllowedIPs as /32 and /128), one IPv4
	// and one IPv6 when allocated by IPAM in a dual-stack network.
	Addresses []netip.Addr `json:"addresses"`
	// PresharedKey is optional; it is never rendered (see SecretKey).
	PresharedKey SecretKey `json:"-"`
	Enabled      bool      `json:"enabled"`
	// ExpiresAt nil means the peer never expires (never the zero time).
	ExpiresAt *time.Time `json:"expires_at"`
	// Expired is set by the expiry sweeper once ExpiresAt has passed.
	Expired   bool      `json:"expired"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Active reports whether the peer belongs on the gateways.
func (p Peer) Active() bool { return p.Enabled && !p.Expired }

// AllowedIPs returns the addresses as host prefixes (/32, /128).
func (p Peer) AllowedIPs() []netip.Prefix {
	out := make([]netip.Prefix, len(p.Addresses))
	for i, a := range p.Addresses {
		out[i] = netip.PrefixFrom(a, a.BitLen())
	}
	return out
}

// MaxNameLen bounds names of peers and tokens.
const MaxNameLen = 64

// ValidateName checks a free-form label (peer or token name); field names it in errors.
func ValidateName(field, s string) error {
	if len(s) > MaxNameLen {
		return Errorf(KindInvalid, "%s %q is too long: at most %d bytes", field, s, MaxNameLen)
	}
	if !utf8.ValidString(s) {
		return Errorf(KindInvalid, "%s %q is not valid UTF-8", field, s)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return Errorf(KindInvalid, "%s %q contains a non-printable character %U", field, s, r)
		}
	}
	return nil
}

// Validate checks a peer on its own. Whether its addresses fit its network is IPAM's job.
func (p Peer) Validate() error {
	if err := ValidateNetworkName(p.Network); err != nil {
		return err
	}
	if p.PublicKey.IsZero() {
		return Errorf(KindInvalid, "public_key is missing")
	}
	if err := ValidateName("name", p.Name); err != nil {
		return err
	}
	var v4, v6 int
	seen := make(map[netip.Addr]bool, len(p.Addresses))
	for _, a := range p.Addresses {
		if !a.IsValid() || a.Zone() != "" || a.Is4In6() {
			return Errorf(KindInvalid, "addresses: %q is not a plain IP address", a)
		}
		if seen[a] {
			return Errorf(KindInvalid, "addresses: %s is listed twice", a)
		}
		seen[a] = true
		if a.Is4() {
			v4++
		} else {
			v6++
		}
	}
	if len(p.Addresses) == 0 {
		return Errorf(KindInvalid, "peer %s has no addresses", p.PublicKey)
	}
	if len(p.Addresses) > 16 {
		return Errorf(KindInvalid, "addresses: %d addresses is too many (at most 16)", len(p.Addresses))
	}
	if p.ExpiresAt != nil && p.ExpiresAt.IsZero() {
		return Errorf(KindInvalid, "expires_at is the zero time; use null for never")
	}
	return nil
}
