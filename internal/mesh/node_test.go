package mesh

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/mesh/wire"
	"github.com/wirefleet/wirefleet/internal/testenv"
	"github.com/wirefleet/wirefleet/internal/wgdev"
	"github.com/wirefleet/wirefleet/internal/wgdev/wgdevtest"
)

// The node's logic runs here on an in-memory network and in-memory devices, driven step by
// step on a fake clock: no root, no sleeps. Admin datagrams to a wg IP are delivered as if
// the tunnel carried them; the e2e tests run the same logic over real tunnels and NATs.

var subnet = netip.MustParsePrefix("198.51.100.0/24")

type dgram struct {
	b        []byte
	src, dst netip.AddrPort
}

type fakeNet struct {
	mu     sync.Mutex // guards q, byAddr, drop
	q      []dgram
	byAddr map[netip.AddrPort]*Node
	drop   func(src, dst netip.AddrPort) bool
}

type fakeConn struct {
	fn       *fakeNet
	wg, outs netip.AddrPort // source address through the tunnel and outside it
}

func (c *fakeConn) WriteTo(b []byte, a net.Addr) (int, error) {
	ap := a.(*net.UDPAddr).AddrPort()
	dst := netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	src := c.outs
	if subnet.Contains(dst.Addr()) {
		src = c.wg
	}
	c.fn.mu.Lock()
	defer c.fn.mu.Unlock()
	c.fn.q = append(c.fn.q, dgram{b: slices.Clone(b), src: src, dst: dst})
	return len(b), nil
}
func (c *fakeConn) ReadFrom([]byte) (int, net.Addr, error) { return 0, nil, net.ErrClosed }
func (c *fakeConn) Close() error                           { return nil }
func (c *fakeConn) LocalAddr() net.Addr                    { return net.UDPAddrFromAddrPort(c.outs) }
func (c *fakeConn) SetDeadline(time.Time) error            { return nil }
func (c *fakeConn) SetReadDeadline(time.Time) error        { return nil }
func (c *fakeConn) SetWriteDeadline(time.Time) error       { return nil }

// pump delivers queued datagrams until none are left.
func (fn *fakeNet) pump(ctx context.Context) {
	for range 10000 {
		fn.mu.Lock()
		if len(fn.q) == 0 {
			fn.mu.Unlock()
			return
		}
		d := fn.q[0]
		fn.q = fn.q[1:]
		n := fn.byAddr[d.dst]
		dropped := fn.drop != nil && fn.drop(d.src, d.dst)
		fn.mu.Unlock()
		if n != nil && !dropped {
			n.deliver(ctx, d.b, d.src)
		}
	}
}

type fakeHost struct{ local []netip.Addr }

func (fakeHost) EnsureRoute(string, netip.Prefix) error { return nil }
func (fakeHost) EnableForwarding(bool) error            { return nil }
func (h fakeHost) LocalAddrs(string, netip.Prefix) []netip.Addr {
	return h.local
}

type testNode struct {
	*Node
	dev *wgdevtest.Memory
	id  ed25519.PrivateKey
}

type world struct {
	t     *testing.T
	ctx   context.Context
	clk   *testenv.Clock
	fn    *fakeNet
	nodes map[string]*testNode
	key   []byte
}

var staticP = StaticPeer{EndPoint: "203.0.113.10:50010", AdminPort: 50510, WgIP: netip.MustParseAddr("198.51.100.10")}

func newWorld(t *testing.T) *world {
	return &world{t: t, ctx: context.Background(), clk: testenv.NewClock(time.Unix(1_800_000_000, 0)),
		fn: &fakeNet{byAddr: map[netip.AddrPort]*Node{}}, nodes: map[string]*testNode{}, key: bytes.Repeat([]byte{3}, 32)}
}

