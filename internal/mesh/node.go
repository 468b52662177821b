package mesh

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/mesh/routing"
	"github.com/wirefleet/wirefleet/internal/mesh/wire"
	"github.com/wirefleet/wirefleet/internal/wgdev"
)

// Path types, as `mesh status` shows them.
const (
	PathDirect = "direct" // a static endpoint from network.yaml (or a node that reached us there)
	PathLAN    = "lan"    // a distant node's local address, tried directly
	PathNAT    = "nat"    // NAT-visible endpoints learned from a common peer, punched
	PathRelay  = "relay"  // through a gateway peer
)

const (
	tick            = 250 * time.Millisecond
	punchLead       = 400 * time.Millisecond // how far ahead the agreed punch moment lies
	candidateWindow = 7 * time.Second        // a handshake must complete within (WireGuard retries after 5 s)
	lanRetryMin     = 2 * time.Second
	natRetryMin     = 3 * time.Second
	retryMax        = 60 * time.Second
	keepalive       = 25 * time.Second // below the 30 s a NAT keeps an unanswered UDP mapping
	punchKeepalive  = time.Second      // while punching: keep sending so both NATs open
	stagger         = 300 * time.Millisecond
)

// nodeState is what this node knows about another node.
type nodeState struct {
	rec       wire.Node
	static    *StaticPeer
	direct    bool   // a WireGuard peer of ours carrying its own address
	path      string // when direct: PathDirect, PathLAN or PathNAT
	endpoint  netip.AddrPort
	lastSeen  time.Time // last authenticated message from it (or mention in a route db)
	lastHello time.Time // last Hello we sent it
	theirSent int64     // Sent of its latest Hello, echoed back for RTT
	theirAt   time.Time // when that Hello arrived
	rtt       time.Duration

	adverts   []routing.Advert // its route database, when direct
	dbVersion uint64
	dbAsked   time.Time
	seen      netip.AddrPort // its NAT-visible WireGuard endpoint, as a common peer sees it

	cand     *candidate
	lanNext  time.Time
	lanWait  time.Duration
	lanTried time.Time
	natNext  time.Time
	natWait  time.Duration
	bootNext time.Time
}

// candidate is a WireGuard peer configured without allowed IPs while we wait for a
// handshake: traffic keeps flowing through the gateway until it completes, so a failed
// attempt costs nothing.
type candidate struct {
	path     string
	endpoint netip.AddrPort
	start    time.Time // when it is (to be) configured: the agreed punch moment
	applied  bool
	deadline time.Time
}

// Node is a running mesh node.
type Node struct {
	cfg      Config
	log      *slog.Logger
	dev      wgdev.Device
	host     Host
	conn     net.PacketConn
	sealer   *wire.Sealer
	id       ed25519.PrivateKey
	bindings *Bindings
	metrics  *Metrics
	now      func() time.Time
	wgPub    wirefleet.Key

	mu         sync.Mutex // guards every field below
	self       wire.Node
	mySeen     netip.AddrPort
	nodes      map[netip.Addr]*nodeState
	routes     map[netip.Addr]routing.Route
	dbVersion  uint64
	dbHash     string
	applied    map[wirefleet.Key]wgdev.Peer
	forwarding bool
	refusedLog map[string]time.Time // last log line per refused claim, to rate-limit them
}

// Deps are the node's adapters, built by the composition root.
type Deps struct {
	Device   wgdev.Device
	Host     Host
	Conn     net.PacketConn // the admin UDP socket
	Identity ed25519.PrivateKey
	Bindings *Bindings
	Metrics  *Metrics
	Logger   *slog.Logger
	Now      func() time.Time
	// WgKey is the device's private key (made fresh at every start, like the reference).
	WgKey wirefleet.Key
}

