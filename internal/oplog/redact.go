package oplog

import (
	"encoding/json"
	"slices"

	"github.com/wirefleet/wirefleet"
)

// Audience is who reads the log or a snapshot through the replication API.
type Audience struct {
	Role wirefleet.Role
	// Networks scopes a gateway: it receives the private keys and preshared keys of these
	// networks only (empty = every network, for an unscoped gateway token).
	Networks []string
}

func (a Audience) check() error {
	switch a.Role {
	case wirefleet.RoleAdmin, wirefleet.RoleFollower, wirefleet.RoleGateway:
		return nil
	}
	return wirefleet.Errorf(wirefleet.KindForbidden, "role %q may not read the replication log: use a gateway, follower or admin token", a.Role)
}

// full reports whether the audience sees every secret (admin, and followers, which must be
// able to take over as primary and to authenticate tokens).
func (a Audience) full() bool {
	return a.Role == wirefleet.RoleAdmin || a.Role == wirefleet.RoleFollower
}

func (a Audience) serves(network string) bool {
	return len(a.Networks) == 0 || slices.Contains(a.Networks, network)
}

// Filter returns op as the audience may see it. Ops are never dropped (sequence numbers
// stay gap-free); a value with secrets the audience must not see is redacted with Redact,
// so the chain still verifies:
//
//   - admin, follower: everything.
//   - gateway: network.put keeps private_key only for its networks; peer.put and
//     peer.replace keep preshared_key only for its networks; token.put carries no value at all ({}).
//   - any other role: KindForbidden.
func Filter(op wirefleet.Op, a Audience) (wirefleet.Op, error) {
	if err := a.check(); err != nil {
		return op, err
	}
	if a.full() {
		return op, nil
	}
	switch op.Type {
	case wirefleet.OpNetworkPut:
		var v wirefleet.NetworkValue
		if err := json.Unmarshal(op.Value, &v); err != nil {
			return op, wirefleet.Errorf(wirefleet.KindInternal, "op %d: %v", op.Seq, err)
		}
		if a.serves(v.Name) {
			return op, nil
		}
		b, err := Encode(v.Network) // Network has no private key field in JSON
		if err != nil {
			return op, err
		}
		return Redact(op, b), nil
	case wirefleet.OpPeerPut:
		var v wirefleet.PeerValue
		return a.withoutForeignPSK(op, &v, &v)
	case wirefleet.OpPeerReplace:
		var v wirefleet.PeerReplaceValue
		return a.withoutForeignPSK(op, &v, &v.PeerValue)
	case wirefleet.OpTokenPut:
		return Redact(op, []byte(`{}`)), nil
	}
	return op, nil
}

// withoutForeignPSK decodes op's value into v, whose peer part is p (peer.put and
// peer.replace carry the same peer), and redacts the preshared key unless the audience
// serves the peer's network.
func (a Audience) withoutForeignPSK(op wirefleet.Op, v any, p *wirefleet.PeerValue) (wirefleet.Op, error) {
	if err := json.Unmarshal(op.Value, v); err != nil {
		return op, wirefleet.Errorf(wirefleet.KindInternal, "op %d: %v", op.Seq, err)
	}
	if p.PresharedKey == nil || a.serves(p.Network) {
		return op, nil
	}
	p.PresharedKey = nil
	b, err := Encode(v)
	if err != nil {
		return op, err
	}
	return Redact(op, b), nil
}

// FilterSnapshot returns snap as the audience may see it, by the same rules as Filter
// (a gateway receives no tokens at all). snap is not modified.
func FilterSnapshot(snap wirefleet.Snapshot, a Audience) (wirefleet.Snapshot, error) {
	if err := a.check(); err != nil {
		return snap, err
	}
	if a.full() {
		return snap, nil
	}
	out := wirefleet.Snapshot{Seq: snap.Seq, Hash: snap.Hash, Tokens: []wirefleet.TokenValue{}}
	out.Networks = make([]wirefleet.NetworkValue, len(snap.Networks))
	for i, v := range snap.Networks {
		if !a.serves(v.Name) {
			v.PrivateKey = wirefleet.Key{}
		}
		out.Networks[i] = v
	}
	out.Peers = make([]wirefleet.PeerValue, len(snap.Peers))
	for i, v := range snap.Peers {
		if !a.serves(v.Network) {
			v.PresharedKey = nil
		}
		out.Peers[i] = v
	}
	return out, nil
}