// add makes a node with wg IP 198.51.100.<octet> whose outside address is public.
func (w *world) add(name string, octet byte, public string, id ed25519.PrivateKey) *testNode {
	w.t.Helper()
	wgip := netip.AddrFrom4([4]byte{198, 51, 100, octet})
	wgPort, adminPort := DefaultPorts(wgip)
	cfg := Config{SharedKey: w.key, Subnet: subnet, Static: []StaticPeer{staticP}, Name: name, WgIP: wgip,
		Interface: "wf" + name, WgPort: wgPort, AdminPort: adminPort, StateDir: w.t.TempDir()}
	if id == nil {
		_, id, _ = ed25519.GenerateKey(nil)
	}
	b, err := OpenBindings(cfg.StateDir)
	if err != nil {
		w.t.Fatal(err)
	}
	wgKey, _ := wirefleet.GeneratePrivateKey()
	dev := wgdevtest.NewMemory(cfg.Interface)
	pub := netip.MustParseAddr(public)
	conn := &fakeConn{fn: w.fn, wg: netip.AddrPortFrom(wgip, uint16(adminPort)), outs: netip.AddrPortFrom(pub, uint16(adminPort))}
	n, err := NewNode(cfg, Deps{Device: dev, Host: fakeHost{}, Conn: conn, Identity: id, Bindings: b,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: w.clk.Now, WgPublic: wgKey.PublicKey()})
	if err != nil {
		w.t.Fatal(err)
	}
	w.fn.mu.Lock()
	w.fn.byAddr[conn.wg], w.fn.byAddr[conn.outs] = n, n
	w.fn.mu.Unlock()
	tn := &testNode{Node: n, dev: dev, id: id}
	w.nodes[name] = tn
	return tn
}

// run advances the clock by d in ticks, stepping every node and delivering everything.
func (w *world) run(d time.Duration) {
	for e := time.Duration(0); e < d; e += tick {
		w.clk.Advance(tick)
		names := make([]string, 0, len(w.nodes))
		for name := range w.nodes {
			names = append(names, name)
		}
		slices.Sort(names) // a fixed order: runs are reproducible
		for _, name := range names {
			w.nodes[name].step(w.ctx)
		}
		w.fn.pump(w.ctx)
	}
}

type pathVia struct{ Path, Via string }

func paths(n *testNode) map[string]pathVia {
	out := map[string]pathVia{}
	for _, p := range n.Status().Peers {
		v := ""
		if p.Via != nil {
			v = *p.Via
		}
		out[p.Name] = pathVia{p.Path, v}
	}
	return out
}

func allowed(t *testing.T, n *testNode, peer *testNode) []string {
	t.Helper()
	peers, _ := n.dev.Peers(context.Background())
	for _, p := range peers {
		if p.PublicKey == peer.wgPub {
			var out []string
			for _, a := range p.AllowedIPs {
				out = append(out, a.String())
			}
			return out
		}
	}
	return nil
}

// threeNodes: P public and static; A and B behind NATs (their outside addresses are the
// routers'), each knowing only P.
func threeNodes(t *testing.T) *world {
	w := newWorld(t)
	w.add("p", 10, "203.0.113.10", nil)
	w.add("a", 1, "203.0.113.11", nil)
	w.add("b", 2, "203.0.113.12", nil)
	w.run(3 * time.Second)
	return w
}

