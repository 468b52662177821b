package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestAutowgAndRegisterRefuseBadCommandLines: exit 2 with the flag named, before touching
// any interface; the interface may stand anywhere among the flags (as with argparse).
func TestAutowgAndRegisterRefuseBadCommandLines(t *testing.T) {
	for _, k := range []string{"AUTOWG_POOL", "AUTOWG_ROUTE", "AUTOWG_ENDPOINT", "AUTOWG_URL", "AUTOWG_BACKEND", "AUTOWG_CONVERTER"} {
		t.Setenv(k, "")
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"autowg", "--pool", "fd00:1::/64", "--route", "fd00::/48", "--endpoint", "vpn.example.com"}, "exactly one WireGuard interface"},
		{[]string{"autowg", "--pool", "fd00:1::/64", "--route", "fd00::/48", "--endpoint", "vpn.example.com", "a", "b"}, "exactly one WireGuard interface"},
		{[]string{"autowg", "--pool", "198.51.100.0/24", "--route", "fd00::/48", "--endpoint", "vpn.example.com", "devices"}, "--pool"},
		// flags after the interface are parsed too: the bad --route is seen
		{[]string{"autowg", "--pool", "fd00:1::/64", "devices", "--route", "198.51.100.0/24", "--endpoint", "vpn.example.com"}, "--route"},
		{[]string{"autowg", "--pool", "fd00:1::/64", "--route", "fd00::/48", "devices"}, "--endpoint"},
		{[]string{"autowg", "--pool", "fd00:1::/64", "--route", "fd00::/48", "--endpoint", "e", "--converter", "metans", "--metans-template", "x", "devices"}, "template"},
		{[]string{"autowg", "--pool", "fd00:1::/64", "--route", "fd00::/48", "--endpoint", "e", "--http-port", "x", "devices"}, "--http-port"},
		{[]string{"register", "--conf", "/nonexistent", "--url", "ftp://x", "--cert", "c", "--key", "k"}, "--url"},
		{[]string{"register", "--conf", "/nonexistent", "--url", "https://x/", "--cert", "c", "--key", "k", "--backend", "userspace"}, "--foreground"},
		{[]string{"register", "--conf", "/nonexistent"}, "--url is missing"},
		{[]string{"server", "-data", "/nonexistent", "-register-config", "r.yaml"}, "need -register-listen"},
		{[]string{"server", "-data", "/nonexistent", "-register-listen", "127.0.0.1:0"}, "needs -register-config"},
		{[]string{"server", "-data", "/nonexistent", "-register-listen", "127.0.0.1:0", "-register-config", "r.yaml", "-register-trusted-proxy", "nope"}, "-register-trusted-proxy"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tt.args, &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tt.args, code, stderr.String(), tt.want)
		}
	}
}
