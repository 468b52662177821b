package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestEnablerRefusesBadConfig: the enabler refuses to start, with a clear error and exit
// status 2, on the configurations the spec forbids, before touching a store or a device.
func TestEnablerRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no SERVER_IP", map[string]string{"WG_SUBNET": "198.51.100.1/24"}, "SERVER_IP is not set"},
		{"network address", map[string]string{"SERVER_IP": "203.0.113.1", "WG_SUBNET": "198.51.100.0/24"}, "is the network address"},
		{"broadcast", map[string]string{"SERVER_IP": "203.0.113.1", "WG_SUBNET": "198.51.100.255/24"}, "is the broadcast address"},
		{"slash 31", map[string]string{"SERVER_IP": "203.0.113.1", "WG_SUBNET": "198.51.100.1/31"}, "/31"},
		{"slash 32", map[string]string{"SERVER_IP": "203.0.113.1", "WG_SUBNET": "198.51.100.1/32"}, "/32"},
		{"ipv6", map[string]string{"SERVER_IP": "203.0.113.1", "WG_SUBNET": "2001:db8::1/64"}, "is not IPv4"},
		{"bad key", map[string]string{"SERVER_IP": "203.0.113.1", "WG_SUBNET": "198.51.100.1/24", "WG_PRIVATE_KEY": "$(reboot)"}, "WG_PRIVATE_KEY is not a WireGuard private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"SERVER_IP", "WG_SUBNET", "WG_PRIVATE_KEY", "API_PORT", "WG_PORT", "PEER_ALLOWED_IPS", "API_TOKEN"} {
				t.Setenv(k, tt.env[k])
			}
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"enabler", "-data", t.TempDir()}, &stdout, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr.String(), tt.want)
			}
			if strings.Contains(stderr.String(), "$(reboot)") {
				t.Errorf("the private key was echoed: %q", stderr.String())
			}
		})
	}
}
