package control_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/control"
	"github.com/wirefleet/wirefleet/internal/oplog"
	"github.com/wirefleet/wirefleet/internal/store/sqlite"
)

// clock is a settable fake clock.
type clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	svc   *control.Service
	st    *sqlite.Store
	clock *clock
	path  string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	path := filepath.Join(t.TempDir(), "wirefleet.db")
	st, err := sqlite.Open(context.Background(), path, sqlite.Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := control.New(st, control.Options{Now: c.Now, Rand: rand.New(rand.NewPCG(1, 2))})
	return &env{svc: svc, st: st, clock: c, path: path}
}

var ctx = context.Background()

func mustNetwork(t testing.TB, e *env, in control.NetworkInput) wirefleet.Network {
	t.Helper()
	n, err := e.svc.CreateNetwork(ctx, in)
	if err != nil {
		t.Fatalf("CreateNetwork: %v", err)
	}
	return n
}

func dual(name string) control.NetworkInput {
	return control.NetworkInput{
		Name:     name,
		IPv4:     netip.MustParsePrefix("198.51.100.1/24"),
		IPv6:     netip.MustParsePrefix("2001:db8:1::1/64"),
		Endpoint: "vpn.example.net",
	}
}

func key(i int) wirefleet.Key {
	var k wirefleet.Key
	k[0], k[1], k[2], k[31] = byte(i), byte(i>>8), byte(i>>16), 0x55
	return k
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func wantKind(t testing.TB, err error, k wirefleet.Kind) {
	t.Helper()
	if !wirefleet.IsKind(err, k) {
		t.Fatalf("error = %v (kind %s), want kind %s", err, wirefleet.KindOf(err), k)
	}
}

var (
	cmpAddr   = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })
	cmpPrefix = cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })
	cmpDomain = []cmp.Option{cmpAddr, cmpPrefix, cmpopts.EquateEmpty()}
)

