package gateway

import (
	"net/netip"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want string // "" means valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"ipv6 listen", func(c *Config) { c.Listen = "[::1]:41194" }, ""},
		{"any host", func(c *Config) { c.Listen = ":41194" }, ""},
		{"listen without port", func(c *Config) { c.Listen = "127.0.0.1" }, `-listen "127.0.0.1": want host:port such as 127.0.0.1:41194: address 127.0.0.1: missing port in address`},
		{"listen bad port", func(c *Config) { c.Listen = "127.0.0.1:http2" }, `-listen "127.0.0.1:http2": port "http2" is not a number from 0 to 65535`},
		{"listen port too big", func(c *Config) { c.Listen = "127.0.0.1:70000" }, `-listen "127.0.0.1:70000": port "70000" is not a number from 0 to 65535`},
		{"empty device", func(c *Config) { c.Device.Name = "" }, `-wg-device "": want an interface name of 1 to 15 bytes without '/', ':', '%' or spaces`},
		{"long device", func(c *Config) { c.Device.Name = "wireguard-interface0" }, `-wg-device "wireguard-interface0": want an interface name of 1 to 15 bytes without '/', ':', '%' or spaces`},
		{"device with slash", func(c *Config) { c.Device.Name = "wg/0" }, `-wg-device "wg/0": want an interface name of 1 to 15 bytes without '/', ':', '%' or spaces`},
		{"backend", func(c *Config) { c.Device.Backend = "wireguard-go" }, `-wg-backend "wireguard-go": want one of auto, kernel, userspace, attach`},
		{"port", func(c *Config) { c.Device.ListenPort = 65536 }, "-wg-port 65536: want a UDP port from 0 to 65535"},
		{"attach with address", func(c *Config) {
			c.Device.Backend = "attach"
			c.Device.Addresses = []netip.Prefix{netip.MustParsePrefix("198.51.100.1/24")}
		}, "-wg-address 198.51.100.1/24: not used with -wg-backend attach, which leaves the interface's addresses alone; drop it"},
		{"managed prefix host bits", func(c *Config) {
			c.Device.ManagedPrefixes = []netip.Prefix{netip.MustParsePrefix("198.51.100.1/24")}
		}, "-wg-managed-prefix 198.51.100.1/24: want a network prefix without host bits, such as 198.51.100.0/24"},
		{"mtu", func(c *Config) { c.Device.MTU = 100 }, "MTU 100: want 576 to 65535, or 0 for the default"},
		{"state dir", func(c *Config) { c.StateDir = "" }, `-state-dir "": a directory is needed to keep the device's private key`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mod(&c)
			err := c.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("Validate()\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
