package main

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/control"
)

// TestClientNewWarnsWithoutEndpoint: a config without Endpoint cannot work from a phone;
// client new says so in one stderr line, and says nothing when the network has one.
func TestClientNewWarnsWithoutEndpoint(t *testing.T) {
	ctx := context.Background()
	a := newTestAPI(t)
	if _, err := a.svc.CreateNetwork(ctx, control.NetworkInput{Name: "vpn", IPv4: netip.MustParsePrefix("198.51.102.1/24"), Endpoint: "vpn.example.org"}); err != nil {
		t.Fatal(err)
	}
	_, admin, err := a.svc.CreateToken(ctx, control.TokenInput{Roles: []wirefleet.Role{wirefleet.RoleAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		network string
		warn    bool
	}{{"office", true}, {"vpn", false}} {
		for _, extra := range [][]string{nil, {"-qr"}, {"-o", "json"}} {
			var out, errb strings.Builder
			args := append([]string{tc.network, "-name", "phone", "-server", a.hs.URL, "-token", admin}, extra...)
			if err := runClientNew(ctx, args, &out, &errb); err != nil {
				t.Fatalf("%v: %v", args, err)
			}
			var warnings []string
			for _, l := range strings.Split(errb.String(), "\n") {
				if strings.HasPrefix(l, "warning:") {
					warnings = append(warnings, l)
				}
			}
			switch {
			case tc.warn && (len(warnings) != 1 || !strings.Contains(warnings[0], `network "office" has no endpoint`)):
				t.Errorf("%v: want one warning about the endpoint, stderr:\n%s", args, errb.String())
			case !tc.warn && len(warnings) != 0:
				t.Errorf("%v: unexpected warning:\n%s", args, errb.String())
			}
		}
	}
}

func TestHasEndpoint(t *testing.T) {
	for conf, want := range map[string]bool{
		"[Interface]\nPrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\n\n[Peer]\nPublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\nEndpoint = 203.0.113.1:51820\nAllowedIPs = 0.0.0.0/0\n": true,
		"[Interface]\nPrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\n\n[Peer]\nPublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\nAllowedIPs = 0.0.0.0/0\n":                               false,
		"not a config": true,
	} {
		if got := hasEndpoint(conf); got != want {
			t.Errorf("hasEndpoint(%q) = %v, want %v", conf, got, want)
		}
	}
}
