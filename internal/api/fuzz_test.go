package api

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/api/wire"
	"github.com/wirefleet/wirefleet/internal/wgquick"
)

// FuzzDecodeBodies: every request body type decodes strictly without panicking, and every
// failure is an invalid-kind error (a 400, never a 500).
func FuzzDecodeBodies(f *testing.F) {
	for _, s := range []string{
		`{"name":"office","ipv4":"198.51.100.1/24","routes":["0.0.0.0/0"],"dns":["198.51.100.1"]}`,
		`{"public_key":"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=","addresses":["198.51.100.2"],"expires_at":"2026-01-01T00:00:00Z"}`,
		`{"expires_at":null,"name":"x","enabled":false}`,
		`{"roles":["admin"],"networks":["a"]}`,
		`{"name":"x","config":"[Interface]\nAddress=198.51.100.1/24\n"}`,
		`{"mtu":1e400}`, `[]`, `null`, `{"a":1} x`, "\x00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		targets := []any{&wire.NetworkCreate{}, &wire.NetworkUpdate{}, &wire.PeerCreate{}, &wire.PeerUpdate{},
			&wire.ClientCreate{}, &wire.TokenCreate{}, &wire.NetworkImport{}}
		for _, v := range targets {
			err := decodeStrict(strings.NewReader(body), v)
			if err != nil && wirefleet.KindOf(err) != wirefleet.KindInvalid {
				t.Fatalf("decode into %T: %v has kind %s, want invalid", v, err, wirefleet.KindOf(err))
			}
		}
		var nc wire.NetworkCreate
		if decodeStrict(strings.NewReader(body), &nc) == nil {
			if _, err := networkInput(nc); err != nil && wirefleet.KindOf(err) != wirefleet.KindInvalid {
				t.Fatalf("networkInput: %v has kind %s", err, wirefleet.KindOf(err))
			}
		}
		var imp wire.NetworkImport
		if decodeStrict(strings.NewReader(body), &imp) == nil {
			if cfg, err := wgquick.Parse(strings.NewReader(imp.Config)); err == nil {
				if _, _, err := ImportInput("x", "", cfg); err != nil && wirefleet.KindOf(err) != wirefleet.KindInvalid {
					t.Fatalf("ImportInput: %v has kind %s", err, wirefleet.KindOf(err))
				}
			}
		}
	})
}

// FuzzPeerKeyParam: path keys in any form parse or fail as invalid, and a parsed key's
// canonical URL form parses back to it.
func FuzzPeerKeyParam(f *testing.F) {
	f.Add("xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=")
	f.Add("gN65BkIKy1eCE9pP1wdc8ROUtkHLF2PfAqYdyYBz6EA=")
	f.Add("gN65BkIKy1eCE9pP1wdc8ROUtkHLF2PfAqYdyYBz6EA")
	f.Add("a_b-c")
	f.Fuzz(func(t *testing.T, s string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.SetPathValue("key", s)
		k, err := peerKeyParam(r)
		if err != nil {
			if wirefleet.KindOf(err) != wirefleet.KindInvalid {
				t.Fatalf("kind %s", wirefleet.KindOf(err))
			}
			return
		}
		r.SetPathValue("key", urlKey(k))
		k2, err := peerKeyParam(r)
		if err != nil || k2 != k {
			t.Fatalf("URL form %q of %s does not parse back: %v", urlKey(k), k, err)
		}
		if _, err := url.PathUnescape(url.PathEscape(k.String())); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzCIDRs: the address parsers behind ipv4/ipv6/routes/dns/addresses never panic and fail
// only with invalid errors.
func FuzzCIDRs(f *testing.F) {
	for _, s := range []string{"198.51.100.1/24", "2001:db8::1/64", "0.0.0.0/0", "::ffff:198.51.100.1/120", "fe80::1%eth0/64", "198.51.100.300/24", "1/1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		req := wire.NetworkCreate{Name: "n", IPv4: s, IPv6: s, Routes: []string{s}, DNS: []string{s}}
		if _, err := networkInput(req); err != nil && wirefleet.KindOf(err) != wirefleet.KindInvalid {
			t.Fatalf("networkInput(%q): kind %s", s, wirefleet.KindOf(err))
		}
		if _, err := wire.ParseAddrs("addresses", []string{s}); err != nil && wirefleet.KindOf(err) != wirefleet.KindInvalid {
			t.Fatalf("ParseAddrs(%q): kind %s", s, wirefleet.KindOf(err))
		}
		if p, err := wirefleet.ParsePrefix("routes", s); err == nil && p.Masked() != p {
			t.Fatalf("ParsePrefix(%q) accepted host bits", s)
		}
	})
}