// NewNode builds a node; Run starts it.
func NewNode(cfg Config, d Deps) (*Node, error) {
	s, err := wire.NewSealer(cfg.SharedKey, d.Now)
	if err != nil {
		return nil, err
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Metrics == nil {
		d.Metrics = NewMetrics()
	}
	n := &Node{cfg: cfg, log: d.Logger, dev: d.Device, host: d.Host, conn: d.Conn, sealer: s,
		id: d.Identity, bindings: d.Bindings, metrics: d.Metrics, now: d.Now,
		nodes: map[netip.Addr]*nodeState{}, routes: map[netip.Addr]routing.Route{},
		applied: map[wirefleet.Key]wgdev.Peer{}, refusedLog: map[string]time.Time{}}
	n.wgPub = d.WgKey.PublicKey()
	var local []netip.Addr
	if d.Host != nil {
		local = d.Host.LocalAddrs(cfg.Interface, cfg.Subnet)
	}
	n.self = wire.Node{Name: cfg.Name, WgIP: cfg.WgIP, WgKey: n.wgPub, KeyTime: d.Now().UnixMilli(),
		WgPort: uint16(cfg.WgPort), AdminPort: uint16(cfg.AdminPort), LocalAddrs: local}
	n.self.Sign(d.Identity)
	if ok, err := d.Bindings.Claim(cfg.WgIP, n.self.Identity); err != nil {
		return nil, err
	} else if !ok {
		n.log.Warn("this node's wg IP is bound to another identity in the local state; other nodes will refuse it", "wg_ip", cfg.WgIP)
	}
	for i := range cfg.Static {
		s := &cfg.Static[i]
		if s.WgIP == cfg.WgIP {
			continue
		}
		n.nodes[s.WgIP] = &nodeState{static: s}
	}
	return n, nil
}

// Run serves until ctx ends.
func (n *Node) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- n.receive(ctx) }()
	t := time.NewTicker(tick)
	defer t.Stop()
	n.step(ctx)
	for {
		select {
		case <-ctx.Done():
			n.conn.Close()
			<-errc
			return nil
		case err := <-errc:
			return err
		case <-t.C:
			n.step(ctx)
		}
	}
}

func (n *Node) receive(ctx context.Context) error {
	buf := make([]byte, 65536)
	for {
		k, src, err := n.conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			continue
		}
		ua, ok := src.(*net.UDPAddr)
		if !ok {
			continue
		}
		ap := ua.AddrPort() // a dual-stack socket reports IPv4 sources as ::ffff:a.b.c.d
		n.deliver(ctx, buf[:k], netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
	}
}

// deliver opens and handles one received datagram.
func (n *Node) deliver(ctx context.Context, b []byte, src netip.AddrPort) {
	n.metrics.adminBytes.WithLabelValues("received").Add(float64(len(b)))
	m, err := n.sealer.Open(b)
	if err != nil {
		n.metrics.dropped.WithLabelValues(dropReason(err)).Inc()
		n.log.Debug("admin datagram dropped", "src", src, "err", err)
		return
	}
	n.log.Debug("admin rx", "type", fmt.Sprintf("%T", m), "src", src, "bytes", len(b))
	n.handle(ctx, m, src)
}

func dropReason(err error) string {
	switch {
	case errors.Is(err, wire.ErrAuth):
		return "auth"
	case errors.Is(err, wire.ErrReplayed):
		return "replay"
	case errors.Is(err, wire.ErrTooOld):
		return "window"
	}
	return "malformed"
}

func (n *Node) send(to netip.AddrPort, m wire.Message) {
	b, err := n.sealer.Seal(m)
	if err != nil {
		n.log.Error("seal admin message", "err", err)
		return
	}
	if _, err := n.conn.WriteTo(b, net.UDPAddrFromAddrPort(to)); err != nil {
		n.log.Debug("send admin message", "to", to, "err", err)
		return
	}
	n.metrics.adminBytes.WithLabelValues("sent").Add(float64(len(b)))
}

// tunnelAddr is where admin messages to a node go: its wg IP, through the mesh.
func tunnelAddr(r wire.Node) netip.AddrPort { return netip.AddrPortFrom(r.WgIP, r.AdminPort) }

