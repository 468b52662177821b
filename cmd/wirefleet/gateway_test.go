package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestGatewayCommandErrors(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		code     int
		contains string
	}{
		{"help", nil, []string{"gateway", "-h"}, 0, "-wg-backend"},
		{"unknown flag", nil, []string{"gateway", "-bogus"}, 2, "flag provided but not defined: -bogus"},
		{"stray argument", nil, []string{"gateway", "extra"}, 2, `gateway takes no arguments, got ["extra"]`},
		{"bad backend", nil, []string{"gateway", "-wg-backend", "dpdk"}, 2, `-wg-backend "dpdk": want one of auto, kernel, userspace, attach`},
		{"bad address", nil, []string{"gateway", "-wg-address", "198.51.100.1"}, 2, `-wg-address "198.51.100.1": want a CIDR`},
		{"bad managed prefix", nil, []string{"gateway", "-wg-backend", "attach", "-wg-managed-prefix", "x"}, 2, `-wg-managed-prefix "x": want a CIDR`},
		{"bad port", nil, []string{"gateway", "-wg-port", "70000"}, 2, "-wg-port 70000: want a UDP port from 0 to 65535"},
		{"bad listen from env", map[string]string{"LISTEN": "localhost"}, []string{"gateway"}, 2, `-listen "localhost": want host:port`},
		{"flag beats env", map[string]string{"WG_DEVICE": "wg0"}, []string{"gateway", "-wg-device", "this-name-is-far-too-long"}, 2, `-wg-device "this-name-is-far-too-long"`},
		{"bad device from env", map[string]string{"WG_DEVICE": "a/b"}, []string{"gateway"}, 2, `-wg-device "a/b"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tc.code, stderr.String())
			}
			if out := stdout.String() + stderr.String(); !strings.Contains(out, tc.contains) {
				t.Errorf("output %q does not contain %q", out, tc.contains)
			}
		})
	}
}
