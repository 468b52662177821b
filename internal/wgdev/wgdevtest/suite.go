package wgdevtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/wgdev"
)

// Open makes a fresh, empty device for one subtest and arranges its cleanup.
type Open func(t *testing.T) wgdev.Device

// Run is the conformance suite of the wgdev.Device port: every backend runs it, so that the
// layers above can rely on the same semantics whatever the machine offers. Each subtest
// opens its own device. An attached device (Info.Backend "attach") must keep its key, port
// and addresses on Configure; every other backend must change them in place.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(t *testing.T, d wgdev.Device)
	}{
		{"Empty", testEmpty},
		{"AddPeers", testAddPeers},
		{"BulkApply", testBulkApply},
		{"UpsertKeepsOthers", testUpsertKeepsOthers},
		{"UpdateAllowedIPsNoWindow", testUpdateAllowedIPs},
		{"Remove", testRemove},
		{"RemoveUnknown", testRemoveUnknown},
		{"PresharedKey", testPresharedKey},
		{"Keepalive", testKeepalive},
		{"Endpoint", testEndpoint},
		{"UpsertAndRemoveInOneApply", testUpsertAndRemove},
		{"ConcurrentApply", testConcurrentApply},
		{"Configure", testConfigure},
		{"Info", testInfo},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := open(t)
			tc.fn(t, d)
		})
	}
}

var cmpOpts = []cmp.Option{cmpopts.EquateComparable(netip.Prefix{}, netip.AddrPort{}, netip.Addr{}), cmpopts.EquateEmpty()}

// NewKey returns a fresh random public key.
func NewKey(t testing.TB) wirefleet.Key {
	t.Helper()
	k, err := wirefleet.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k.PublicKey()
}

// Host returns the /32 of 198.18.0.0/15 numbered i (i < 2^17).
func Host(i int) netip.Prefix {
	a := netip.AddrFrom4([4]byte{198, 18 + byte(i>>16&1), byte(i >> 8), byte(i)})
	return netip.PrefixFrom(a, 32)
}

// Host6 returns the /128 of 2001:db8::/32 numbered i.
func Host6(i int) netip.Prefix {
	b := netip.MustParseAddr("2001:db8::").As16()
	b[12], b[13], b[14], b[15] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
	return netip.PrefixFrom(netip.AddrFrom16(b), 128)
}

// MakePeers returns n peers with fresh keys, numbered from first, each with one IPv4 and
// one IPv6 host route.
func MakePeers(t testing.TB, first, n int) []wgdev.Peer {
	t.Helper()
	out := make([]wgdev.Peer, n)
	for i := range out {
		out[i] = wgdev.Peer{PublicKey: NewKey(t), AllowedIPs: []netip.Prefix{Host(first + i), Host6(first + i)}}
	}
	return out
}

// Canon returns the configuration part of peers, sorted by key with normalised allowed
// IPs, for comparison with what was applied.
func Canon[P wgdev.Peer | wgdev.PeerStatus](peers []P) []wgdev.Peer {
	out := make([]wgdev.Peer, 0, len(peers))
	for _, p := range peers {
		var c wgdev.Peer
		switch v := any(p).(type) {
		case wgdev.Peer:
			c = v
		case wgdev.PeerStatus:
			c = v.Peer
		}
		c.AllowedIPs = wgdev.Normalize(c.AllowedIPs)
		c.PersistentKeepalive = time.Duration(wgdev.KeepaliveSeconds(c.PersistentKeepalive)) * time.Second
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b wgdev.Peer) int { return slices.Compare(a.PublicKey[:], b.PublicKey[:]) })
	return out
}

// WantPeers fails the test unless the device holds exactly want.
func WantPeers(t testing.TB, d wgdev.Device, want []wgdev.Peer) {
	t.Helper()
	got, err := d.Peers(context.Background())
	if err != nil {
		t.Fatalf("Peers: %v", err)
	}
	if diff := cmp.Diff(Canon(want), Canon(got), cmpOpts...); diff != "" {
		t.Fatalf("device peers (-want +got):\n%s", diff)
	}
}