func TestBootstrapAndRelay(t *testing.T) {
	w := threeNodes(t)
	a, b, p := w.nodes["a"], w.nodes["b"], w.nodes["p"]
	want := map[string]pathVia{"p": {PathDirect, ""}, "b": {PathRelay, "198.51.100.10"}}
	if diff := cmp.Diff(want, paths(a)); diff != "" {
		t.Errorf("A's paths (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]pathVia{"a": {PathDirect, ""}, "b": {PathDirect, ""}}, paths(p)); diff != "" {
		t.Errorf("P's paths (-want +got):\n%s", diff)
	}
	// P carries B for A: its allowed IPs include B's address
	if diff := cmp.Diff([]string{"198.51.100.2/32", "198.51.100.10/32"}, allowed(t, a, p)); diff != "" {
		t.Errorf("A's allowed IPs for P (-want +got):\n%s", diff)
	}
	if got := allowed(t, a, b); got != nil {
		t.Errorf("A has B as a WireGuard peer already: %v", got)
	}
}

// roam sets where P's device saw a node come from (what a real handshake does).
func roam(t *testing.T, p, n *testNode, ep string) {
	t.Helper()
	peers, _ := p.dev.Peers(context.Background())
	for _, pp := range peers {
		if pp.PublicKey == n.wgPub {
			pp.Peer.Endpoint = netip.MustParseAddrPort(ep)
			if err := p.dev.ApplyPeers(context.Background(), []wgdevPeer{pp.Peer}, nil); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("%s is not a peer of %s", n.cfg.Name, p.cfg.Name)
}

func TestNATPunch(t *testing.T) {
	for _, tc := range []struct {
		name      string
		handshake bool
		want      pathVia
	}{
		{"handshake completes: direct NAT path", true, pathVia{PathNAT, ""}},
		{"no handshake (symmetric NAT): stays relayed", false, pathVia{PathRelay, "198.51.100.10"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := threeNodes(t)
			a, b, p := w.nodes["a"], w.nodes["b"], w.nodes["p"]
			roam(t, p, a, "203.0.113.11:50001")
			roam(t, p, b, "203.0.113.12:50002")
			w.run(2 * time.Second) // P spreads the NAT-visible endpoints; A proposes a punch
			for _, n := range []*testNode{a, b} {
				other := b
				if n == b {
					other = a
				}
				n.mu.Lock()
				c := n.nodes[other.cfg.WgIP].cand
				n.mu.Unlock()
				if c == nil || c.path != PathNAT {
					t.Fatalf("%s has no NAT candidate for %s", n.cfg.Name, other.cfg.Name)
				}
				if want := map[*testNode]string{a: "203.0.113.12:50002", b: "203.0.113.11:50001"}[n]; c.endpoint.String() != want {
					t.Fatalf("%s aims at %s, want %s", n.cfg.Name, c.endpoint, want)
				}
			}
			if tc.handshake {
				w.run(time.Second) // both candidates applied (the higher wg IP 300 ms later)
				a.dev.SetStats(b.wgPub, w.clk.Now(), 1, 1)
				b.dev.SetStats(a.wgPub, w.clk.Now(), 1, 1)
			}
			w.run(candidateWindow + time.Second)
			if got := paths(a)["b"]; got != tc.want {
				t.Errorf("A reaches B over %+v, want %+v", got, tc.want)
			}
			if got := paths(b)["a"]; got != tc.want {
				t.Errorf("B reaches A over %+v, want %+v", got, tc.want)
			}
			wantP := []string{"198.51.100.10/32"}
			if !tc.handshake {
				wantP = []string{"198.51.100.2/32", "198.51.100.10/32"}
			}
			if diff := cmp.Diff(wantP, allowed(t, a, p)); diff != "" {
				t.Errorf("A's allowed IPs for P (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTakeoverRefused(t *testing.T) {
	w := threeNodes(t)
	p, a := w.nodes["p"], w.nodes["a"]
	m := w.add("m", 1, "203.0.113.66", nil) // A's wg IP, another identity
	w.run(3 * time.Second)
	if got := testutil.ToFloat64(p.metrics.refused); got < 1 {
		t.Errorf("refused claims = %v, want ≥ 1", got)
	}
	st := p.Status()
	for _, peer := range st.Peers {
		if peer.WgIP == "198.51.100.1" && peer.PublicKey != a.wgPub.String() {
			t.Errorf("P maps A's wg IP to key %s, not A's", peer.PublicKey)
		}
	}
	if got := allowed(t, p, m); got != nil {
		t.Errorf("P made mallory a peer with %v", got)
	}
	if len(m.Status().Peers) != 0 {
		t.Errorf("mallory has peers: %+v", m.Status().Peers)
	}
	// after an operator forgets the binding on P, a new identity may claim the address
	if ok, err := p.Forget(w.ctx, a.cfg.WgIP); err != nil || !ok {
		t.Fatalf("Forget = %v, %v", ok, err)
	}
	delete(w.nodes, "a")
	w.run(3 * time.Second)
	found := false
	for _, peer := range p.Status().Peers {
		found = found || (peer.WgIP == "198.51.100.1" && peer.PublicKey == m.wgPub.String())
	}
	if !found {
		t.Errorf("after forget, P does not accept the new claim: %+v", p.Status().Peers)
	}
}

func TestClaimOutsideSubnetRefused(t *testing.T) {
	w := threeNodes(t)
	p := w.nodes["p"]
	// a record for 192.0.2.1 (outside the subnet), signed and sealed correctly
	_, id, _ := ed25519.GenerateKey(nil)
	rec := wireNode("evil", netip.MustParseAddr("192.0.2.1"), id)
	before := testutil.ToFloat64(p.metrics.refused)
	p.mu.Lock()
	ns := p.accept(rec, "test")
	p.mu.Unlock()
	if ns != nil || testutil.ToFloat64(p.metrics.refused) != before+1 {
		t.Errorf("claim outside the subnet accepted (or not counted)")
	}
}

func TestDeadPeerWithdrawn(t *testing.T) {
	w := threeNodes(t)
	a, p := w.nodes["a"], w.nodes["p"]
	bIP := netip.MustParseAddrPort("198.51.100.2:50502")
	bOut := netip.MustParseAddrPort("203.0.113.12:50502")
	w.fn.drop = func(src, _ netip.AddrPort) bool { return src == bIP || src == bOut }
	delete(w.nodes, "b") // B stops: no more steps, nothing it sent arrives
	var gone time.Duration
	for e := time.Duration(0); e < 30*time.Second; e += tick {
		w.run(tick)
		if _, ok := paths(a)["b"]; !ok {
			gone = e + tick
			break
		}
	}
	if gone == 0 {
		t.Fatal("A still routes to B 30 s after B went silent")
	}
	// B's last hello arrived at most one hello interval before it stopped
	if bound := DefaultDeadAfter + 2*tick; gone > bound {
		t.Errorf("withdrawn after %v, want ≤ %v", gone, bound)
	}
	if _, ok := paths(p)["b"]; ok {
		t.Error("P still lists B")
	}
	if got := allowed(t, a, p); !slices.Equal(got, []string{"198.51.100.10/32"}) {
		t.Errorf("A's allowed IPs for P = %v, want only P", got)
	}
}

func TestTrafficLinearInDirectPeers(t *testing.T) {
	// steady state: each node sends one hello per direct peer per interval and nothing else
	w := threeNodes(t)
	w.run(10 * time.Second)
	sent := func() float64 {
		s := 0.0
		for _, n := range w.nodes {
			s += testutil.ToFloat64(n.metrics.adminBytes.WithLabelValues("sent"))
		}
		return s
	}
	w.fn.mu.Lock()
	w.fn.q = nil
	w.fn.mu.Unlock()
	before := sent()
	w.run(time.Minute)
	perMin := sent() - before
	// 2 direct links (A-P, B-P) × 2 directions × 12 hellos per minute, ~600 bytes each
	if hellos := 2 * 2 * 12; perMin > float64(hellos*700) {
		t.Errorf("steady-state admin traffic %v bytes/min, want ≤ %d (hellos only)", perMin, hellos*700)
	}
}

type wgdevPeer = wgdev.Peer

func wireNode(name string, ip netip.Addr, id ed25519.PrivateKey) wire.Node {
	k, _ := wirefleet.GeneratePrivateKey()
	n := wire.Node{Name: name, WgIP: ip, WgKey: k.PublicKey(), KeyTime: 1, WgPort: 1, AdminPort: 2}
	n.Sign(id)
	return n
}

func TestControlSocket(t *testing.T) {
	w := threeNodes(t)
	p := w.nodes["p"]
	// unix socket paths are limited to ~108 bytes: use a short directory
	dir, err := os.MkdirTemp("", "wfm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p.cfg.StateDir = dir
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.ServeControl(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	c := NewClient(dir)
	var st Status
	for range 100 {
		if st, err = c.Status(ctx); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	if st.Node.Name != "p" || len(st.Peers) != 2 {
		t.Fatalf("status over the socket: %+v", st)
	}
	was, err := c.Forget(ctx, netip.MustParseAddr("198.51.100.1"))
	if err != nil || !was {
		t.Fatalf("Forget = %v, %v", was, err)
	}
	if _, ok := p.bindings.Lookup(netip.MustParseAddr("198.51.100.1")); ok {
		t.Fatal("binding still there after forget over the socket")
	}
}

// TestForgedPathIgnored: a key holder M, a real direct peer of B, advertises a path to A
// that it does not have (A has gone; M replays A's signed record). B must not route A's
// address to M: A's signed adjacency never listed M.
func TestForgedPathIgnored(t *testing.T) {
	w := threeNodes(t)
	a, b := w.nodes["a"], w.nodes["b"]
	m := w.add("m", 66, "203.0.113.66", nil)
	w.run(3 * time.Second)
	// M and B become direct peers (as a LAN shortcut would make them)
	for _, pair := range [][2]*testNode{{b, m}, {m, b}} {
		x, y := pair[0], pair[1]
		x.mu.Lock()
		x.promote(w.ctx, x.nodes[y.cfg.WgIP], PathLAN, netip.AddrPortFrom(netip.MustParseAddr("198.18.1.66"), y.self.WgPort))
		x.mu.Unlock()
	}
	w.run(2 * time.Second)
	if got := paths(b)["m"]; got != (pathVia{PathLAN, ""}) {
		t.Fatalf("B reaches M over %+v", got)
	}
	// A goes away; P and B withdraw it
	aIP, aOut := netip.MustParseAddrPort("198.51.100.1:50501"), netip.MustParseAddrPort("203.0.113.11:50501")
	w.fn.drop = func(src, _ netip.AddrPort) bool { return src == aIP || src == aOut }
	delete(w.nodes, "a")
	w.run(DefaultDeadAfter + 2*time.Second)
	if _, ok := paths(b)["a"]; ok {
		t.Fatal("B still routes to A after it died")
	}
	m.mu.Lock()
	forged := wire.RouteDB{From: m.cfg.WgIP, Version: 99, Entries: []wire.Entry{{Node: m.nodes[a.cfg.WgIP].rec, Adj: m.nodes[a.cfg.WgIP].adj}}}
	m.mu.Unlock()
	if forged.Entries[0].Adj == nil {
		t.Fatal("M never learned A's adjacency")
	}
	b.handle(w.ctx, forged, netip.AddrPortFrom(m.cfg.WgIP, m.self.AdminPort))
	if got, ok := paths(b)["a"]; ok {
		t.Fatalf("B routes A's address over %+v after M's forged advertisement", got)
	}
	if got := allowed(t, b, m); slices.Contains(got, "198.51.100.1/32") {
		t.Fatalf("B gave A's address to M: %v", got)
	}
}

// TestLargeMeshDatabaseInParts: a route database that does not fit one part travels in
// several (the part size is made small here; in production 40 KB, about 40 nodes).
func TestLargeMeshDatabaseInParts(t *testing.T) {
	w := newWorld(t)
	p := w.add("p", 10, "203.0.113.10", nil)
	var others []*testNode
	for i := range 9 {
		o := byte(20 + i)
		others = append(others, w.add(fmt.Sprintf("n%d", o), o, fmt.Sprintf("203.0.113.%d", o+100), nil))
	}
	for _, n := range append(others, p) {
		n.dbBudget = 2000
	}
	w.run(4 * time.Second)
	p.mu.Lock()
	parts := len(wire.Split(p.routeDB(), p.dbBudget))
	p.mu.Unlock()
	if parts < 3 {
		t.Fatalf("P's database is %d part(s); make the parts smaller", parts)
	}
	for _, n := range others {
		if got := len(n.Status().Peers); got != 9 {
			t.Errorf("%s reaches %d nodes, want 9", n.cfg.Name, got)
		}
	}
}

// TestBindingsSpreadWithRouteDatabase: a node joining later learns every binding from its
// peers' route databases and persists them, so it refuses a takeover it never saw claimed.
func TestBindingsSpreadWithRouteDatabase(t *testing.T) {
	w := threeNodes(t)
	a := w.nodes["a"]
	c := w.add("c", 3, "203.0.113.13", nil)
	w.run(3 * time.Second)
	id, ok := c.bindings.Lookup(a.cfg.WgIP)
	if !ok || !id.Equal(a.self.Identity) {
		t.Fatalf("C's binding for A's address: %v (ok=%v), want A's identity", id, ok)
	}
	reloaded, err := OpenBindings(c.cfg.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := reloaded.Lookup(a.cfg.WgIP); !ok {
		t.Fatal("the spread binding was not persisted")
	}
	_, other, _ := ed25519.GenerateKey(nil)
	c.mu.Lock()
	ns := c.accept(wireNode("mallory", a.cfg.WgIP, other), "test")
	c.mu.Unlock()
	if ns != nil {
		t.Fatal("C accepted another identity for A's address")
	}
}
