package enabler

import (
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	ok := Default()
	ok.ServerIP = "vpn.example.test"
	ok.Subnet = "198.51.100.1/24"
	tests := []struct {
		name    string
		mod     func(c *Config)
		wantErr string // substring; "" = valid
	}{
		{"defaults with SERVER_IP", func(*Config) {}, ""},
		{"upstream default subnet", func(c *Config) { c.Subnet = DefaultSubnet }, ""},
		{"interface not first host", func(c *Config) { c.Subnet = "198.51.100.77/24" }, ""},
		{"slash 30", func(c *Config) { c.Subnet = "198.51.100.1/30" }, ""},
		{"no SERVER_IP", func(c *Config) { c.ServerIP = " " }, "SERVER_IP is not set"},
		{"network address", func(c *Config) { c.Subnet = "198.51.100.0/24" }, `WG_SUBNET "198.51.100.0/24" is the network address`},
		{"broadcast address", func(c *Config) { c.Subnet = "198.51.100.255/24" }, "is the broadcast address"},
		{"slash 31", func(c *Config) { c.Subnet = "198.51.100.1/31" }, "leaves no address for clients (/31)"},
		{"slash 32", func(c *Config) { c.Subnet = "198.51.100.1/32" }, "leaves no address for clients (/32)"},
		{"ipv6", func(c *Config) { c.Subnet = "2001:db8::1/64" }, "is not IPv4"},
		{"mapped ipv6", func(c *Config) { c.Subnet = "::ffff:198.51.100.1/120" }, "is not IPv4"},
		{"no mask", func(c *Config) { c.Subnet = "198.51.100.1" }, "is not an address with a mask"},
		{"bad WG_PORT", func(c *Config) { c.WGPort = "0" }, `WG_PORT "0"`},
		{"bad API_PORT", func(c *Config) { c.APIPort = "http" }, `API_PORT "http"`},
		{"bad private key", func(c *Config) { c.PrivateKey = "secret; rm -rf /" }, "WG_PRIVATE_KEY is not a WireGuard private key"},
		{"attach refused", func(c *Config) { c.Backend = "attach" }, "not supported by the enabler"},
		{"unknown backend", func(c *Config) { c.Backend = "magic" }, "unknown WireGuard backend"},
		{"bad device name", func(c *Config) { c.Device = "a-very-long-interface" }, "-wg-device"},
		{"short token", func(c *Config) { c.APITokens = []string{"abc"} }, "at least 16"},
		{"empty data dir", func(c *Config) { c.DataDir = "" }, "-data is empty"},
		{"negative stats interval", func(c *Config) { c.StatsInterval = -time.Second }, "-stats-interval -1s is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mod(&c)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	// The private key never appears in an error.
	c := ok
	c.PrivateKey = "qAuVUEbmcI3ofLsjJmQ6+RtEejoNX+WHs7QOsIccn0Y"
	if err := c.Validate(); err == nil || strings.Contains(err.Error(), c.PrivateKey) {
		t.Errorf("error %v must exist and not echo the key", err)
	}
}

func TestSettings(t *testing.T) {
	c := Default()
	c.ServerIP, c.Subnet, c.AllowedIPs, c.ListenHost = "203.0.113.9", "198.51.100.1/29", "0.0.0.0/0, 198.18.0.0/15", "127.0.0.1"
	s, err := c.parse()
	if err != nil {
		t.Fatal(err)
	}
	if s.listen != "127.0.0.1:3000" || s.network != "wg0" || s.wgPort != 51820 || len(s.routes) != 2 || s.subnet.String() != "198.51.100.1/29" {
		t.Errorf("settings %+v", s)
	}
	c.AllowedIPs = "everything"
	if s, err := c.parse(); err != nil || s.routes != nil {
		t.Errorf("unparseable PEER_ALLOWED_IPS: routes %v err %v (want none and no error: it is echoed verbatim)", s.routes, err)
	}
}

// FuzzParseSubnet: WG_SUBNET is outside input; whatever it accepts leaves room for clients
// and is a host address of an IPv4 subnet.
func FuzzParseSubnet(f *testing.F) {
	for _, s := range []string{"192.168.2.1/24", "198.51.100.0/24", "198.51.100.255/24", "198.51.100.1/31", "2001:db8::1/64", "::ffff:1.2.3.4/120", " 198.51.100.1/30 ", "1.2.3.4", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseSubnet(s)
		if err != nil {
			return
		}
		if !p.Addr().Is4() || p.Bits() > 30 || p.Addr() == p.Masked().Addr() || p.Addr() == broadcast(p) {
			t.Fatalf("accepted %q as %s", s, p)
		}
	})
}
