package mesh

import (
	"context"
	"crypto/ed25519"
	"net"
	"net/netip"
	"time"

	"github.com/wirefleet/wirefleet/internal/mesh/routing"
	"github.com/wirefleet/wirefleet/internal/mesh/wire"
)

// Handling of received admin messages.

// accept verifies a node record and checks it against the subnet and the TOFU bindings.
// It returns the node's state (created if new) or nil when the record is refused. Caller
// holds mu.
func (n *Node) accept(rec wire.Node, via string) *nodeState {
	if ns := n.nodes[rec.WgIP]; ns != nil && ns.rec.Identity != nil && ns.rec.Equal(&rec) {
		return ns // the record we hold, already verified and bound (the common case)
	}
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
			ns.cand, ns.adj = nil, nil
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
		if m.Adj != nil && viaTunnel && n.learnAdj(ns, m.Adj) {
			defer n.reroute(ctx) // routes through it may be confirmed now (runs before unlock)
		}
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
			n.sendDB(tunnelAddr(ns.rec), n.routeDB())
		}
	case wire.RouteDB:
		ns := n.nodes[m.From]
		if ns == nil || !ns.direct || !viaTunnel || src.Addr() != m.From {
			return
		}
		ns.lastSeen = now
		if whole, ok := ns.asm.Add(m); ok {
			n.learnDB(ctx, ns, whole)
		}
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
		if d := at.Sub(now); d < -time.Second || d > 2*time.Second {
			// clocks apart (the channel tolerates 10 s): punch now rather than wait; the
			// handshake retries of WireGuard cover the lost simultaneity
			at = now
		}
		if !ns.seen.IsValid() && m.Mine.IsValid() {
			ns.seen = m.Mine
		}
		if !ns.seen.IsValid() || (ns.cand != nil && ns.cand.path == PathLAN) {
			return
		}
		if !m.Accept {
			n.send(tunnelAddr(ns.rec), wire.Punch{From: n.cfg.WgIP, To: m.From, At: m.At, Accept: true, Target: ns.seen, Mine: n.mySeen})
		}
		if ns.cand == nil || ns.cand.path != PathNAT {
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

// learnAdj keeps a node's adjacency if it is newer and signed by the node's identity.
// It reports whether it changed; the caller reroutes. Caller holds mu.
func (n *Node) learnAdj(ns *nodeState, a *wire.Adjacency) bool {
	if a.WgIP != ns.rec.WgIP || a.KeyTime != ns.rec.KeyTime || !a.Newer(ns.adj) {
		return false
	}
	if err := a.Verify(ns.rec.Identity); err != nil {
		n.metrics.dropped.WithLabelValues("signature").Inc()
		return false
	}
	ns.adj = a
	return true
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
		if e.Adj != nil {
			n.learnAdj(ns, e.Adj)
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
