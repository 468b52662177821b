package wirefleet

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func validNetwork() Network {
	priv := Key{1, 2, 3}
	priv[0] &= 248
	priv[31] = 64
	return Network{
		Name: "office", ListenPort: 51820,
		IPv4: netip.MustParsePrefix("198.51.100.1/24"), IPv6: netip.MustParsePrefix("2001:db8:1::1/64"),
		Endpoint: "vpn.example.net", MTU: 1420, Keepalive: 25, Allocation: AllocSequential,
		PublicKey: priv.PublicKey(), PrivateKey: NewSecretKey(priv),
	}
}

func TestNetworkValidate(t *testing.T) {
	tests := []struct {
		name   string
		mod    func(n *Network)
		errHas string // "" = valid; otherwise the message names field and value
	}{
		{"valid", func(*Network) {}, ""},
		{"v4 only", func(n *Network) { n.IPv6 = netip.Prefix{} }, ""},
		{"endpoint IP", func(n *Network) { n.Endpoint = "2001:db8::5" }, ""},
		{"name with dot", func(n *Network) { n.Name = "a.b" }, `"a.b"`},
		{"empty name", func(n *Network) { n.Name = "" }, `network name ""`},
		{"port 0", func(n *Network) { n.ListenPort = 0 }, "listen_port 0"},
		{"no addresses", func(n *Network) { n.IPv4, n.IPv6 = netip.Prefix{}, netip.Prefix{} }, "ipv4 or ipv6"},
		{"v4 network address", func(n *Network) { n.IPv4 = netip.MustParsePrefix("198.51.100.0/24") }, `ipv4 "198.51.100.0/24"`},
		{"v4 broadcast", func(n *Network) { n.IPv4 = netip.MustParsePrefix("198.51.100.255/24") }, "broadcast"},
		{"v4 /32", func(n *Network) { n.IPv4 = netip.MustParsePrefix("198.51.100.1/32") }, "/32"},
		{"v6 in v4 field", func(n *Network) { n.IPv4 = netip.MustParsePrefix("2001:db8::1/64") }, "not an IPv4"},
		{"v4 in v6 field", func(n *Network) { n.IPv6 = netip.MustParsePrefix("198.51.100.1/24") }, "not an IPv6"},
		{"v6 subnet-router", func(n *Network) { n.IPv6 = netip.MustParsePrefix("2001:db8:1::/64") }, "subnet-router"},
		{"endpoint with port", func(n *Network) { n.Endpoint = "vpn:51820" }, `"vpn:51820"`},
		{"route with host bits", func(n *Network) { n.Routes = []netip.Prefix{netip.MustParsePrefix("203.0.113.5/24")} }, "203.0.113.5/24"},
		{"mtu", func(n *Network) { n.MTU = 99999 }, "mtu 99999"},
		{"allocation", func(n *Network) { n.Allocation = "x" }, `allocation "x"`},
		{"key mismatch", func(n *Network) { n.PublicKey = Key{9} }, "does not match"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := validNetwork()
			tc.mod(&n)
			err := n.Validate()
			if tc.errHas == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if !IsKind(err, KindInvalid) || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("Validate = %v, want invalid mentioning %q", err, tc.errHas)
			}
		})
	}
}

func TestPrefixesAndRoutes(t *testing.T) {
	n := validNetwork()
	want := []string{"198.51.100.0/24", "2001:db8:1::/64"}
	got := []string{}
	for _, p := range n.ClientRoutes() {
		got = append(got, p.String())
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ClientRoutes (-want +got):\n%s", diff)
	}
	if !n.Contains(netip.MustParseAddr("198.51.100.9")) || n.Contains(netip.MustParseAddr("203.0.113.1")) {
		t.Errorf("Contains is wrong")
	}
}

// TestSecretsNeverRendered: the network private key and peer PSK do not appear in JSON,
// fmt or slog output of the domain types.
func TestSecretsNeverRendered(t *testing.T) {
	n := validNetwork()
	psk := Key{0xde, 0xad, 0xbe, 0xef}
	p := Peer{Network: "office", PublicKey: Key{5}, Addresses: []netip.Addr{netip.MustParseAddr("198.51.100.2")}, PresharedKey: NewSecretKey(psk)}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "network", n, "peer", p, "key", n.PrivateKey)
	jn, _ := json.Marshal(n)
	jp, _ := json.Marshal(p)
	out := strings.Join([]string{string(jn), string(jp), fmt.Sprintf("%v %+v %#v %s %x", n, n, n, n.PrivateKey, n.PrivateKey), fmt.Sprintf("%v %+v %#v", p, p, p), logged.String()}, "\n")
	for _, k := range []Key{n.PrivateKey.Reveal(), psk} {
		if strings.Contains(out, k.String()) || strings.Contains(out, fmt.Sprintf("%x", k[:4])) || strings.Contains(out, fmt.Sprint(k[:4])) {
			t.Fatalf("secret leaked:\n%s", out)
		}
	}
	if !strings.Contains(out, "(redacted)") {
		t.Errorf("redaction marker missing:\n%s", out)
	}
	// Op values carry them on purpose, and round-trip.
	var nv NetworkValue
	b, _ := json.Marshal(NetworkValueOf(n))
	if err := json.Unmarshal(b, &nv); err != nil {
		t.Fatal(err)
	}
	if nv.ToNetwork().PrivateKey != n.PrivateKey {
		t.Errorf("NetworkValue lost the private key: %s", b)
	}
	var pv PeerValue
	b, _ = json.Marshal(PeerValueOf(p))
	if err := json.Unmarshal(b, &pv); err != nil {
		t.Fatal(err)
	}
	if pv.ToPeer().PresharedKey.Reveal() != psk {
		t.Errorf("PeerValue lost the PSK: %s", b)
	}
}

