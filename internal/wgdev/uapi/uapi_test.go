package uapi

import (
	"bytes"
	"flag"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/testenv"
	"github.com/wirefleet/wirefleet/internal/wgdev"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var opts = cmpopts.EquateComparable(netip.Prefix{}, netip.AddrPort{})

func key(b byte) wirefleet.Key {
	var k wirefleet.Key
	for i := range k {
		k[i] = b
	}
	return k
}

// getOutput is what wireguard-go answers to get=1 (the layout of a real device's answer), followed by the errno line of the socket protocol.
const getOutput = `private_key=e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a
listen_port=12912
public_key=b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33
preshared_key=188515093e952f5f22e865cef3012e72f8b5f0b598ac0309d5dacce3b70fcf52
allowed_ip=198.51.100.4/32
endpoint=[2001:db8:23::33%2]:51820
last_handshake_time_sec=1700000000
last_handshake_time_nsec=5000
tx_bytes=38333
rx_bytes=2224
persistent_keepalive_interval=25
protocol_version=1
public_key=58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceb7e19321376
preshared_key=0000000000000000000000000000000000000000000000000000000000000000
endpoint=203.0.113.19:3233
last_handshake_time_sec=0
last_handshake_time_nsec=0
tx_bytes=0
rx_bytes=0
persistent_keepalive_interval=0
allowed_ip=198.51.100.6/32
allowed_ip=2001:db8::/64
errno=0

`

func TestParse(t *testing.T) {
	st, err := Parse(strings.NewReader(getOutput))
	if err != nil {
		t.Fatal(err)
	}
	psk := wirefleet.MustParseKey("GIUVCT6VL18i6GXO8wEucvi18LWYrAMJ1drM47cPz1I=")
	want := State{
		PrivateKey: wirefleet.MustParseKey("6EtabScXwQA6E7QxVwNT26ypFGzxUMX4V1aA/rpSAno="),
		ListenPort: 12912,
		Peers: []wgdev.PeerStatus{
			{
				Peer: wgdev.Peer{
					PublicKey:           wirefleet.MustParseKey("uFmW/sycfx/G0lcqdu2hHVm80gvo5UOxXOS9hajnWjM="),
					PresharedKey:        &psk,
					Endpoint:            netip.MustParseAddrPort("[2001:db8:23::33%2]:51820"),
					AllowedIPs:          []netip.Prefix{netip.MustParsePrefix("198.51.100.4/32")},
					PersistentKeepalive: 25 * time.Second,
				},
				LastHandshake: time.Unix(1700000000, 5000),
				TxBytes:       38333, RxBytes: 2224,
			},
			{
				Peer: wgdev.Peer{
					PublicKey:  wirefleet.MustParseKey("WEAuaVuhdyscyTCXVfBDJR6nf9zxD75jmJzrfhkyE3Y="),
					Endpoint:   netip.MustParseAddrPort("203.0.113.19:3233"),
					AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.51.100.6/32"), netip.MustParsePrefix("2001:db8::/64")},
				},
			},
		},
	}
	if diff := cmp.Diff(want, st, opts); diff != "" {
		t.Fatalf("Parse (-want +got):\n%s", diff)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"no equals", "listen_port\n", "not key=value"},
		{"bad port", "listen_port=70000\n", "listen_port"},
		{"short key", "public_key=abcd\n", "want 64 hex digits"},
		{"not hex", "public_key=" + strings.Repeat("zz", 32) + "\n", "not hex"},
		{"bad endpoint", "public_key=" + strings.Repeat("ab", 32) + "\nendpoint=nowhere\n", "endpoint"},
		{"bad prefix", "public_key=" + strings.Repeat("ab", 32) + "\nallowed_ip=1.2.3.4/40\n", "allowed_ip"},
		{"negative bytes", "public_key=" + strings.Repeat("ab", 32) + "\nrx_bytes=-1\n", "rx_bytes"},
		{"nsec too big", "public_key=" + strings.Repeat("ab", 32) + "\nlast_handshake_time_nsec=1000000000\n", "below one second"},
		{"protocol", "public_key=" + strings.Repeat("ab", 32) + "\nprotocol_version=2\n", "protocol_version"},
		{"errno", "errno=-22\n\n", "errno=-22"},
		{"long line", "private_key=" + strings.Repeat("a", 5000) + "\n", "longer than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse(%q) = %v, want an error containing %q", tc.in, err, tc.want)
			}
		})
	}
}

