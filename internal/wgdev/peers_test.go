package wgdev

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/wirefleet/wirefleet"
)

func pfx(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

var eq = cmpopts.EquateComparable(netip.Prefix{})

func TestNormalizeAndStale(t *testing.T) {
	got := Normalize(pfx("2001:db8::1/64", "198.18.0.9/24", "198.18.0.0/24", "192.0.2.1/32"))
	want := pfx("192.0.2.1/32", "198.18.0.0/24", "2001:db8::/64")
	if diff := cmp.Diff(want, got, eq); diff != "" {
		t.Errorf("Normalize (-want +got):\n%s", diff)
	}
	stale := Stale(pfx("192.0.2.1/32", "198.18.0.0/24"), pfx("198.18.0.0/24", "203.0.113.0/24"))
	if diff := cmp.Diff(pfx("192.0.2.1/32"), stale, eq); diff != "" {
		t.Errorf("Stale (-want +got):\n%s", diff)
	}
}

func TestOwnership(t *testing.T) {
	o := Ownership(pfx("198.18.0.0/16", "2001:db8:1::/48"))
	tests := []struct {
		allowed []netip.Prefix
		owns    bool
	}{
		{pfx("198.18.4.0/24"), true},
		{pfx("198.18.4.1/32", "2001:db8:1::7/128"), true},
		{pfx("198.18.4.1/32", "192.0.2.1/32"), false}, // one outside is enough
		{pfx("198.0.0.0/8"), false},                   // wider than the managed prefix
		{pfx("2001:db8:2::/64"), false},
		{pfx("::ffff:198.18.0.1/128"), false}, // IPv4-mapped is another family
		{nil, false},                          // nothing proves a peer without IPs is ours
	}
	for _, tc := range tests {
		if got := o.Owns(tc.allowed); got != tc.owns {
			t.Errorf("Owns(%v) = %v, want %v", tc.allowed, got, tc.owns)
		}
		err := o.Check([]Peer{{PublicKey: wirefleet.Key{1}, AllowedIPs: tc.allowed}})
		if (err == nil) != tc.owns || (err != nil && !wirefleet.IsKind(err, wirefleet.KindInvalid)) {
			t.Errorf("Check(%v) = %v, want ok=%v with KindInvalid", tc.allowed, err, tc.owns)
		}
	}
}

func TestValidatePeers(t *testing.T) {
	ok := Peer{PublicKey: wirefleet.Key{1}, AllowedIPs: pfx("198.18.0.1/32")}
	tests := []struct {
		name string
		p    Peer
		bad  bool
	}{
		{"ok", ok, false},
		{"zero key", Peer{AllowedIPs: ok.AllowedIPs}, true},
		{"invalid prefix", Peer{PublicKey: ok.PublicKey, AllowedIPs: []netip.Prefix{{}}}, true},
		{"endpoint without port", Peer{PublicKey: ok.PublicKey, Endpoint: netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), 0)}, true},
		{"keepalive too long", Peer{PublicKey: ok.PublicKey, PersistentKeepalive: 70000 * time.Second}, true},
		{"negative keepalive", Peer{PublicKey: ok.PublicKey, PersistentKeepalive: -time.Second}, true},
	}
	for _, tc := range tests {
		err := ValidatePeers([]Peer{tc.p}, nil)
		if (err != nil) != tc.bad || (err != nil && !wirefleet.IsKind(err, wirefleet.KindInvalid)) {
			t.Errorf("%s: ValidatePeers = %v, want bad=%v (KindInvalid)", tc.name, err, tc.bad)
		}
	}
	if err := ValidatePeers(nil, []wirefleet.Key{{}}); !wirefleet.IsKind(err, wirefleet.KindInvalid) {
		t.Errorf("zero key in remove: %v", err)
	}
	if got := KeepaliveSeconds(1500 * time.Millisecond); got != 2 {
		t.Errorf("KeepaliveSeconds(1.5s) = %d, want 2", got)
	}
}
