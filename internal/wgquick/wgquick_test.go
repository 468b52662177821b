package wgquick

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func pfx(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestParseEstate(t *testing.T) {
	f, err := os.Open("testdata/estate.conf")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Interface: Interface{
			PrivateKey: wirefleet.MustParseKey("yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="),
			Addresses:  pfx("198.51.100.1/24", "2001:db8:1::1/64", "203.0.113.1/24"),
			ListenPort: 51820,
			Extra: []KeyValue{
				{Key: "PostUp", Value: "iptables -A FORWARD -i %i -j ACCEPT", Line: 7},
				{Key: "SaveConfig", Value: "false", Line: 8},
			},
		},
		Peers: []Peer{
			{
				Name:         "laptop",
				PublicKey:    wirefleet.MustParseKey("xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="),
				PresharedKey: wirefleet.MustParseKey("FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE="),
				AllowedIPs:   pfx("198.51.100.2/32", "2001:db8:1::2/128"),
				Line:         11,
			},
			{
				Name:                "phone",
				PublicKey:           wirefleet.MustParseKey("TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0="),
				AllowedIPs:          pfx("198.51.100.3/32"),
				Endpoint:            "192.0.2.7:51820",
				PersistentKeepalive: 25,
				Line:                16,
			},
			{
				PublicKey:  wirefleet.MustParseKey("gN65BkIKy1eCE9pP1wdc8ROUtkHLF2PfAqYdyYBz6EA="),
				AllowedIPs: pfx("198.51.100.4/32"),
				Line:       23,
			},
		},
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
}

func TestParseErrors(t *testing.T) {
	const k = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
	tests := []struct {
		name, in, want string
	}{
		{"no interface", "[Peer]\nPublicKey = " + k + "\n", "no [Interface] section"},
		{"key outside section", "ListenPort = 1\n", "line 1: ListenPort is outside any section"},
		{"bad section", "[Interface]\n[Foo]\n", "line 2: unknown section [Foo]"},
		{"unclosed header", "[Interface\n", "line 1: section header"},
		{"two interfaces", "[Interface]\n[Interface]\n", "line 2: second [Interface]"},
		{"not kv", "[Interface]\nhello\n", `line 2: "hello" is not a key = value line`},
		{"bad key", "[Interface]\nPrivateKey = abc\n", "line 2: PrivateKey: key \"abc\" is not valid base64"},
		{"bad address", "[Interface]\nAddress = 198.51.100.300/24\n", "line 2: Address: \"198.51.100.300/24\" is not a CIDR"},
		{"bad port", "[Interface]\nListenPort = 70000\n", "line 2: ListenPort: \"70000\" is not a number between 0 and 65535"},
		{"peer without key", "[Interface]\n[Peer]\nAllowedIPs = 198.51.100.2/32\n", "line 2: [Peer] has no PublicKey"},
		{"duplicate peer", "[Interface]\n[Peer]\nPublicKey = " + k + "\n[Peer]\nPublicKey = " + k + "\n", "line 4: peer " + k + " is already defined on line 2"},
		{"bad endpoint", "[Interface]\n[Peer]\nPublicKey = " + k + "\nEndpoint = nohost\n", "line 4: Endpoint \"nohost\" is not host:port"},
		{"mapped", "[Interface]\nAddress = ::ffff:192.0.2.1/128\n", "IPv4-mapped"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("Parse succeeded, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if k := wirefleet.KindOf(err); k != wirefleet.KindInvalid {
				t.Errorf("kind %s, want invalid", k)
			}
		})
	}
}

func TestRenderGolden(t *testing.T) {
	f, err := os.Open("testdata/estate.conf")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "estate.rendered.conf", cfg.Render())
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	testenv.Golden(t, filepath.Join("testdata", name), got, *update)
}

func TestParseLarge(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("[Interface]\nAddress = 198.18.0.1/15\n")
	const n = 20000
	for i := 0; i < n; i++ {
		var k wirefleet.Key
		k[0], k[1], k[2] = byte(i), byte(i>>8), 1
		a := netip.AddrFrom4([4]byte{198, 18, byte((i + 2) >> 8), byte(i + 2)})
		b.WriteString("[Peer]\nPublicKey = " + k.String() + "\nAllowedIPs = " + a.String() + "/32\n")
	}
	cfg, err := Parse(&b)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Peers) != n {
		t.Fatalf("got %d peers, want %d", len(cfg.Peers), n)
	}
}

// FuzzParse feeds arbitrary bytes to the parser: it must never panic, and whatever it
// accepts must render to a config that parses back to the same thing.
func FuzzParse(f *testing.F) {
	seed, _ := os.ReadFile("testdata/estate.conf")
	f.Add(string(seed))
	f.Add("[Interface]\nAddress=192.0.2.1\n[Peer]\nPublicKey=xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\nAllowedIPs=0.0.0.0/0,::/0\n")
	f.Add("\ufeff[interface]\nDNS = 192.0.2.53, example.org\nMTU=1420\n")
	f.Add("[Interface]\n# Name = x\n[Peer]\n")
	f.Add("[Interface]\n[Peer]\n# Name = a\rb\nPublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\n")
	f.Fuzz(func(t *testing.T, in string) {
		cfg, err := Parse(strings.NewReader(in))
		if err != nil {
			if wirefleet.KindOf(err) != wirefleet.KindInvalid {
				t.Fatalf("error %v has kind %s, want invalid", err, wirefleet.KindOf(err))
			}
			return
		}
		out := cfg.Render()
		again, err := Parse(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("rendered config does not parse: %v\n%s", err, out)
		}
		ignore := cmpopts.IgnoreFields(Peer{}, "Line")
		ignoreKV := cmpopts.IgnoreFields(KeyValue{}, "Line")
		if diff := cmp.Diff(cfg, again, ignore, ignoreKV, cmpopts.EquateEmpty(), cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
			t.Fatalf("round trip differs (-first +second):\n%s\nrendered:\n%s", diff, out)
		}
	})
}
