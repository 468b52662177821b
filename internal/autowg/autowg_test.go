package autowg

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func valid() Config {
	c := Default()
	c.Interface, c.Pool, c.Route, c.Endpoint = "devices", "fde3:25fb:7f6c:1::/64", "fde3:25fb:7f6c::/48", "vpn.example.com"
	return c
}

func TestConfigValidate(t *testing.T) {
	if err := valid().Validate(); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		mod  func(*Config)
		want string // part of the error
	}{
		"no interface":     {func(c *Config) { c.Interface = "" }, "interface"},
		"ipv4 pool":        {func(c *Config) { c.Pool = "198.51.100.0/24" }, "--pool"},
		"pool host bits":   {func(c *Config) { c.Pool = "fde3:25fb:7f6c:1::1/64" }, "host bits"},
		"/128 pool":        {func(c *Config) { c.Pool = "fde3:25fb:7f6c:1::/128" }, "--pool"},
		"garbage pool":     {func(c *Config) { c.Pool = "nope" }, "--pool"},
		"ipv4 route":       {func(c *Config) { c.Route = "198.51.100.0/24" }, "--route"},
		"route host bits":  {func(c *Config) { c.Route = "fde3:25fb:7f6c::1/48" }, "--route"},
		"two routes":       {func(c *Config) { c.Route = "fd00::/48,fd01::/48" }, "--route"},
		"no endpoint":      {func(c *Config) { c.Endpoint = "" }, "--endpoint"},
		"endpoint + port":  {func(c *Config) { c.Endpoint = "vpn.example.com:51820" }, "--endpoint"},
		"bad pattern":      {func(c *Config) { c.CNPattern = "(" }, "--cn-pattern"},
		"pattern no group": {func(c *Config) { c.CNPattern = `\d+` }, "--cn-pattern"},
		"bcd small pool":   {func(c *Config) { c.Pool = "fde3:25fb:7f6c:1::/120" }, "--converter"},
		"bad template":     {func(c *Config) { c.Converter, c.MetansTemplate = "metans", "x" }, "--converter"},
		"bad converter":    {func(c *Config) { c.Converter = "magic" }, "--converter"},
		"bad proxy":        {func(c *Config) { c.TrustedProxies = []string{"nope"} }, "--trusted-proxy"},
		"cert w/o key":     {func(c *Config) { c.TLSCert = "x.crt" }, "--tls-key"},
		"CA without TLS":   {func(c *Config) { c.ClientCAFiles = []string{"ca.crt"} }, "--tls-cert"},
		"CRL without CA":   {func(c *Config) { c.CRLFile = "crl.pem" }, "--client-ca"},
		"missing CA file": {func(c *Config) {
			c.TLSCert, c.TLSKey, c.ClientCAFiles = "x", "y", []string{"/nonexistent/ca.crt"}
		}, "--client-ca"},
		"port": {func(c *Config) { c.HTTPPort = 70000 }, "--http-port"},
	}
	for name, tt := range tests {
		c := valid()
		tt.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one mentioning %q", name, err, tt.want)
		}
	}
}

func TestSettings(t *testing.T) {
	c := valid()
	c.Interface = "WG-Devices.1"
	c.TrustedProxies = []string{"192.0.2.10", "2001:db8::/64"}
	s, err := c.parse()
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("192.0.2.10/32"), netip.MustParsePrefix("2001:db8::/64")}
	if d := cmp.Diff(want, s.proxies, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); d != "" {
		t.Errorf("proxies (-want +got):\n%s", d)
	}
	if s.network != "autowg" || s.listen != ":3000" {
		t.Errorf("network %q listen %q", s.network, s.listen)
	}
	c.NoTrustLoopback, c.TrustedProxies = true, nil
	c.Interface = "wg0"
	s, _ = c.parse()
	if len(s.proxies) != 0 || s.network != "wg0" {
		t.Errorf("--no-trust-loopback: %v, network %q", s.proxies, s.network)
	}
}

func TestSplitAllowed(t *testing.T) {
	pool := netip.MustParsePrefix("fd00:1:0:1::/64")
	nets := func(ss ...string) []net.IPNet {
		var out []net.IPNet
		for _, s := range ss {
			_, n, _ := net.ParseCIDR(s)
			out = append(out, *n)
		}
		return out
	}
	in, out := splitAllowed(pool, nets("fd00:1:0:1::12/128", "198.18.0.6/32", "fd00:1::/48", "fd00:1:0:1::/64", "fd00:1:0:2::1/128", "fd00:1:0:1:8000::/65"))
	str := func(ns []net.IPNet) []string {
		var s []string
		for _, n := range ns {
			s = append(s, n.String())
		}
		return s
	}
	if d := cmp.Diff([]string{"fd00:1:0:1::12/128", "fd00:1:0:1:8000::/65"}, str(in)); d != "" {
		t.Errorf("in (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"198.18.0.6/32", "fd00:1::/48", "fd00:1:0:1::/64", "fd00:1:0:2::1/128"}, str(out)); d != "" {
		t.Errorf("out (-want +got):\n%s", d)
	}
}

func TestLastAddr(t *testing.T) {
	for p, want := range map[string]string{
		"fd00::/64":      "fd00::ffff:ffff:ffff:ffff",
		"fd00::ab00/120": "fd00::abff",
		"fd00::/126":     "fd00::3",
	} {
		if got := lastAddr(netip.MustParsePrefix(p)).String(); got != want {
			t.Errorf("lastAddr(%s) = %s, want %s", p, got, want)
		}
	}
}