// accept verifies a node record and checks it against the subnet and the TOFU bindings.
// It returns the node's state (created if new) or nil when the record is refused. Caller
// holds mu.
func (n *Node) accept(rec wire.Node, via string) *nodeState {
	if err := rec.Verify(); err != nil {
		n.metrics.dropped.WithLabelValues("signature").Inc()
		return nil
	}
	if !n.cfg.Subnet.Contains(rec.WgIP) || rec.WgIP == n.cfg.Subnet.Addr() {
		n.refuse(rec, via, "wg IP outside the subnet "+n.cfg.Subnet.String())
		return nil
	}
	if rec.WgIP == n.cfg.WgIP {
		if !rec.Identity.Equal(n.self.Identity) {
			n.refuse(rec, via, "claims this node's own wg IP")
		}
		return nil
	}
	ok, err := n.bindings.Claim(rec.WgIP, rec.Identity)
	if err != nil {
		n.log.Error("persist binding", "err", err)
	}
	if !ok {
		n.refuse(rec, via, "wg IP is bound to another identity (trust on first use); 'wirefleet mesh forget' releases it")
		return nil
	}
	ns := n.nodes[rec.WgIP]
	if ns == nil {
		ns = &nodeState{}
		n.nodes[rec.WgIP] = ns
	}
	switch {
	case ns.rec.Identity == nil:
		ns.rec = rec
	case rec.KeyTime > ns.rec.KeyTime:
		if rec.WgKey != ns.rec.WgKey {
			n.log.Info("node restarted with a new WireGuard key", "name", rec.Name, "wg_ip", rec.WgIP)
			if ns.direct {
				n.demote(ns, "new WireGuard key")
			}
			ns.cand = nil
			ns.lanNext, ns.natNext, ns.lanWait, ns.natWait = time.Time{}, time.Time{}, 0, 0
		}
		ns.rec = rec
	case rec.KeyTime < ns.rec.KeyTime:
		return nil // an older key: the node has restarted since
	}
	return ns
}

// refuse logs and counts a refused claim, at most once per identity and address per minute.
func (n *Node) refuse(rec wire.Node, via, why string) {
	n.metrics.refused.Inc()
	k := rec.WgIP.String() + "/" + idString(rec.Identity)
	if last, ok := n.refusedLog[k]; ok && n.now().Sub(last) < time.Minute {
		return
	}
	if len(n.refusedLog) > 1024 {
		clear(n.refusedLog)
	}
	n.refusedLog[k] = n.now()
	n.log.Warn("refused claim", "wg_ip", rec.WgIP, "name", rec.Name, "identity", idString(rec.Identity), "via", via, "reason", why)
}

