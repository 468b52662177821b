package mesh

import (
	"crypto/ed25519"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wirefleet/wirefleet/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite golden files")

const netYAML = `network:
  sharedKey: YDUBM6FhERePZ4gPlxzAbCN7K61BPjy7HApWYL+P128=
  subnet: 198.51.100.0/24

peers:
  - endPoint: 203.0.113.10:50000
    adminPort: 55555
    wgIp: 198.51.100.1
`

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad(t *testing.T) {
	network := writeFile(t, "network.yaml", netYAML)
	peer := writeFile(t, "peer.yaml", "name: bob\nwgIp: 198.51.100.16\nwgInterface: wg0\n")
	type out struct {
		Name, Iface       string
		WgIP              string
		WgPort, AdminPort int
		Existing          bool
	}
	tests := []struct {
		name string
		peer string
		o    Overrides
		want out
	}{
		{"peer.yaml, reference default ports", peer, Overrides{}, out{"bob", "wg0", "198.51.100.16", 50016, 50516, false}},
		{"flags override peer.yaml", peer, Overrides{WgIP: "198.51.100.21", Name: "charlie", Interface: "wg9", Existing: true},
			out{"charlie", "wg9", "198.51.100.21", 50021, 50521, true}},
		{"a static peer uses its entry's ports", "", Overrides{WgIP: "198.51.100.1", Name: "alice"}, out{"alice", DefaultInterface, "198.51.100.1", 50000, 55555, false}},
		{"explicit ports win", "", Overrides{WgIP: "198.51.100.1", Name: "alice", WgPort: 1000, AdminPort: 1001}, out{"alice", DefaultInterface, "198.51.100.1", 1000, 1001, false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(network, tc.peer, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			got := out{c.Name, c.Interface, c.WgIP.String(), c.WgPort, c.AdminPort, c.Existing}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if c.Subnet != netip.MustParsePrefix("198.51.100.0/24") || len(c.Static) != 1 || len(c.SharedKey) != 32 {
				t.Errorf("network file not read: %+v", c)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	good := writeFile(t, "network.yaml", netYAML)
	tests := []struct {
		name, network, want string
		o                   Overrides
	}{
		{"wg IP outside the subnet", good, "outside the network's subnet", Overrides{WgIP: "192.0.2.1"}},
		{"no wg IP", good, "no wg IP", Overrides{}},
		{"bad wg IP", good, "not an IP address", Overrides{WgIP: "bob"}},
		{"unreadable file", filepath.Join(t.TempDir(), "missing.yaml"), "cannot read", Overrides{WgIP: "198.51.100.2"}},
		{"bad shared key", writeFile(t, "n.yaml", strings.Replace(netYAML, "YDUBM6Fh", "!!", 1)), "sharedKey must be 32 bytes", Overrides{WgIP: "198.51.100.2"}},
		{"bad subnet", writeFile(t, "n.yaml", strings.Replace(netYAML, "198.51.100.0/24", "nope", 1)), "network.subnet", Overrides{WgIP: "198.51.100.2"}},
		{"bad endpoint", writeFile(t, "n.yaml", strings.Replace(netYAML, "203.0.113.10:50000", "203.0.113.10", 1)), "endPoint", Overrides{WgIP: "198.51.100.2"}},
		{"not yaml", writeFile(t, "n.yaml", "network: [\n"), "not valid YAML", Overrides{WgIP: "198.51.100.2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.network, "", tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestIdentityAndBindingsPersist(t *testing.T) {
	dir := t.TempDir()
	id1, err := LoadIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, identityFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity file mode %v, err %v; want 0600", fi.Mode().Perm(), err)
	}
	id2, _ := LoadIdentity(dir)
	if !id1.Equal(id2) {
		t.Fatal("identity changed across loads")
	}
	b, _ := OpenBindings(dir)
	ip := netip.MustParseAddr("198.51.100.5")
	other, _ := LoadIdentity(t.TempDir())
	if ok, err := b.Claim(ip, id1.Public().(ed25519.PublicKey)); !ok || err != nil {
		t.Fatalf("first claim refused: %v", err)
	}
	b2, _ := OpenBindings(dir)
	if ok, _ := b2.Claim(ip, other.Public().(ed25519.PublicKey)); ok {
		t.Fatal("takeover accepted after reload")
	}
	if was, err := ForgetOffline(dir, ip); !was || err != nil {
		t.Fatalf("ForgetOffline = %v, %v", was, err)
	}
	b3, _ := OpenBindings(dir)
	if ok, _ := b3.Claim(ip, other.Public().(ed25519.PublicKey)); !ok {
		t.Fatal("claim refused after forget")
	}
}

func TestStatusTableGolden(t *testing.T) {
	via, rtt := "198.51.100.10", 1.25
	st := Status{Node: StatusNode{Name: "alpha", WgIP: "198.51.100.1", PublicKey: "KEY-A", Identity: "ID-A"},
		Peers: []StatusPeer{
			{Name: "beta", WgIP: "198.51.100.2", Identity: "ID-B", PublicKey: "KEY-B", Path: PathNAT, Endpoint: "203.0.113.12:50002", LastSeenS: 2.2, RTTms: &rtt},
			{Name: "charlie", WgIP: "198.51.100.3", Identity: "ID-C", PublicKey: "KEY-C", Path: PathRelay, Via: &via, LastSeenS: 4},
		}}
	var b strings.Builder
	if err := WriteTable(&b, st); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "status.golden", b.String())
	// the JSON shape is the contract of `mesh status -o json`
	js, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "status.json.golden", string(js)+"\n")
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	testenv.Golden(t, filepath.Join("testdata", name), []byte(got), *update)
}
