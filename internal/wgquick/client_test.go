package wgquick

import (
	"net/netip"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
)

func TestClientConfigGolden(t *testing.T) {
	netPriv := wirefleet.MustParseKey("yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=")
	clientPriv := wirefleet.MustParseKey("UIxnZ6MLZ6bnnpYLC9xG2x5XfCz0k1wHgUdEM5L7h3M=")
	psk := wirefleet.MustParseKey("FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE=")
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	base := wirefleet.Network{
		Name: "office", ListenPort: 51820,
		IPv4:      netip.MustParsePrefix("198.51.100.1/24"),
		IPv6:      netip.MustParsePrefix("2001:db8:1::1/64"),
		Endpoint:  "vpn.example.org",
		DNS:       []netip.Addr{netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("2001:db8:1::1")},
		MTU:       1420,
		Keepalive: 25,
		PublicKey: netPriv.PublicKey(),
		CreatedAt: created,
	}
	peer := wirefleet.Peer{
		Network: "office", PublicKey: clientPriv.PublicKey(), Name: "laptop",
		Addresses: []netip.Addr{netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("2001:db8:1::2")},
		Enabled:   true,
	}
	tests := []struct {
		name   string
		mutate func(n *wirefleet.Network, p *wirefleet.Peer, psk *wirefleet.Key)
	}{
		{"dualstack", func(*wirefleet.Network, *wirefleet.Peer, *wirefleet.Key) {}},
		{"full-tunnel", func(n *wirefleet.Network, _ *wirefleet.Peer, _ *wirefleet.Key) {
			n.Routes = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
		}},
		{"ipv4-no-psk-no-keepalive", func(n *wirefleet.Network, p *wirefleet.Peer, k *wirefleet.Key) {
			n.IPv6, n.DNS, n.Keepalive = netip.Prefix{}, nil, 0
			p.Addresses = p.Addresses[:1]
			*k = wirefleet.Key{}
		}},
		{"ipv6-endpoint", func(n *wirefleet.Network, _ *wirefleet.Peer, _ *wirefleet.Key) {
			n.Endpoint = "2001:db8::53"
			n.ListenPort = 443
		}},
		{"no-endpoint", func(n *wirefleet.Network, _ *wirefleet.Peer, _ *wirefleet.Key) { n.Endpoint = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, p, k := base, peer, psk
			p.Addresses = append([]netip.Addr(nil), peer.Addresses...)
			tt.mutate(&n, &p, &k)
			cfg := ClientConfig(n, p, clientPriv, k)
			golden(t, "client-"+tt.name+".conf", cfg.Render())
		})
	}
}
