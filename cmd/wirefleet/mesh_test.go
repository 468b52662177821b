package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMeshCommandErrors(t *testing.T) {
	dir := t.TempDir()
	network := filepath.Join(dir, "network.yaml")
	if err := os.WriteFile(network, []byte("network:\n  sharedKey: YDUBM6FhERePZ4gPlxzAbCN7K61BPjy7HApWYL+P128=\n  subnet: 198.51.100.0/24\npeers: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badKey := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badKey, []byte("network:\n  sharedKey: nope\n  subnet: 198.51.100.0/24\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"no network file", []string{"mesh"}, 2, "-c network.yaml is required"},
		{"stray argument", []string{"mesh", "-c", network, "extra"}, 2, "unexpected argument"},
		{"bad backend", []string{"mesh", "-c", network, "-a", "198.51.100.1", "-backend", "dpdk"}, 2, "-backend"},
		{"wg IP outside the subnet", []string{"mesh", "-c", network, "-a", "192.0.2.1"}, 1, "outside the network's subnet"},
		{"bad shared key", []string{"mesh", "-c", badKey, "-a", "198.51.100.1"}, 1, "sharedKey must be 32 bytes"},
		{"unreadable file", []string{"mesh", "-c", filepath.Join(dir, "missing.yaml"), "-a", "198.51.100.1"}, 1, "cannot read"},
		{"status: bad output", []string{"mesh", "status", "-o", "xml"}, 2, "want table or json"},
		{"status: not running", []string{"mesh", "status", "--state-dir", dir}, 1, "no mesh node is running"},
		{"forget: no address", []string{"mesh", "forget", "--state-dir", dir}, 2, "exactly one wg IP"},
		{"forget: bad address", []string{"mesh", "forget", "--state-dir", dir, "x"}, 2, "not an IP address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.code || !strings.Contains(stderr.String(), tc.contains) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, stderr.String(), tc.code, tc.contains)
			}
			if tc.code == 1 && strings.Count(strings.TrimSpace(stderr.String()), "\n") != 0 {
				t.Errorf("startup error is not one line: %q", stderr.String())
			}
		})
	}
}

func TestMeshForgetOffline(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bindings.json"), []byte(`{"198.51.100.7": "obCZ/9i38HZ30y+teFofHfzwrXZoKYj5cGvB1AWk6rg="}`), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"mesh", "forget", "--state-dir", dir, "198.51.100.7"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "released 198.51.100.7") {
		t.Fatalf("stdout %q", stdout.String())
	}
	b, _ := os.ReadFile(filepath.Join(dir, "bindings.json"))
	if strings.Contains(string(b), "198.51.100.7") {
		t.Fatalf("binding still in the state file: %s", b)
	}
}

func TestMeshInstall(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"mesh", "install", "--", "-c", "/etc/wf/net.yaml", "-n", "alpha"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{"ExecStart=/usr/local/bin/wirefleet mesh -c /etc/wf/net.yaml -n alpha", "StateDirectory=wirefleet/mesh", "[Install]"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("unit lacks %q:\n%s", want, stdout.String())
		}
	}
}
