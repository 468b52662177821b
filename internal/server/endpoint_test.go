package server

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fixedProbe answers route lookups from a table (no entry: no route) and the host name.
func fixedProbe(src4, src6, name string, nameErr error) *endpointProbe {
	return &endpointProbe{
		source: func(_ context.Context, dst netip.Addr) (netip.Addr, error) {
			s := src6
			if dst.Is4() {
				s = src4
			}
			if s == "" {
				return netip.Addr{}, errors.New("network is unreachable")
			}
			return netip.MustParseAddr(s), nil
		},
		hostname: func() (string, error) { return name, nameErr },
	}
}

func TestChooseEndpoint(t *testing.T) {
	tests := []struct {
		name             string
		src4, src6, host string
		hostErr          error
		want             string
		why              string // a substring of the reason
	}{
		{"public IPv4", "203.0.113.7", "2001:db8:5::7", "vpn1", nil, "203.0.113.7", "IPv4 route to the internet (public)"},
		{"public IPv4, no IPv6", "198.51.100.7", "", "vpn1", nil, "198.51.100.7", "(public)"},
		{"private IPv4, public IPv6", "198.18.5.4", "2001:db8:5::7", "vpn1", nil, "2001:db8:5::7", "the IPv4 one, 198.18.5.4, is private"},
		{"private IPv4 only", "198.18.5.4", "", "vpn1", nil, "198.18.5.4", "it is private"},
		{"private IPv4, ULA IPv6", "198.18.5.4", "fd00:1::7", "vpn1", nil, "198.18.5.4", "it is private"},
		{"carrier-grade NAT IPv4, public IPv6", "100.64.3.9", "2001:db8:5::7", "vpn1", nil, "2001:db8:5::7", "is private"},
		{"IPv6 only", "", "2001:db8:5::7", "vpn1", nil, "2001:db8:5::7", "there is no IPv4 route"},
		{"no routes: host name", "", "", "vpn1.example.org", nil, "vpn1.example.org", "the host name: no IPv4 route to the internet (network is unreachable); no IPv6 route"},
		{"loopback source: host name", "127.0.0.1", "::1", "vpn1", nil, "vpn1", "127.0.0.1 is not usable"},
		{"nothing usable", "", "", "localhost", nil, "", "no usable host name"},
		{"host name fails", "", "", "", errors.New("uname failed"), "", "uname failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host, why := fixedProbe(tt.src4, tt.src6, tt.host, tt.hostErr).choose(context.Background())
			if diff := cmp.Diff(tt.want, host); diff != "" {
				t.Errorf("host (-want +got):\n%s", diff)
			}
			if !strings.Contains(why, tt.why) {
				t.Errorf("why %q lacks %q", why, tt.why)
			}
		})
	}
}

// TestRouteSource: the real lookup on loopback gives loopback (no traffic leaves the host).
func TestRouteSource(t *testing.T) {
	got, err := routeSource(context.Background(), netip.MustParseAddr("127.0.0.1"))
	if err != nil || !got.IsLoopback() {
		t.Errorf("routeSource(127.0.0.1) = %v, %v", got, err)
	}
}