func (n *Node) handle(ctx context.Context, m wire.Message, src netip.AddrPort) {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.now()
	viaTunnel := n.cfg.Subnet.Contains(src.Addr())
	switch m := m.(type) {
	case wire.Hello:
		if viaTunnel && src.Addr() != m.Node.WgIP {
			// WireGuard guarantees a tunnel packet's source is within its peer's allowed IPs;
			// a node behind a gateway must not speak for the gateway or anyone else
			n.metrics.dropped.WithLabelValues("spoofed").Inc()
			return
		}
		ns := n.accept(m.Node, src.String())
		if ns == nil {
			return
		}
		if viaTunnel || !ns.direct {
			// once a peer is direct only the tunnel proves it alive: a record replayed to
			// our public port by someone else must not keep a dead node's routes up
			ns.lastSeen = now
		}
		if m.Echo != 0 {
			ns.rtt = max(0, now.Sub(time.UnixMilli(m.Echo))-time.Duration(m.EchoDelay)*time.Millisecond)
		}
		ns.theirSent, ns.theirAt = m.Sent, now
		if !viaTunnel {
			if !m.Reply {
				// a node bootstrapping to us at our public admin port: it becomes a
				// direct peer (it roams to us; its handshake tells WireGuard where it is)
				if !ns.direct {
					var ep netip.AddrPort
					if ns.static != nil {
						ep, _ = resolve(ns.static.EndPoint)
					}
					n.promote(ctx, ns, PathDirect, ep)
				}
				n.send(src, n.helloTo(ns, true, src))
			} else if ns.static != nil && !ns.direct {
				ep, err := resolve(ns.static.EndPoint)
				if err == nil {
					n.promote(ctx, ns, PathDirect, ep)
				}
			}
		} else if !ns.direct && ns.static == nil && ns.cand == nil {
			// a hello through the tunnel from a node that is not our direct peer: it
			// thinks we are (we restarted, or demoted it); a local contact sorts it out
			ns.lanNext = time.Time{}
		}
		if ns.direct && m.DBVersion != ns.dbVersion && now.Sub(ns.dbAsked) > time.Second {
			ns.dbAsked = now
			n.send(tunnelAddr(ns.rec), wire.RouteDBReq{From: n.cfg.WgIP})
		}
	case wire.RouteDBReq:
		if ns := n.nodes[m.From]; ns != nil && ns.direct && viaTunnel && src.Addr() == m.From {
			n.send(tunnelAddr(ns.rec), n.routeDB())
		}
	case wire.RouteDB:
		ns := n.nodes[m.From]
		if ns == nil || !ns.direct || !viaTunnel || src.Addr() != m.From {
			return
		}
		ns.lastSeen = now
		n.learnDB(ctx, ns, m)
	case wire.LocalContact:
		ns := n.accept(m.Node, src.String())
		if ns == nil || viaTunnel {
			return
		}
		if !ns.direct {
			ns.lastSeen = now
		}
		if !m.Reply {
			n.send(src, wire.LocalContact{Node: n.self, Reply: true})
		}
		if ns.direct {
			return
		}
		ep := netip.AddrPortFrom(src.Addr(), m.Node.WgPort)
		if ns.cand == nil || ns.cand.path != PathLAN {
			n.log.Info("local contact", "name", m.Node.Name, "wg_ip", m.Node.WgIP, "endpoint", ep)
			n.startCandidate(ctx, ns, PathLAN, ep, now)
		}
	case wire.Punch:
		if m.To != n.cfg.WgIP || !viaTunnel || src.Addr() != m.From {
			return
		}
		ns := n.nodes[m.From]
		if ns == nil || ns.direct || ns.rec.Identity == nil {
			return
		}
		at := time.UnixMilli(m.At)
		if !ns.seen.IsValid() && m.Mine.IsValid() {
			ns.seen = m.Mine
		}
		if !ns.seen.IsValid() || (ns.cand != nil && ns.cand.path == PathLAN) {
			return
		}
		if !m.Accept {
			n.send(tunnelAddr(ns.rec), wire.Punch{From: n.cfg.WgIP, To: m.From, At: m.At, Accept: true, Target: ns.seen, Mine: n.mySeen})
		}
		if ns.cand == nil || ns.cand.path != PathNAT || ns.cand.start != at {
			n.log.Info("punching", "name", ns.rec.Name, "wg_ip", ns.rec.WgIP, "endpoint", ns.seen, "at", at.Format("15:04:05.000"))
			n.startCandidate(ctx, ns, PathNAT, ns.seen, at)
		}
	}
}

func (n *Node) helloTo(ns *nodeState, reply bool, src netip.AddrPort) wire.Hello {
	now := n.now()
	h := wire.Hello{Node: n.self, DBVersion: n.dbVersion, Reply: reply, Sent: now.UnixMilli(), YourAddr: src}
	if ns.theirSent != 0 {
		h.Echo, h.EchoDelay = ns.theirSent, now.Sub(ns.theirAt).Milliseconds()
	}
	return h
}

