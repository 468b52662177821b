// Package routing computes a mesh node's routes from what its direct peers advertise. It is
// pure (no I/O, no clock), so every rule is unit-tested without root.
//
// The protocol is a path vector: each advertised destination carries the list of gateways
// between the advertiser and the destination. A node ignores a destination whose path
// already contains it (no loops, hence no count-to-infinity: a withdrawn node disappears as
// soon as the news arrives instead of after hop counts grow to a limit). Direct peers are
// hop 0; learned routes keep the lowest hop count; ties keep the current gateway, then the
// lowest gateway address, so routes do not flap.
package routing

import (
	"net/netip"
	"slices"
)

// Advert is one destination as a direct peer advertises it.
type Advert struct {
	Dest netip.Addr
	Path []netip.Addr // gateways between the advertiser and Dest
}

// Route is how this node reaches Dest.
type Route struct {
	Dest netip.Addr
	Via  netip.Addr   // zero: Dest is a direct peer
	Path []netip.Addr // gateways from this node to Dest: empty for direct, Path[0] == Via
}

// Hops is the number of gateways on the way (0 for a direct peer).
func (r Route) Hops() int { return len(r.Path) }

// MaxHops bounds path length; longer adverts are ignored.
const MaxHops = 16

// Confirms reports whether node confirms (in its own signed adjacency) that up is one of
// its direct peers. Nil confirms everything.
type Confirms func(node, up netip.Addr) bool

// Compute returns the routing table. direct lists the live direct peers; adverts maps each
// live direct peer to what it advertises (adverts of others are ignored); current is the
// previous table, used only to break ties in favour of the gateway in use. A learned path
// G, p1…pk, D is used only if every node on it confirms its predecessor (p1 confirms G, …,
// D confirms pk): a gateway cannot invent a link it does not have.
func Compute(self netip.Addr, direct []netip.Addr, adverts map[netip.Addr][]Advert, current map[netip.Addr]Route, confirms Confirms) map[netip.Addr]Route {
	out := make(map[netip.Addr]Route, len(direct))
	isDirect := make(map[netip.Addr]bool, len(direct))
	for _, d := range direct {
		if d == self || !d.IsValid() {
			continue
		}
		isDirect[d] = true
		out[d] = Route{Dest: d}
	}
	gws := make([]netip.Addr, 0, len(adverts))
	for g := range adverts {
		if isDirect[g] {
			gws = append(gws, g)
		}
	}
	slices.SortFunc(gws, func(a, b netip.Addr) int { return a.Compare(b) })
	for _, g := range gws {
		for _, a := range adverts[g] {
			if !a.Dest.IsValid() || a.Dest == self || isDirect[a.Dest] || a.Dest == g {
				continue
			}
			if len(a.Path)+1 > MaxHops || slices.Contains(a.Path, self) || slices.Contains(a.Path, a.Dest) {
				continue
			}
			cand := Route{Dest: a.Dest, Via: g, Path: append([]netip.Addr{g}, a.Path...)}
			if !confirmed(cand, confirms) {
				continue
			}
			old, ok := out[a.Dest]
			if !ok || better(cand, old, current[a.Dest]) {
				out[a.Dest] = cand
			}
		}
	}
	return out
}

func confirmed(r Route, confirms Confirms) bool {
	if confirms == nil {
		return true
	}
	for i, up := range r.Path {
		next := r.Dest
		if i+1 < len(r.Path) {
			next = r.Path[i+1]
		}
		if !confirms(next, up) {
			return false
		}
	}
	return true
}

// better reports whether candidate c beats incumbent o, given the route in use cur.
func better(c, o, cur Route) bool {
	if c.Hops() != o.Hops() {
		return c.Hops() < o.Hops()
	}
	if cur.Via.IsValid() && (c.Via == cur.Via) != (o.Via == cur.Via) {
		return c.Via == cur.Via
	}
	return c.Via.Less(o.Via)
}

// AllowedIPs maps every direct peer to the addresses it carries: itself plus every
// destination routed via it (as /32 or /128 prefixes, sorted).
func AllowedIPs(routes map[netip.Addr]Route) map[netip.Addr][]netip.Prefix {
	out := map[netip.Addr][]netip.Prefix{}
	for _, r := range routes {
		gw := r.Dest
		if r.Via.IsValid() {
			gw = r.Via
		}
		out[gw] = append(out[gw], netip.PrefixFrom(r.Dest, r.Dest.BitLen()))
	}
	for gw := range out {
		slices.SortFunc(out[gw], func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	}
	return out
}

// Changed counts destinations whose route differs between two tables (added, removed, or
// moved to another gateway), for the route-change metric.
func Changed(old, new map[netip.Addr]Route) int {
	n := 0
	for d, r := range new {
		if o, ok := old[d]; !ok || o.Via != r.Via {
			n++
		}
	}
	for d := range old {
		if _, ok := new[d]; !ok {
			n++
		}
	}
	return n
}