// TestAppendSet pins the set body with a golden file: new prefixes before stale ones, no
// replace_allowed_ips (which would leave the peer without allowed IPs for a moment), and
// removals last.
func TestAppendSet(t *testing.T) {
	psk := key(7)
	priv := key(1)
	port := 51820
	changes := []Change{
		{
			Peer: wgdev.Peer{
				PublicKey: key(2), PresharedKey: &psk,
				Endpoint:            netip.MustParseAddrPort("[2001:db8::1]:51820"),
				AllowedIPs:          []netip.Prefix{netip.MustParsePrefix("198.18.0.2/32"), netip.MustParsePrefix("2001:db8::2/128")},
				PersistentKeepalive: 25 * time.Second,
			},
			Stale: []netip.Prefix{netip.MustParsePrefix("198.18.0.99/32")},
		},
		{Peer: wgdev.Peer{PublicKey: key(3), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.18.1.7/24")}}},
	}
	got := AppendSet(nil, Interface{PrivateKey: &priv, ListenPort: &port}, changes, []wirefleet.Key{key(4)})
	golden(t, "set.golden", got)
	if bytes.Contains(got, []byte("replace_allowed_ips")) {
		t.Error("set body replaces allowed IPs: that opens a window with none")
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	testenv.Golden(t, filepath.Join("testdata", name), got, *update)
}

// FuzzParse: the get output comes from a socket anyone with root can serve. Parse must
// never panic, and what it accepts must survive a round trip through AppendSet.
func FuzzParse(f *testing.F) {
	f.Add(getOutput)
	f.Add("")
	f.Add("errno=0\n\n")
	f.Add("public_key=" + strings.Repeat("0", 64) + "\nallowed_ip=::/0\nendpoint=[::1]:1\n")
	f.Add("listen_port=1\nfwmark=4294967295\nunknown=x\n")
	f.Fuzz(func(t *testing.T, in string) {
		st, err := Parse(strings.NewReader(in))
		if err != nil {
			return
		}
		changes := make([]Change, len(st.Peers))
		for i, p := range st.Peers {
			changes[i] = Change{Peer: p.Peer}
		}
		body := AppendSet(nil, Interface{}, changes, nil)
		again, err := Parse(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("set body of an accepted state does not parse: %v\n%s", err, body)
		}
		if len(again.Peers) != len(st.Peers) {
			t.Fatalf("round trip: %d peers, then %d", len(st.Peers), len(again.Peers))
		}
		for i := range st.Peers {
			if again.Peers[i].PublicKey != st.Peers[i].PublicKey || len(again.Peers[i].AllowedIPs) != len(st.Peers[i].AllowedIPs) {
				t.Fatalf("round trip changed peer %d: %+v -> %+v", i, st.Peers[i], again.Peers[i])
			}
		}
	})
}

// BenchmarkParse10k: the get answer of a device with 10k peers.
func BenchmarkParse10k(b *testing.B) {
	var s strings.Builder
	s.WriteString("private_key=" + strings.Repeat("ab", 32) + "\nlisten_port=51820\n")
	for i := range 10000 {
		fmt.Fprintf(&s, "public_key=%064x\npreshared_key=%064x\nprotocol_version=1\nendpoint=203.0.113.%d:51820\n", i+1, 0, i%250)
		fmt.Fprintf(&s, "last_handshake_time_sec=1700000000\nlast_handshake_time_nsec=1\ntx_bytes=%d\nrx_bytes=%d\npersistent_keepalive_interval=25\n", i*100, i*70)
		fmt.Fprintf(&s, "allowed_ip=198.18.%d.%d/32\nallowed_ip=2001:db8::%x/128\n", i>>8, i&255, i)
	}
	s.WriteString("errno=0\n\n")
	in := s.String()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		st, err := ParseString(in)
		if err != nil || len(st.Peers) != 10000 {
			b.Fatalf("%d peers, %v", len(st.Peers), err)
		}
	}
}