func resolve(hostport string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(hostport); err == nil {
		return ap, nil
	}
	ua, err := net.ResolveUDPAddr("udp4", hostport)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ap := ua.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// learnDB takes a direct peer's route database. Caller holds mu.
func (n *Node) learnDB(ctx context.Context, from *nodeState, db wire.RouteDB) {
	from.dbVersion = db.Version
	now := n.now()
	var adverts []routing.Advert
	for _, e := range db.Entries {
		if e.Node.WgIP == n.cfg.WgIP {
			if len(e.Path) == 0 && e.Seen.IsValid() {
				n.mySeen = e.Seen
			}
			continue
		}
		ns := n.accept(e.Node, "route database of "+from.rec.WgIP.String())
		if ns == nil {
			continue
		}
		if !ns.direct {
			ns.lastSeen = now
		}
		if len(e.Path) == 0 && e.Seen.IsValid() {
			ns.seen = e.Seen
		}
		adverts = append(adverts, routing.Advert{Dest: e.Node.WgIP, Path: e.Path})
	}
	from.adverts = adverts
	n.log.Debug("route database", "from", from.rec.WgIP, "version", db.Version, "entries", len(db.Entries), "usable", len(adverts))
	for _, b := range db.Bindings {
		if len(b.Identity) == ed25519.PublicKeySize && n.cfg.Subnet.Contains(b.WgIP) && b.WgIP != n.cfg.WgIP {
			if ok, _ := n.bindings.Claim(b.WgIP, b.Identity); !ok {
				n.log.Debug("conflicting binding in a route database kept ours", "wg_ip", b.WgIP, "from", from.rec.WgIP)
			}
		}
	}
	n.reroute(ctx)
}

// promote makes ns a direct WireGuard peer. Caller holds mu.
func (n *Node) promote(ctx context.Context, ns *nodeState, path string, ep netip.AddrPort) {
	n.log.Info("direct peer", "name", ns.rec.Name, "wg_ip", ns.rec.WgIP, "path", path, "endpoint", ep)
	ns.direct, ns.path, ns.endpoint, ns.cand = true, path, ep, nil
	ns.lastSeen = n.now()
	ns.dbVersion = 0
	n.reroute(ctx)
	// greet at once: it learns we are up, and asks for our route database
	ns.lastHello = n.now()
	n.send(tunnelAddr(ns.rec), n.helloTo(ns, false, netip.AddrPort{}))
}

// demote drops a direct peer; routes through it go at once. Caller holds mu; the caller
// reroutes.
func (n *Node) demote(ns *nodeState, why string) {
	n.log.Info("direct peer lost", "name", ns.rec.Name, "wg_ip", ns.rec.WgIP, "path", ns.path, "reason", why)
	ns.direct, ns.adverts, ns.dbVersion, ns.path = false, nil, 0, ""
	ns.endpoint = netip.AddrPort{}
}

func (n *Node) startCandidate(ctx context.Context, ns *nodeState, path string, ep netip.AddrPort, at time.Time) {
	if ns.rec.WgIP.Less(n.cfg.WgIP) {
		// the higher wg IP starts later: two handshake initiations crossing each other
		// clobber both (each side's state is replaced by the other's), costing WireGuard's
		// 5 s retry. The lower side's first initiation is dropped (we do not know it yet, or
		// our NAT has no mapping) but opens its own NAT; ours then completes the handshake.
		at = at.Add(stagger)
	}
	ns.cand = &candidate{path: path, endpoint: ep, start: at, deadline: at.Add(candidateWindow)}
	if !at.After(n.now()) {
		n.applyCandidate(ctx, ns)
	}
}

func (n *Node) applyCandidate(ctx context.Context, ns *nodeState) {
	ns.cand.applied = true
	ns.cand.start = n.now()
	p := wgdev.Peer{PublicKey: ns.rec.WgKey, Endpoint: ns.cand.endpoint, PersistentKeepalive: punchKeepalive}
	if cur, ok := n.applied[p.PublicKey]; ok {
		p.AllowedIPs = cur.AllowedIPs
	}
	if err := n.dev.ApplyPeers(ctx, []wgdev.Peer{p}, nil); err != nil {
		n.log.Error("configure candidate peer", "wg_ip", ns.rec.WgIP, "err", err)
		ns.cand = nil
		return
	}
	n.applied[p.PublicKey] = p
	n.log.Info("trying path", "name", ns.rec.Name, "wg_ip", ns.rec.WgIP, "path", ns.cand.path, "endpoint", ns.cand.endpoint)
}

// reroute recomputes routes and applies the difference to the device. Caller holds mu.
func (n *Node) reroute(ctx context.Context) {
	var direct []netip.Addr
	adverts := map[netip.Addr][]routing.Advert{}
	for ip, ns := range n.nodes {
		if ns.direct {
			direct = append(direct, ip)
			adverts[ip] = ns.adverts
		}
	}
	routes := routing.Compute(n.cfg.WgIP, direct, adverts, n.routes)
	if c := routing.Changed(n.routes, routes); c > 0 {
		n.metrics.routeChanges.Add(float64(c))
	}
	n.routes = routes
	n.applyDevice(ctx)
	n.refreshGauge()
	if len(direct) >= 2 && !n.forwarding && n.host != nil {
		if err := n.host.EnableForwarding(n.cfg.WgIP.Is6()); err != nil {
			n.log.Warn("cannot enable IP forwarding: this node cannot relay for others", "err", err)
		}
		n.forwarding = true
	}
	n.updateDB()
}

// desired is the device's peer set: direct peers with the addresses routed via them, and
// candidates (no allowed IPs until their handshake completes).
func (n *Node) desired() map[wirefleet.Key]wgdev.Peer {
	allowed := routing.AllowedIPs(n.routes)
	out := map[wirefleet.Key]wgdev.Peer{}
	for ip, ns := range n.nodes {
		switch {
		case ns.direct:
			out[ns.rec.WgKey] = wgdev.Peer{PublicKey: ns.rec.WgKey, Endpoint: ns.endpoint,
				AllowedIPs: allowed[ip], PersistentKeepalive: keepalive}
		case ns.cand != nil && ns.cand.applied:
			out[ns.rec.WgKey] = wgdev.Peer{PublicKey: ns.rec.WgKey, Endpoint: ns.cand.endpoint,
				PersistentKeepalive: punchKeepalive}
		}
	}
	return out
}

// applyDevice changes only the peers that differ: peers gaining addresses first, so an
// address moving between peers is never without one for longer than the transaction.
func (n *Node) applyDevice(ctx context.Context) {
	want := n.desired()
	var gain, rest []wgdev.Peer
	var remove []wirefleet.Key
	for k, p := range want {
		cur, ok := n.applied[k]
		if ok && samePeer(cur, p) {
			continue
		}
		if !ok || len(p.AllowedIPs) > len(cur.AllowedIPs) {
			gain = append(gain, p)
		} else {
			rest = append(rest, p)
		}
	}
	for k := range n.applied {
		if _, ok := want[k]; !ok {
			remove = append(remove, k)
		}
	}
	if len(gain)+len(rest)+len(remove) == 0 {
		return
	}
	if err := n.dev.ApplyPeers(ctx, append(gain, rest...), remove); err != nil {
		n.log.Error("apply peers", "err", err)
		return
	}
	n.applied = want
}

func samePeer(a, b wgdev.Peer) bool {
	// an endpoint of zero means "leave it to roaming": a learned endpoint is not a change
	return a.PublicKey == b.PublicKey && (a.Endpoint == b.Endpoint || !b.Endpoint.IsValid()) &&
		a.PersistentKeepalive == b.PersistentKeepalive && slices.Equal(a.AllowedIPs, b.AllowedIPs)
}

// routeDB is our route database. Caller holds mu.
func (n *Node) routeDB() wire.RouteDB {
	db := wire.RouteDB{From: n.cfg.WgIP, Version: n.dbVersion}
	db.Entries = append(db.Entries, wire.Entry{Node: n.self})
	dests := make([]netip.Addr, 0, len(n.routes))
	for d := range n.routes {
		dests = append(dests, d)
	}
	slices.SortFunc(dests, func(a, b netip.Addr) int { return a.Compare(b) })
	for _, d := range dests {
		ns := n.nodes[d]
		if ns == nil || ns.rec.Identity == nil {
			continue
		}
		e := wire.Entry{Node: ns.rec, Path: n.routes[d].Path}
		if ns.direct {
			e.Seen = ns.endpoint
		}
		db.Entries = append(db.Entries, e)
	}
	for _, ip := range n.bindings.All() {
		if id, ok := n.bindings.Lookup(ip); ok {
			db.Bindings = append(db.Bindings, wire.Binding{WgIP: ip, Identity: id})
		}
	}
	return db
}

// updateDB bumps the version when the content changed, and pushes it to every direct peer
// at once (triggered update: a withdrawal travels one hop per round trip, not per timer).
func (n *Node) updateDB() {
	db := n.routeDB()
	db.Version = 0
	h := fmt.Sprint(db.Entries)
	if h == n.dbHash {
		return
	}
	n.dbHash = h
	n.dbVersion++
	db = n.routeDB()
	for _, ns := range n.nodes {
		if ns.direct {
			n.send(tunnelAddr(ns.rec), db)
		}
	}
}

// step runs the timers: hellos, dead peers, bootstrap, path attempts, candidates.
func (n *Node) step(ctx context.Context) {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.now()
	var status map[wirefleet.Key]wgdev.PeerStatus
	if peers, err := n.dev.Peers(ctx); err == nil {
		status = make(map[wirefleet.Key]wgdev.PeerStatus, len(peers))
		for _, p := range peers {
			status[p.PublicKey] = p
		}
	}
	changed := false
	for _, ns := range n.nodes {
		if ns.direct {
			if now.Sub(ns.lastSeen) > n.cfg.dead() {
				n.demote(ns, fmt.Sprintf("silent for %s", n.cfg.dead()))
				changed = true
				continue
			}
			if st, ok := status[ns.rec.WgKey]; ok && st.Endpoint.IsValid() && st.Endpoint != ns.endpoint {
				ns.endpoint = st.Endpoint
				changed = true
			}
			if now.Sub(ns.lastHello) >= n.cfg.hello() {
				ns.lastHello = now
				n.send(tunnelAddr(ns.rec), n.helloTo(ns, false, netip.AddrPort{}))
			}
			continue
		}
		if ns.static != nil && !now.Before(ns.bootNext) {
			ns.bootNext = now.Add(time.Second)
			if ep, err := resolve(ns.static.EndPoint); err == nil {
				n.send(netip.AddrPortFrom(ep.Addr(), uint16(ns.static.AdminPort)), n.helloTo(ns, false, netip.AddrPort{}))
			}
		}
		if c := ns.cand; c != nil {
			switch {
			case !c.applied && !now.Before(c.start):
				n.applyCandidate(ctx, ns)
			case c.applied:
				if st, ok := status[ns.rec.WgKey]; ok && st.LastHandshake.After(c.start.Add(-time.Second)) {
					ep := c.endpoint
					if st.Endpoint.IsValid() {
						ep = st.Endpoint
					}
					n.promote(ctx, ns, c.path, ep)
				} else if now.After(c.deadline) {
					n.log.Info("path failed: no handshake", "name", ns.rec.Name, "wg_ip", ns.rec.WgIP, "path", c.path, "endpoint", c.endpoint)
					ns.cand = nil
					changed = true
				}
			}
			continue
		}
		if _, routed := n.routes[ns.rec.WgIP]; !routed || ns.rec.Identity == nil || n.cfg.Existing {
			// on an attached (shared) interface a peer must hold an address inside the
			// subnet, so a candidate without allowed IPs cannot exist: direct and relay only
			continue
		}
		n.tryPaths(ns, now)
	}
	if changed {
		n.reroute(ctx)
	}
}

// tryPaths attempts a shorter path to a node reached through a gateway: its LAN addresses
// first, then (the lower wg IP initiating) a coordinated NAT punch. Caller holds mu.
func (n *Node) tryPaths(ns *nodeState, now time.Time) {
	lan := false
	for _, a := range ns.rec.LocalAddrs {
		if !slices.Contains(n.self.LocalAddrs, a) {
			lan = true
		}
	}
	if lan && !now.Before(ns.lanNext) {
		ns.lanWait = backoff(ns.lanWait, lanRetryMin)
		ns.lanNext, ns.lanTried = now.Add(ns.lanWait), now
		for _, a := range ns.rec.LocalAddrs {
			if !slices.Contains(n.self.LocalAddrs, a) {
				n.send(netip.AddrPortFrom(a, ns.rec.AdminPort), wire.LocalContact{Node: n.self})
			}
		}
		return
	}
	if lan && now.Sub(ns.lanTried) < 1500*time.Millisecond {
		return // give the LAN answer a chance first
	}
	if !n.cfg.WgIP.Less(ns.rec.WgIP) || !ns.seen.IsValid() || now.Before(ns.natNext) {
		return
	}
	ns.natWait = backoff(ns.natWait, natRetryMin+candidateWindow)
	ns.natNext = now.Add(ns.natWait)
	at := now.Add(punchLead)
	n.send(tunnelAddr(ns.rec), wire.Punch{From: n.cfg.WgIP, To: ns.rec.WgIP, At: at.UnixMilli(), Target: ns.seen, Mine: n.mySeen})
}

func backoff(cur, floor time.Duration) time.Duration {
	if cur < floor {
		return floor
	}
	return min(2*cur, retryMax)
}
