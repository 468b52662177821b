package mesh

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/mesh/wire"
	"github.com/wirefleet/wirefleet/internal/wgdev"
)

// Direct peers and the attempts at shorter paths (LAN, NAT), driven by the timer step.

// promote makes ns a direct WireGuard peer. Caller holds mu.
func (n *Node) promote(ctx context.Context, ns *nodeState, path string, ep netip.AddrPort) {
	n.log.Info("direct peer", "name", ns.rec.Name, "wg_ip", ns.rec.WgIP, "path", path, "endpoint", ep)
	ns.direct, ns.path, ns.endpoint, ns.cand = true, path, ep, nil
	ns.lastSeen = n.now()
	ns.dbVersion = 0
	n.reroute(ctx)
	// greet at once: it learns we are up, and asks for our route database
	ns.lastHello = n.now()
	h := n.helloTo(ns, false, netip.AddrPort{})
	adj := n.adj
	h.Adj = &adj
	n.send(tunnelAddr(ns.rec), h)
}

// demote drops a direct peer; routes through it go at once. Caller holds mu; the caller
// reroutes.
func (n *Node) demote(ns *nodeState, why string) {
	n.log.Info("direct peer lost", "name", ns.rec.Name, "wg_ip", ns.rec.WgIP, "path", ns.path, "reason", why)
	ns.direct, ns.adverts, ns.dbVersion, ns.path = false, nil, 0, ""
	ns.asm = wire.Assembler{}
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
		// a node heard of recently (its record came in a route database), even before a
		// confirmed route to it exists: the LAN answer or the punch does not need one
		if ns.rec.Identity == nil || now.Sub(ns.lastSeen) > n.cfg.dead() || n.cfg.Existing {
			// on an attached (shared) interface a peer must hold an address inside the
			// subnet, so a candidate without allowed IPs cannot exist: direct and relay only
			continue
		}
		n.tryPaths(ns, now)
	}
	if changed {
		n.reroute(ctx)
	}
	n.pushDB()
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
	if lan && now.Sub(ns.lanTried) < lanGrace {
		return // give the LAN answer a chance first
	}
	if _, routed := n.routes[ns.rec.WgIP]; !routed || !n.cfg.WgIP.Less(ns.rec.WgIP) || !ns.seen.IsValid() || now.Before(ns.natNext) {
		return // the punch request travels through the mesh: it needs a route
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
