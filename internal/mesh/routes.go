package mesh

import (
	"context"
	"encoding/json"
	"net/netip"
	"slices"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/mesh/routing"
	"github.com/wirefleet/wirefleet/internal/mesh/wire"
	"github.com/wirefleet/wirefleet/internal/wgdev"
)

// Routes, the device and the route database.

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
	slices.SortFunc(direct, func(a, b netip.Addr) int { return a.Compare(b) })
	if !slices.Equal(direct, n.adj.Peers) {
		n.adj.Peers, n.adj.Seq = direct, n.adj.Seq+1
		n.adj.Sign(n.id)
	}
	confirms := func(node, up netip.Addr) bool {
		ns := n.nodes[node]
		return ns != nil && ns.adj != nil && ns.adj.Lists(up)
	}
	routes := routing.Compute(n.cfg.WgIP, direct, adverts, n.routes, confirms)
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
	adj := n.adj
	adj.Peers = slices.Clone(adj.Peers)
	db.Entries = append(db.Entries, wire.Entry{Node: n.self, Adj: &adj})
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
		e := wire.Entry{Node: ns.rec, Path: n.routes[d].Path, Adj: ns.adj}
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

// updateDB bumps the version when the content changed and pushes it to every direct peer
// (a triggered update: a withdrawal travels one hop per round trip, not per timer). Pushes
// are at most one per pushGap, the first at once: a burst of changes while a mesh forms
// (every new link changes two signed adjacencies, which every database carries) goes out
// as one database instead of a storm.
func (n *Node) updateDB() {
	db := n.routeDB()
	db.Version = 0
	raw, _ := json.Marshal(db.Entries) // by value: pointers inside must not count
	h := string(raw)
	if h == n.dbHash {
		return
	}
	n.dbHash = h
	n.dbVersion++
	n.pushPending = true
	n.pushDB()
	if n.pushPending && n.realTime && !n.pushArmed {
		// throttled: push when the gap is over rather than at the next tick
		n.pushArmed = true
		time.AfterFunc(pushGap-n.now().Sub(n.lastPush), func() {
			n.mu.Lock()
			defer n.mu.Unlock()
			n.pushArmed = false
			n.pushDB()
		})
	}
}

// pushDB sends a pending database if the last push is pushGap old. Caller holds mu.
func (n *Node) pushDB() {
	now := n.now()
	if !n.pushPending || now.Sub(n.lastPush) < pushGap {
		return
	}
	n.pushPending, n.lastPush = false, now
	db := n.routeDB()
	for _, ns := range n.nodes {
		if ns.direct {
			n.sendDB(tunnelAddr(ns.rec), db)
		}
	}
}

// dbBudget is the size of a route-database part: with the record, adjacency and endpoint
// of each node, about 40 nodes of a full mesh fit in one datagram.
const dbBudget = 40000

// sendDB sends a database, in parts when it does not fit one datagram.
func (n *Node) sendDB(to netip.AddrPort, db wire.RouteDB) {
	for _, p := range wire.Split(db, n.dbBudget) {
		n.send(to, p)
	}
}
