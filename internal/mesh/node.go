package mesh

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
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
	pushGap         = 200 * time.Millisecond // at most one route-database push per gap
	lanGrace        = 700 * time.Millisecond // a LAN answer takes milliseconds; then punch
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
	seen      netip.AddrPort  // its NAT-visible WireGuard endpoint, as a common peer sees it
	adj       *wire.Adjacency // its latest verified list of direct peers
	asm       wire.Assembler  // parts of its route database

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

	mu          sync.Mutex // guards every field below
	self        wire.Node
	adj         wire.Adjacency // our signed list of direct peers
	mySeen      netip.AddrPort
	nodes       map[netip.Addr]*nodeState
	routes      map[netip.Addr]routing.Route
	dbVersion   uint64
	dbHash      string
	applied     map[wirefleet.Key]wgdev.Peer
	forwarding  bool
	refusedLog  map[string]time.Time // last log line per refused claim, to rate-limit them
	lastPush    time.Time            // last route database pushed to the direct peers
	pushPending bool                 // the database changed since
	pushArmed   bool                 // a timer will push it when the gap is over
	realTime    bool                 // the clock is the real one (timers may be armed)
	dbBudget    int                  // bytes of entries per route-database part (tests make it small)
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
	// WgPublic is the device's public key (its private key is made fresh at every start,
	// like the reference; an attached interface keeps its owner's).
	WgPublic wirefleet.Key
}

// NewNode builds a node; Run starts it.
func NewNode(cfg Config, d Deps) (*Node, error) {
	s, err := wire.NewSealer(cfg.SharedKey, d.Now)
	if err != nil {
		return nil, err
	}
	realTime := d.Now == nil
	if realTime {
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
		applied: map[wirefleet.Key]wgdev.Peer{}, refusedLog: map[string]time.Time{}, dbBudget: dbBudget, realTime: realTime}
	n.wgPub = d.WgPublic
	var local []netip.Addr
	if d.Host != nil {
		local = d.Host.LocalAddrs(cfg.Interface, cfg.Subnet)
	}
	n.self = wire.Node{Name: cfg.Name, WgIP: cfg.WgIP, WgKey: n.wgPub, KeyTime: d.Now().UnixMilli(),
		WgPort: uint16(cfg.WgPort), AdminPort: uint16(cfg.AdminPort), LocalAddrs: local}
	n.self.Sign(d.Identity)
	n.adj = wire.Adjacency{WgIP: cfg.WgIP, KeyTime: n.self.KeyTime}
	n.adj.Sign(d.Identity)
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