func TestCreateNetwork(t *testing.T) {
	e := newEnv(t)
	n := mustNetwork(t, e, dual("office"))
	if n.ListenPort != 51820 || n.MTU != 1420 || n.Keepalive != 25 || n.Allocation != wirefleet.AllocSequential {
		t.Errorf("defaults not applied: %+v", n)
	}
	if !n.PrivateKey.IsSet() || n.PrivateKey.Reveal().PublicKey() != n.PublicKey {
		t.Fatalf("network key pair is not consistent")
	}
	b, _ := json.Marshal(n)
	if strings.Contains(string(b), n.PrivateKey.Reveal().String()) || strings.Contains(fmt.Sprintf("%+v %#v %v", n, n, n), n.PrivateKey.Reveal().String()) {
		t.Errorf("the network private key leaks through JSON or fmt: %s", b)
	}
	got, err := e.svc.GetNetwork(ctx, "office")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(n, got, cmpDomain...); diff != "" {
		t.Errorf("GetNetwork (-created +got):\n%s", diff)
	}
	_, err = e.svc.CreateNetwork(ctx, dual("office"))
	wantKind(t, err, wirefleet.KindConflict)

	bad := func(mod func(*control.NetworkInput)) control.NetworkInput {
		in := dual("bad")
		mod(&in)
		return in
	}
	tests := []struct {
		name string
		in   control.NetworkInput
		want string // part of the message: the field and value
	}{
		{"upper-case name", bad(func(in *control.NetworkInput) { in.Name = "Office" }), `"Office"`},
		{"long name", bad(func(in *control.NetworkInput) { in.Name = "abcdefghijklmnop" }), "abcdefghijklmnop"},
		{"no address", bad(func(in *control.NetworkInput) { in.IPv4, in.IPv6 = netip.Prefix{}, netip.Prefix{} }), "ipv4 or ipv6"},
		{"network address", bad(func(in *control.NetworkInput) { in.IPv4 = netip.MustParsePrefix("198.51.100.0/24") }), "198.51.100.0/24"},
		{"broadcast", bad(func(in *control.NetworkInput) { in.IPv4 = netip.MustParsePrefix("198.51.100.255/24") }), "broadcast"},
		{"/31", bad(func(in *control.NetworkInput) { in.IPv4 = netip.MustParsePrefix("198.51.100.1/31") }), "/31"},
		{"v6 in ipv4", bad(func(in *control.NetworkInput) { in.IPv4 = netip.MustParsePrefix("2001:db8::1/64") }), "ipv4"},
		{"mtu", bad(func(in *control.NetworkInput) { in.MTU = 100 }), "mtu 100"},
		{"allocation", bad(func(in *control.NetworkInput) { in.Allocation = "lottery" }), "lottery"},
		{"endpoint with port", bad(func(in *control.NetworkInput) { in.Endpoint = "vpn.example.net:51820" }), "vpn.example.net:51820"},
		{"keepalive", bad(func(in *control.NetworkInput) { k := -1; in.Keepalive = &k }), "persistent_keepalive -1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.CreateNetwork(ctx, tc.in)
			wantKind(t, err, wirefleet.KindInvalid)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestUpdateDeleteNetwork(t *testing.T) {
	e := newEnv(t)
	mustNetwork(t, e, dual("office"))
	if _, err := e.svc.CreatePeer(ctx, control.PeerInput{Network: "office", PublicKey: key(1)}); err != nil {
		t.Fatal(err)
	}
	mtu, port := 1380, uint16(51000)
	n, err := e.svc.UpdateNetwork(ctx, "office", control.NetworkUpdate{MTU: &mtu, ListenPort: &port})
	if err != nil || n.MTU != 1380 || n.ListenPort != 51000 {
		t.Fatalf("UpdateNetwork = %+v, %v", n, err)
	}
	// Re-addressing that would orphan the peer (198.51.100.2) is refused; one that keeps it is fine.
	p := netip.MustParsePrefix("203.0.113.1/24")
	_, err = e.svc.UpdateNetwork(ctx, "office", control.NetworkUpdate{IPv4: &p})
	wantKind(t, err, wirefleet.KindConflict)
	p = netip.MustParsePrefix("198.51.100.1/25")
	if _, err := e.svc.UpdateNetwork(ctx, "office", control.NetworkUpdate{IPv4: &p}); err != nil {
		t.Fatal(err)
	}
	// The pool follows the new prefix: the next peer is allocated within /25.
	peer, err := e.svc.CreatePeer(ctx, control.PeerInput{Network: "office", PublicKey: key(2)})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(addrs("198.51.100.3", "2001:db8:1::3"), peer.Addresses, cmpAddr); diff != "" {
		t.Errorf("after re-address (-want +got):\n%s", diff)
	}
	_, err = e.svc.UpdateNetwork(ctx, "nope", control.NetworkUpdate{MTU: &mtu})
	wantKind(t, err, wirefleet.KindNotFound)
	if err := e.svc.DeleteNetwork(ctx, "office"); err != nil {
		t.Fatal(err)
	}
	wantKind(t, e.svc.DeleteNetwork(ctx, "office"), wirefleet.KindNotFound)
	// Recreated with the same name: a fresh pool, no stale reservations.
	mustNetwork(t, e, dual("office"))
	peer, err = e.svc.CreatePeer(ctx, control.PeerInput{Network: "office", PublicKey: key(3)})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(addrs("198.51.100.2", "2001:db8:1::2"), peer.Addresses, cmpAddr); diff != "" {
		t.Errorf("after recreate (-want +got):\n%s", diff)
	}
}

func TestPeerAllocation(t *testing.T) {
	e := newEnv(t)
	in := dual("small")
	in.IPv4 = netip.MustParsePrefix("192.0.2.1/29") // .2-.6 usable: 5 peers
	mustNetwork(t, e, in)
	create := func(i int, static ...string) (wirefleet.Peer, error) {
		return e.svc.CreatePeer(ctx, control.PeerInput{Network: "small", PublicKey: key(i), Addresses: addrs(static...)})
	}
	p1, err := create(1)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(addrs("192.0.2.2", "2001:db8:1::2"), p1.Addresses, cmpAddr); diff != "" {
		t.Errorf("first peer (-want +got):\n%s", diff)
	}
	// A duplicate key fails after allocating: the address is released for the next peer.
	_, err = create(1)
	wantKind(t, err, wirefleet.KindConflict)
	p2, err := create(2)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(addrs("192.0.2.3", "2001:db8:1::3"), p2.Addresses, cmpAddr); diff != "" {
		t.Errorf("after a failed create (-want +got):\n%s", diff)
	}
	staticTests := []struct {
		name string
		addr string
		kind wirefleet.Kind
	}{
		{"taken", "192.0.2.2", wirefleet.KindConflict},
		{"own", "192.0.2.1", wirefleet.KindConflict},
		{"network", "192.0.2.0", wirefleet.KindInvalid},
		{"broadcast", "192.0.2.7", wirefleet.KindInvalid},
		{"outside", "203.0.113.9", wirefleet.KindInvalid},
		{"v6 subnet-router", "2001:db8:1::", wirefleet.KindInvalid},
	}
	for i, tc := range staticTests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := create(100+i, tc.addr)
			wantKind(t, err, tc.kind)
			if !strings.Contains(err.Error(), tc.addr) {
				t.Errorf("error %q does not name %s", err, tc.addr)
			}
		})
	}
	if _, err := create(3, "192.0.2.6"); err != nil {
		t.Fatal(err)
	}
	// .4 and .5 remain; then the pool is exhausted with a clear conflict.
	for i := 4; i <= 5; i++ {
		if _, err := create(i); err != nil {
			t.Fatal(err)
		}
	}
	_, err = create(6)
	wantKind(t, err, wirefleet.KindConflict)
	if !strings.Contains(err.Error(), "no free address") {
		t.Errorf("exhaustion error %q is not clear", err)
	}
	// Deleting frees the address for the next allocation.
	if err := e.svc.DeletePeer(ctx, "small", p2.PublicKey); err != nil {
		t.Fatal(err)
	}
	p7, err := create(7)
	if err != nil {
		t.Fatal(err)
	}
	if p7.Addresses[0] != netip.MustParseAddr("192.0.2.3") {
		t.Errorf("after delete got %v, want 192.0.2.3 again", p7.Addresses)
	}
	// Moving a peer frees its old address.
	if _, err := e.svc.UpdatePeer(ctx, "small", p7.PublicKey, control.PeerUpdate{Addresses: &[]netip.Addr{netip.MustParseAddr("2001:db8:1::99")}}); err != nil {
		t.Fatal(err)
	}
	p8, err := create(8)
	if err != nil {
		t.Fatal(err)
	}
	if p8.Addresses[0] != netip.MustParseAddr("192.0.2.3") {
		t.Errorf("after move got %v, want 192.0.2.3", p8.Addresses)
	}
}

