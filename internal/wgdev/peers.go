package wgdev

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/wirefleet/wirefleet"
)

// MaxKeepalive is the largest persistent keepalive interval WireGuard accepts (a uint16 of
// seconds on the wire).
const MaxKeepalive = 65535 * time.Second

// ValidatePeers checks what every backend needs before it touches a device, so that a bad
// peer is refused as a whole (KindInvalid) instead of leaving a half-applied transaction.
func ValidatePeers(upsert []Peer, remove []wirefleet.Key) error {
	for i, p := range upsert {
		if p.PublicKey.IsZero() {
			return wirefleet.Errorf(wirefleet.KindInvalid, "peer %d: public key is missing (all zeros)", i)
		}
		for _, a := range p.AllowedIPs {
			if !a.IsValid() {
				return wirefleet.Errorf(wirefleet.KindInvalid, "peer %s: invalid allowed IP prefix", p.PublicKey)
			}
		}
		if p.Endpoint.IsValid() && p.Endpoint.Port() == 0 {
			return wirefleet.Errorf(wirefleet.KindInvalid, "peer %s: endpoint %s has no port", p.PublicKey, p.Endpoint)
		}
		if p.PersistentKeepalive < 0 || p.PersistentKeepalive > MaxKeepalive {
			return wirefleet.Errorf(wirefleet.KindInvalid, "peer %s: persistent keepalive %s is outside 0..%s", p.PublicKey, p.PersistentKeepalive, MaxKeepalive)
		}
	}
	for _, k := range remove {
		if k.IsZero() {
			return wirefleet.Errorf(wirefleet.KindInvalid, "remove: public key is missing (all zeros)")
		}
	}
	return nil
}

// KeepaliveSeconds converts a keepalive interval to the whole seconds WireGuard uses,
// rounding up so that a sub-second interval never silently turns keepalives off.
func KeepaliveSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

// Normalize returns the allowed IPs masked (WireGuard stores them so), sorted and without
// duplicates, so that desired and actual state compare equal.
func Normalize(prefixes []netip.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(prefixes))
	for _, p := range prefixes {
		out = append(out, p.Masked())
	}
	slices.SortFunc(out, ComparePrefix)
	return slices.Compact(out)
}

// ComparePrefix orders prefixes by address then length (IPv4 first).
func ComparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// Stale returns the prefixes of old that are not in new: what must be removed, one by one,
// after new has been added, so the peer never has no allowed IPs.
func Stale(old, new []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, o := range old {
		if !slices.Contains(new, o.Masked()) {
			out = append(out, o.Masked())
		}
	}
	return out
}

// Ownership is the set of prefixes a Wirefleet process manages on a device it shares with
// others (an attached wg-quick interface): a peer is ours only when every one of its
// allowed IPs lies inside one of them. A peer with no allowed IPs is not ours, since nothing
// proves it is.
type Ownership []netip.Prefix

// Owns reports whether every allowed IP of p lies inside a managed prefix.
func (o Ownership) Owns(allowed []netip.Prefix) bool {
	if len(allowed) == 0 {
		return false
	}
	for _, a := range allowed {
		if !o.Contains(a) {
			return false
		}
	}
	return true
}

// Contains reports whether prefix a lies entirely inside one managed prefix.
func (o Ownership) Contains(a netip.Prefix) bool {
	for _, m := range o {
		if m.Addr().Is4() == a.Addr().Is4() && m.Bits() <= a.Bits() && m.Contains(a.Addr()) {
			return true
		}
	}
	return false
}

// Check refuses (KindInvalid) a peer that would not be ours under o.
func (o Ownership) Check(upsert []Peer) error {
	for _, p := range upsert {
		for _, a := range p.AllowedIPs {
			if !o.Contains(a) {
				return wirefleet.Errorf(wirefleet.KindInvalid, "peer %s: allowed IP %s is outside the managed prefixes %v; this device is shared, so Wirefleet only manages peers inside them", p.PublicKey, a, []netip.Prefix(o))
			}
		}
		if len(p.AllowedIPs) == 0 {
			return wirefleet.Errorf(wirefleet.KindInvalid, "peer %s has no allowed IPs; on a shared device a managed peer needs at least one inside %v", p.PublicKey, []netip.Prefix(o))
		}
	}
	return nil
}

// String is for log lines.
func (o Ownership) String() string { return fmt.Sprint([]netip.Prefix(o)) }