func apply(t testing.TB, d wgdev.Device, upsert []wgdev.Peer, remove ...wirefleet.Key) {
	t.Helper()
	if err := d.ApplyPeers(context.Background(), upsert, remove); err != nil {
		t.Fatalf("ApplyPeers(%d upserts, %d removals): %v", len(upsert), len(remove), err)
	}
}

func testEmpty(t *testing.T, d wgdev.Device) {
	WantPeers(t, d, nil)
	apply(t, d, nil)
	WantPeers(t, d, nil)
}

func testAddPeers(t *testing.T, d wgdev.Device) {
	peers := MakePeers(t, 1, 64)
	apply(t, d, peers[:1])
	WantPeers(t, d, peers[:1])
	apply(t, d, peers[1:])
	WantPeers(t, d, peers)
	// Applying the same state again changes nothing.
	apply(t, d, peers)
	WantPeers(t, d, peers)
}

// testBulkApply: one apply that creates many peers (backends may create them in parallel),
// updates existing ones, with keep-alives and preshared keys, and removes others.
func testBulkApply(t *testing.T, d wgdev.Device) {
	old := MakePeers(t, 1, 100)
	apply(t, d, old)
	fresh := MakePeers(t, 1000, 900)
	psk := NewKey(t)
	for i := range fresh {
		if i%3 == 0 {
			fresh[i].PresharedKey = &psk
			fresh[i].PersistentKeepalive = 25 * time.Second
		}
	}
	up := slices.Clone(fresh)
	for i := range 50 { // the first 50 old peers move to new addresses
		p := old[i]
		p.AllowedIPs = []netip.Prefix{Host(5000 + i)}
		up = append(up, p)
		old[i] = p
	}
	var gone []wirefleet.Key
	for _, p := range old[90:] {
		gone = append(gone, p.PublicKey)
	}
	apply(t, d, up, gone...)
	WantPeers(t, d, append(slices.Clone(old[:90]), fresh...))
}

func testUpsertKeepsOthers(t *testing.T, d wgdev.Device) {
	peers := MakePeers(t, 1, 10)
	apply(t, d, peers)
	peers[3].AllowedIPs = append(peers[3].AllowedIPs, netip.MustParsePrefix("203.0.113.0/28"))
	apply(t, d, peers[3:4])
	WantPeers(t, d, peers)
}

// testUpdateAllowedIPs moves one peer's allowed IPs many times while a reader checks that
// it never appears without any: new prefixes must be added before stale ones go.
func testUpdateAllowedIPs(t *testing.T, d wgdev.Device) {
	others := MakePeers(t, 1000, 5)
	p := wgdev.Peer{PublicKey: NewKey(t), AllowedIPs: []netip.Prefix{Host(1)}}
	apply(t, d, append([]wgdev.Peer{p}, others...))

	ctx, cancel := context.WithCancel(context.Background())
	var reads atomic.Int64
	var bad atomic.Value
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			got, err := d.Peers(ctx)
			if err != nil {
				if ctx.Err() == nil {
					bad.Store(fmt.Sprintf("Peers: %v", err))
				}
				return
			}
			reads.Add(1)
			i := slices.IndexFunc(got, func(s wgdev.PeerStatus) bool { return s.PublicKey == p.PublicKey })
			if i < 0 || len(got[i].AllowedIPs) == 0 {
				bad.Store(fmt.Sprintf("read %d: peer seen without allowed IPs (present=%v)", reads.Load(), i >= 0))
				return
			}
		}
	}()
	const rounds = 300
	for i := range rounds {
		// Each round replaces every prefix: the worst case for a window.
		p.AllowedIPs = []netip.Prefix{Host(10 + 2*i), Host6(10 + 2*i), Host(11 + 2*i)}
		apply(t, d, []wgdev.Peer{p})
		if bad.Load() != nil {
			break
		}
	}
	// Let the reader overlap the last updates, then stop it.
	for reads.Load() < 3 && bad.Load() == nil {
		time.Sleep(time.Millisecond)
	}
	cancel()
	wg.Wait()
	if msg := bad.Load(); msg != nil {
		t.Fatal(msg)
	}
	t.Logf("%d updates, %d concurrent reads", rounds, reads.Load())
	WantPeers(t, d, append([]wgdev.Peer{p}, others...))
}

