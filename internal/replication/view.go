package replication

import (
	"slices"
	"strings"

	"github.com/wirefleet/wirefleet"
)

// Caller is who reads the replication API, as the API's auth layer identified it.
type Caller struct {
	Roles []wirefleet.Role
	// Networks scopes the caller; empty means every network.
	Networks []string
}

// View is what one caller may see of the state and the log.
type View struct {
	// Full: everything a replica needs (private keys, PSKs, token hashes).
	Full bool
	// Networks limits a non-full view; empty means every network.
	Networks []string
}

// ViewOf decides the view of c. A full view needs the admin or follower role and no
// network scope; a gateway (or a scoped admin/follower) sees its networks and no tokens.
// Callers with none of these roles get an error of KindForbidden.
func ViewOf(c Caller) (View, error) {
	full := slices.Contains(c.Roles, wirefleet.RoleAdmin) || slices.Contains(c.Roles, wirefleet.RoleFollower)
	if full && len(c.Networks) == 0 {
		return View{Full: true}, nil
	}
	if full || slices.Contains(c.Roles, wirefleet.RoleGateway) {
		return View{Networks: slices.Clone(c.Networks)}, nil
	}
	return View{}, wirefleet.Errorf(wirefleet.KindForbidden, "replication needs the gateway, follower or admin role (caller has %v)", c.Roles)
}

func (v View) network(name string) bool {
	return v.Full || len(v.Networks) == 0 || slices.Contains(v.Networks, name)
}

// Op returns op as the view may see it: unchanged, or elided.
func (v View) Op(op wirefleet.Op) wirefleet.Op {
	if v.Full {
		return op
	}
	if n, ok := opNetwork(op); ok && v.network(n) {
		return op
	}
	return elide(op)
}

// Snapshot filters snap in place semantics (it returns a new value; slices are not shared
// when filtered).
func (v View) Snapshot(snap wirefleet.Snapshot) wirefleet.Snapshot {
	if v.Full {
		return snap
	}
	out := wirefleet.Snapshot{Seq: snap.Seq, Hash: snap.Hash, Networks: []wirefleet.NetworkValue{}, Peers: []wirefleet.PeerValue{}, Tokens: []wirefleet.TokenValue{}}
	for _, n := range snap.Networks {
		if v.network(n.Name) {
			out.Networks = append(out.Networks, n)
		}
	}
	for _, p := range snap.Peers {
		if v.network(p.Network) {
			out.Peers = append(out.Peers, p)
		}
	}
	return out
}

// opNetwork returns the network an op belongs to; token ops (and unknown types) belong to
// none, so a non-full view never sees them.
func opNetwork(op wirefleet.Op) (string, bool) {
	switch op.Type {
	case wirefleet.OpNetworkPut, wirefleet.OpNetworkDelete:
		return strings.CutPrefix(op.Key, "network/")
	case wirefleet.OpPeerPut, wirefleet.OpPeerDelete, wirefleet.OpPeerReplace:
		rest, ok := strings.CutPrefix(op.Key, "peer/")
		if !ok {
			return "", false
		}
		n, _, ok := strings.Cut(rest, "/")
		return n, ok
	}
	return "", false
}
