package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestManagedAndAllInOneFlagErrors(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		contains string
	}{
		{"bad control URL", nil, []string{"gateway", "-control", "control.example.org", "-token", "t"}, `-control "control.example.org": want the control plane's URL`},
		{"no token", nil, []string{"gateway", "-control", "http://192.0.2.1:8080"}, "-token is empty"},
		{"token from env, bad network", map[string]string{"WIREFLEET_TOKEN": "t"}, []string{"gateway", "-control", "http://192.0.2.1:8080", "-network", "Bad Name"}, `-network: network name "Bad Name" is invalid`},
		{"port decided by the network", nil, []string{"gateway", "-control", "http://192.0.2.1:8080", "-token", "t", "-wg-port", "51821"}, "-wg-port is not used with -control"},
		{"addresses decided by the network", nil, []string{"gateway", "-control", "http://192.0.2.1:8080", "-token", "t", "-wg-address", "198.51.100.1/24"}, "-wg-address is not used with -control"},
		{"bad listen", nil, []string{"gateway", "-control", "http://192.0.2.1:8080", "-token", "t", "-listen", "nope"}, `-listen "nope"`},
		{"bad default ipv4", nil, []string{"server", "-data", "/nonexistent", "-default-ipv4", "198.18.0.0"}, `-default-ipv4 "198.18.0.0" is not an address with a prefix length`},
		{"bad default network", nil, []string{"server", "-data", "/nonexistent", "-default-network", "Default"}, `-default-network: network name "Default" is invalid`},
		{"bad default port", nil, []string{"server", "-data", "/nonexistent", "-default-port", "70000"}, "-default-port 70000: want 1-65535"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), tc.args, &stdout, &stderr); code != 2 {
				t.Errorf("exit code %d, want 2 (stderr %q)", code, stderr.String())
			}
			if out := stdout.String() + stderr.String(); !strings.Contains(out, tc.contains) {
				t.Errorf("output %q does not contain %q", out, tc.contains)
			}
		})
	}
}