func testRemove(t *testing.T, d wgdev.Device) {
	peers := MakePeers(t, 1, 5)
	apply(t, d, peers)
	apply(t, d, nil, peers[1].PublicKey, peers[3].PublicKey)
	WantPeers(t, d, []wgdev.Peer{peers[0], peers[2], peers[4]})
	// A removed peer's prefixes are free again.
	q := wgdev.Peer{PublicKey: NewKey(t), AllowedIPs: peers[1].AllowedIPs}
	apply(t, d, []wgdev.Peer{q})
	WantPeers(t, d, []wgdev.Peer{peers[0], peers[2], peers[4], q})
}

func testRemoveUnknown(t *testing.T, d wgdev.Device) {
	peers := MakePeers(t, 1, 3)
	apply(t, d, peers)
	apply(t, d, nil, NewKey(t), NewKey(t))
	WantPeers(t, d, peers)
	apply(t, d, nil, peers[0].PublicKey)
	apply(t, d, nil, peers[0].PublicKey) // twice: the second is a no-op
	WantPeers(t, d, peers[1:])
}

func testPresharedKey(t *testing.T, d wgdev.Device) {
	psk, err := wirefleet.GeneratePresharedKey()
	if err != nil {
		t.Fatal(err)
	}
	peers := MakePeers(t, 1, 2)
	peers[0].PresharedKey = &psk
	apply(t, d, peers)
	WantPeers(t, d, peers)
	peers[0].PresharedKey = nil // an upsert without one removes it
	apply(t, d, peers[:1])
	WantPeers(t, d, peers)
}

func testKeepalive(t *testing.T, d wgdev.Device) {
	peers := MakePeers(t, 1, 2)
	peers[0].PersistentKeepalive = 25 * time.Second
	apply(t, d, peers)
	WantPeers(t, d, peers)
	peers[0].PersistentKeepalive = 0
	peers[1].PersistentKeepalive = 1500 * time.Millisecond // rounds up to 2s
	apply(t, d, peers)
	WantPeers(t, d, peers)
	bad := peers[0]
	bad.PersistentKeepalive = 70000 * time.Second
	if err := d.ApplyPeers(context.Background(), []wgdev.Peer{bad}, nil); !wirefleet.IsKind(err, wirefleet.KindInvalid) {
		t.Fatalf("keepalive beyond 65535s: got %v, want a KindInvalid error", err)
	}
}

func testEndpoint(t *testing.T, d wgdev.Device) {
	peers := MakePeers(t, 1, 3)
	peers[0].Endpoint = netip.MustParseAddrPort("192.0.2.7:51820")
	peers[1].Endpoint = netip.MustParseAddrPort("[2001:db8::7]:51821")
	apply(t, d, peers)
	WantPeers(t, d, peers)
	peers[0].Endpoint = netip.MustParseAddrPort("198.51.100.9:4500")
	apply(t, d, peers[:1])
	WantPeers(t, d, peers)
}

func testUpsertAndRemove(t *testing.T, d wgdev.Device) {
	peers := MakePeers(t, 1, 4)
	apply(t, d, peers[:2])
	apply(t, d, peers[2:], peers[0].PublicKey)
	WantPeers(t, d, peers[1:])
	// Invalid input is refused as a whole, leaving the device as it was.
	bad := []wgdev.Peer{peers[0], {AllowedIPs: []netip.Prefix{Host(99)}}}
	if err := d.ApplyPeers(context.Background(), bad, nil); !wirefleet.IsKind(err, wirefleet.KindInvalid) {
		t.Fatalf("peer without key: got %v, want a KindInvalid error", err)
	}
	WantPeers(t, d, peers[1:])
}