func TestPeerValidate(t *testing.T) {
	exp := time.Time{}
	tests := []struct {
		name   string
		mod    func(p *Peer)
		errHas string
	}{
		{"valid", func(*Peer) {}, ""},
		{"no key", func(p *Peer) { p.PublicKey = Key{} }, "public_key"},
		{"no addresses", func(p *Peer) { p.Addresses = nil }, "no addresses"},
		{"twice", func(p *Peer) { p.Addresses = append(p.Addresses, p.Addresses[0]) }, "twice"},
		{"zero expiry", func(p *Peer) { p.ExpiresAt = &exp }, "zero time"},
		{"control char name", func(p *Peer) { p.Name = "a\x00b" }, "non-printable"},
		{"long name", func(p *Peer) { p.Name = strings.Repeat("n", 65) }, "too long"},
		{"bad network", func(p *Peer) { p.Network = "NET" }, `"NET"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := Peer{Network: "office", PublicKey: Key{1}, Name: "phone", Addresses: []netip.Addr{netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("2001:db8:1::2")}, Enabled: true}
			tc.mod(&p)
			err := p.Validate()
			if (tc.errHas == "") != (err == nil) || err != nil && (!IsKind(err, KindInvalid) || !strings.Contains(err.Error(), tc.errHas)) {
				t.Fatalf("Validate = %v, want %q", err, tc.errHas)
			}
		})
	}
	p := Peer{Enabled: true, Addresses: []netip.Addr{netip.MustParseAddr("198.51.100.2")}}
	if !p.Active() || p.AllowedIPs()[0].String() != "198.51.100.2/32" {
		t.Errorf("Active/AllowedIPs wrong: %v %v", p.Active(), p.AllowedIPs())
	}
	p.Expired = true
	if p.Active() {
		t.Error("an expired peer is active")
	}
}

func FuzzParseHostPrefix(f *testing.F) {
	for _, s := range []string{"198.51.100.1/24", "2001:db8::1/64", "::ffff:1.2.3.4/120", "1.2.3.4", "fe80::1%eth0/64", "", "300.1.1.1/8", " 192.0.2.1/24 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseHostPrefix("ipv4", s)
		if err != nil {
			if !IsKind(err, KindInvalid) || !strings.Contains(err.Error(), "ipv4") {
				t.Fatalf("error %v lacks kind or field", err)
			}
			return
		}
		if !p.IsValid() || p.Addr().Zone() != "" || p.Addr().Is4In6() {
			t.Fatalf("accepted %q as %v", s, p)
		}
		back, err := ParseHostPrefix("ipv4", p.String())
		if err != nil || back != p {
			t.Fatalf("round trip of %q: %v, %v", s, back, err)
		}
	})
}

func FuzzParsePrefix(f *testing.F) {
	for _, s := range []string{"0.0.0.0/0", "203.0.113.0/24", "203.0.113.5/24", "2001:db8::/32", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePrefix("routes", s)
		if err != nil {
			if !IsKind(err, KindInvalid) {
				t.Fatalf("error %v is not invalid", err)
			}
			return
		}
		if p.Masked() != p {
			t.Fatalf("accepted host bits in %q", s)
		}
	})
}

func FuzzValidateNetworkName(f *testing.F) {
	for _, s := range []string{"wg0", "office-1", "a", "", "UPPER", "has space", "abcdefghijklmnop", "../etc", "wg0\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if err := ValidateNetworkName(s); err != nil {
			if !IsKind(err, KindInvalid) || !strings.Contains(err.Error(), fmt.Sprintf("%q", s)) {
				t.Fatalf("error %v does not name %q", err, s)
			}
			return
		}
		// Accepted names are safe as interface names and path/URL segments.
		if len(s) == 0 || len(s) > 15 || strings.ContainsAny(s, "/. \n%") {
			t.Fatalf("accepted unsafe name %q", s)
		}
	})
}

func FuzzValidateEndpointHost(f *testing.F) {
	for _, s := range []string{"vpn.example.net", "192.0.2.1", "2001:db8::1", "host:51820", "-bad-.com", "a..b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if err := ValidateEndpointHost(s); err != nil {
			return
		}
		if strings.ContainsAny(s, " /\n\t@?#[]") || (strings.Contains(s, ":") && !isIP(s)) {
			t.Fatalf("accepted endpoint %q", s)
		}
	})
}

func isIP(s string) bool { _, err := netip.ParseAddr(s); return err == nil }