func TestRandomAllocationUnique(t *testing.T) {
	e := newEnv(t)
	in := dual("rnd")
	in.Allocation = wirefleet.AllocRandom
	in.IPv4 = netip.MustParsePrefix("198.51.100.1/26") // 61 usable
	mustNetwork(t, e, in)
	seen := map[netip.Addr]bool{}
	for i := range 61 {
		p, err := e.svc.CreatePeer(ctx, control.PeerInput{Network: "rnd", PublicKey: key(i + 1)})
		if err != nil {
			t.Fatalf("peer %d: %v", i, err)
		}
		for _, a := range p.Addresses {
			if seen[a] {
				t.Fatalf("address %s allocated twice", a)
			}
			seen[a] = true
		}
	}
	_, err := e.svc.CreatePeer(ctx, control.PeerInput{Network: "rnd", PublicKey: key(999)})
	wantKind(t, err, wirefleet.KindConflict)
}

// TestConcurrentCreates: many goroutines through group commit, with failures mixed in,
// never share an address, and the log verifies.
func TestConcurrentCreates(t *testing.T) {
	e := newEnv(t)
	in := dual("busy")
	in.IPv4 = netip.MustParsePrefix("198.18.0.1/16")
	mustNetwork(t, e, in)
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				i := w*20 + j
				_, err := e.svc.CreatePeer(ctx, control.PeerInput{Network: "busy", PublicKey: key(i)})
				if err != nil {
					t.Errorf("create %d: %v", i, err)
				}
				if j%5 == 0 { // a duplicate: fails after allocating
					if _, err := e.svc.CreatePeer(ctx, control.PeerInput{Network: "busy", PublicKey: key(i)}); !wirefleet.IsKind(err, wirefleet.KindConflict) {
						t.Errorf("duplicate %d: %v", i, err)
					}
				}
				if j%7 == 0 {
					if err := e.svc.DeletePeer(ctx, "busy", key(i)); err != nil {
						t.Errorf("delete %d: %v", i, err)
					}
				}
			}
		}()
	}
	wg.Wait()
	page, err := e.svc.ListPeers(ctx, control.PeerFilter{Network: "busy", Limit: control.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[netip.Addr]bool{}
	for _, p := range page.Peers {
		for _, a := range p.Addresses {
			if seen[a] {
				t.Fatalf("address %s used twice", a)
			}
			seen[a] = true
		}
	}
	if want := 16 * 17; len(page.Peers) != want {
		t.Errorf("%d peers, want %d", len(page.Peers), want)
	}
	ops, err := e.svc.OpsAfter(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oplog.Verify(oplog.Head{}, ops); err != nil {
		t.Fatal(err)
	}
}