func testConcurrentApply(t *testing.T, d wgdev.Device) {
	const workers, each = 16, 12
	var mu sync.Mutex
	var want []wgdev.Peer
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		peers := MakePeers(t, 100+w*each, each)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for i, p := range peers {
				if err := d.ApplyPeers(ctx, []wgdev.Peer{p}, nil); err != nil {
					errs <- err
					return
				}
				// Remove every third peer again, and move every other one's addresses.
				if i%3 == 2 {
					if err := d.ApplyPeers(ctx, nil, []wirefleet.Key{p.PublicKey}); err != nil {
						errs <- err
						return
					}
					continue
				}
				if i%2 == 1 {
					p.AllowedIPs = []netip.Prefix{Host6(100000 + 100*w + i)}
					if err := d.ApplyPeers(ctx, []wgdev.Peer{p}, nil); err != nil {
						errs <- err
						return
					}
				}
				mu.Lock()
				want = append(want, p)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	WantPeers(t, d, want)
}

// freePort finds a UDP port nobody uses right now; Configure then binds it.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		p := 20000 + rand.IntN(30000)
		c, err := net.ListenUDP("udp", &net.UDPAddr{Port: p})
		if err == nil {
			c.Close()
			return p
		}
	}
	t.Fatal("no free UDP port found")
	return 0
}

func testConfigure(t *testing.T, d wgdev.Device) {
	ctx := context.Background()
	before, err := d.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	peers := MakePeers(t, 1, 3)
	apply(t, d, peers)
	priv, err := wirefleet.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	net24 := rand.IntN(256)
	addrs := wgdev.Normalize(nil)
	addrs = append(addrs,
		netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(net24), 1}), 24),
		netip.MustParsePrefix(fmt.Sprintf("fd00:%x::1/64", 0x1000+net24)))
	if err := d.Configure(ctx, wgdev.Interface{PrivateKey: &priv, ListenPort: &port, Addresses: addrs, MTU: 1380}); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	after, err := d.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.Index != before.Index {
		t.Errorf("interface index changed from %d to %d: the link was recreated", before.Index, after.Index)
	}
	want := before
	if before.Backend != "attach" {
		want.PublicKey, want.ListenPort, want.Addresses, want.MTU = priv.PublicKey(), port, addrs, 1380
	}
	if diff := cmp.Diff(want, after, cmpOpts...); diff != "" {
		t.Errorf("Info after Configure (-want +got):\n%s", diff)
	}
	WantPeers(t, d, peers) // Configure never drops peers

	// Zero fields leave everything as it is; a second address change removes the stale one.
	if err := d.Configure(ctx, wgdev.Interface{}); err != nil {
		t.Fatal(err)
	}
	if again, err := d.Info(ctx); err != nil || !cmp.Equal(after, again, cmpOpts...) {
		t.Errorf("empty Configure changed the interface: %+v -> %+v (%v)", after, again, err)
	}
	if before.Backend != "attach" {
		if err := d.Configure(ctx, wgdev.Interface{Addresses: addrs[1:]}); err != nil {
			t.Fatal(err)
		}
		if got, err := d.Info(ctx); err != nil || !cmp.Equal(got.Addresses, addrs[1:], cmpOpts...) {
			t.Errorf("addresses after removing %s: %v (%v)", addrs[0], got.Addresses, err)
		}
	}
}

func testInfo(t *testing.T, d wgdev.Device) {
	info, err := d.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Name == "" || info.Backend == "" {
		t.Errorf("Info lacks name or backend: %+v", info)
	}
	if info.Created.IsZero() || info.Created.After(time.Now()) {
		t.Errorf("Info.Created = %v, want a time in the past", info.Created)
	}
	if info.Backend != "memory" && (info.Index <= 0 || info.MTU <= 0) {
		t.Errorf("Info of a real device lacks index or MTU: %+v", info)
	}
}
