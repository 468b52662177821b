package wire

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	"github.com/wirefleet/wirefleet"
)

// Type identifies a message.
type Type uint8

// Message types.
const (
	TypeHello        Type = 1 // advertisement: node record, route-db version, visible endpoint
	TypeRouteDB      Type = 2 // route database
	TypeRouteDBReq   Type = 3 // route database request
	TypeLocalContact Type = 4 // local-contact request (Reply=false) or reply, sent to LAN addresses
	TypePunch        Type = 5 // NAT punch coordination: request or accept
)

// Message is any admin message.
type Message interface{ Type() Type }

// Node is what a node says about itself, signed by its identity: the signature binds the
// WireGuard key and the wg IP (and everything else here) to the Ed25519 identity, so a
// relay cannot alter it and a WireGuard key can rotate without losing the identity.
type Node struct {
	Name       string            `json:"name"`
	WgIP       netip.Addr        `json:"wg_ip"`
	WgKey      wirefleet.Key     `json:"wg_key"`
	KeyTime    int64             `json:"key_time"` // unix ms the WireGuard key was made; newer wins
	WgPort     uint16            `json:"wg_port"`
	AdminPort  uint16            `json:"admin_port"`
	LocalAddrs []netip.Addr      `json:"local_addrs,omitempty"`
	Identity   ed25519.PublicKey `json:"identity"`
	Sig        []byte            `json:"sig"`
}

func (n *Node) signedBytes() []byte {
	b := []byte("wirefleet mesh node v1\x00")
	b = append(b, n.Name...)
	b = append(b, 0)
	b = append(b, n.WgIP.String()...)
	b = append(b, 0)
	b = append(b, n.WgKey[:]...)
	b = strconv.AppendInt(b, n.KeyTime, 10)
	b = append(b, 0)
	b = strconv.AppendUint(b, uint64(n.WgPort), 10)
	b = append(b, 0)
	b = strconv.AppendUint(b, uint64(n.AdminPort), 10)
	b = append(b, 0)
	for _, a := range n.LocalAddrs {
		b = append(b, a.String()...)
		b = append(b, ',')
	}
	b = append(b, 0)
	return append(b, n.Identity...)
}

// Sign fills Identity and Sig.
func (n *Node) Sign(priv ed25519.PrivateKey) {
	n.Identity = priv.Public().(ed25519.PublicKey)
	n.Sig = ed25519.Sign(priv, n.signedBytes())
}

// Equal reports whether two records are identical, signature included: a record equal to
// one already verified needs no second verification.
func (n *Node) Equal(o *Node) bool {
	return n.Name == o.Name && n.WgIP == o.WgIP && n.WgKey == o.WgKey && n.KeyTime == o.KeyTime &&
		n.WgPort == o.WgPort && n.AdminPort == o.AdminPort && slices.Equal(n.LocalAddrs, o.LocalAddrs) &&
		n.Identity.Equal(o.Identity) && bytes.Equal(n.Sig, o.Sig)
}

// Verify checks the record's signature and shape.
func (n *Node) Verify() error {
	if len(n.Identity) != ed25519.PublicKeySize {
		return fmt.Errorf("node record: identity is %d bytes", len(n.Identity))
	}
	if !n.WgIP.Is4() && !n.WgIP.Is6() {
		return fmt.Errorf("node record: no wg IP")
	}
	if n.WgKey.IsZero() {
		return fmt.Errorf("node record: no WireGuard key")
	}
	if len(n.Name) > 64 || len(n.LocalAddrs) > 16 {
		return fmt.Errorf("node record: too large")
	}
	if !ed25519.Verify(n.Identity, n.signedBytes(), n.Sig) {
		return fmt.Errorf("node record of %s: bad signature", n.WgIP)
	}
	return nil
}

// Hello is the advertisement, sent to every direct peer periodically (and to static peers'
// public admin endpoints until they answer). Reply=true answers a Hello and echoes its
// timestamp, which gives the round-trip time.
type Hello struct {
	Node      Node           `json:"node"`
	DBVersion uint64         `json:"db_version"`
	Reply     bool           `json:"reply,omitempty"`
	Echo      int64          `json:"echo,omitempty"`       // Sent of the receiver's latest Hello to us
	EchoDelay int64          `json:"echo_delay,omitempty"` // ms between that Hello's arrival and this one
	Sent      int64          `json:"sent"`                 // unix ms
	YourAddr  netip.AddrPort `json:"your_addr,omitzero"`
	// Adj, in the greeting sent when a link comes up (not in periodic Hellos, whose size
	// must not grow with the number of peers), lets the peer confirm routes through us
	// without waiting for our route database.
	Adj *Adjacency `json:"adj,omitempty"` // where the answered Hello came from
}

// Entry is one destination of a route database.
type Entry struct {
	Node Node `json:"node"`
	// Path lists the gateways between the sender and the destination (empty: a direct peer
	// of the sender). Loop-free path vector: a receiver ignores entries whose path holds it.
	Path []netip.Addr `json:"path,omitempty"`
	// Seen is the destination's WireGuard endpoint as the sender's device observes it (set
	// for the sender's direct peers): the NAT-visible endpoint used for hole punching.
	Seen netip.AddrPort `json:"seen,omitzero"`
	// Adj is the destination's latest signed list of direct peers known to the sender.
	Adj *Adjacency `json:"adj,omitempty"`
}

// Adjacency is a node's signed list of its direct peers. A route to D through gateway G is
// only believed when D's adjacency lists G (and so on along the path): a holder of the
// shared key cannot attract another node's traffic by advertising a path it does not have.
type Adjacency struct {
	WgIP    netip.Addr   `json:"wg_ip"`
	KeyTime int64        `json:"key_time"` // the WireGuard key generation it belongs to
	Seq     uint64       `json:"seq"`      // increases with every change; the highest wins
	Peers   []netip.Addr `json:"peers"`
	Sig     []byte       `json:"sig"`
}

func (a *Adjacency) signedBytes() []byte {
	b := []byte("wirefleet mesh adjacency v1\x00")
	b = append(b, a.WgIP.String()...)
	b = append(b, 0)
	b = strconv.AppendInt(b, a.KeyTime, 10)
	b = append(b, 0)
	b = strconv.AppendUint(b, a.Seq, 10)
	b = append(b, 0)
	for _, p := range a.Peers {
		b = append(b, p.String()...)
		b = append(b, ',')
	}
	return b
}

// Sign signs the adjacency with the node's identity.
func (a *Adjacency) Sign(priv ed25519.PrivateKey) { a.Sig = ed25519.Sign(priv, a.signedBytes()) }

// Verify checks the signature against the identity the node's record is bound to.
func (a *Adjacency) Verify(id ed25519.PublicKey) error {
	if len(id) != ed25519.PublicKeySize || len(a.Peers) > 4096 || !ed25519.Verify(id, a.signedBytes(), a.Sig) {
		return fmt.Errorf("adjacency of %s: bad signature", a.WgIP)
	}
	return nil
}

// Newer reports whether a supersedes b (nil b: always).
func (a *Adjacency) Newer(b *Adjacency) bool {
	if b == nil {
		return true
	}
	if a.KeyTime != b.KeyTime {
		return a.KeyTime > b.KeyTime
	}
	return a.Seq > b.Seq
}

// Lists reports whether p is among the peers.
func (a *Adjacency) Lists(p netip.Addr) bool { return slices.Contains(a.Peers, p) }

// Binding is one TOFU binding of a wg IP to an identity.
type Binding struct {
	WgIP     netip.Addr        `json:"wg_ip"`
	Identity ed25519.PublicKey `json:"identity"`
}

// RouteDB is a node's route database, or one part of it: a database too large for one
// datagram is split (Split) into Parts parts of the same Version, reassembled by Assembler.
type RouteDB struct {
	From     netip.Addr `json:"from"`
	Version  uint64     `json:"version"`
	Part     int        `json:"part,omitempty"`
	Parts    int        `json:"parts,omitempty"` // 0 or 1: whole
	Entries  []Entry    `json:"entries"`
	Bindings []Binding  `json:"bindings,omitempty"`
}

// MaxParts bounds how many parts a database may have (about 2500 nodes).
const MaxParts = 64

// Split cuts db into parts whose encoded entries stay under budget bytes (bindings go with
// the first part). A database that fits is returned whole.
func Split(db RouteDB, budget int) []RouteDB {
	size := 200
	for _, b := range db.Bindings {
		size += 60 + len(b.Identity)*4/3
	}
	var parts []RouteDB
	cur := RouteDB{From: db.From, Version: db.Version, Bindings: db.Bindings}
	for _, e := range db.Entries {
		raw, _ := json.Marshal(e)
		if len(cur.Entries) > 0 && size+len(raw) > budget {
			parts = append(parts, cur)
			cur, size = RouteDB{From: db.From, Version: db.Version}, 200
		}
		cur.Entries = append(cur.Entries, e)
		size += len(raw) + 1
	}
	parts = append(parts, cur)
	if len(parts) > 1 {
		for i := range parts {
			parts[i].Part, parts[i].Parts = i, len(parts)
		}
	}
	return parts
}

// Assembler collects the parts of one sender's database. The zero value is ready.
type Assembler struct {
	version uint64
	parts   []*RouteDB
	have    int
}

// Add takes one part; it returns the whole database once every part of a version arrived.
// A part of a newer version drops an incomplete older one; parts of older versions are
// ignored.
func (a *Assembler) Add(p RouteDB) (RouteDB, bool) {
	if p.Parts <= 1 {
		return p, true
	}
	if p.Parts > MaxParts || p.Part < 0 || p.Part >= p.Parts {
		return RouteDB{}, false
	}
	if p.Version != a.version || len(a.parts) != p.Parts {
		if p.Version < a.version && a.parts != nil {
			return RouteDB{}, false
		}
		a.version, a.parts, a.have = p.Version, make([]*RouteDB, p.Parts), 0
	}
	if a.parts[p.Part] == nil {
		a.parts[p.Part] = &p
		a.have++
	}
	if a.have < len(a.parts) {
		return RouteDB{}, false
	}
	whole := RouteDB{From: p.From, Version: p.Version}
	for _, q := range a.parts {
		whole.Entries = append(whole.Entries, q.Entries...)
		whole.Bindings = append(whole.Bindings, q.Bindings...)
	}
	a.parts, a.have = nil, 0
	return whole, true
}

// RouteDBReq asks a peer for its route database.
type RouteDBReq struct {
	From netip.Addr `json:"from"`
}

// LocalContact is sent to a distant node's LAN addresses; the answer (Reply=true) comes
// from that address and proves the LAN path.
type LocalContact struct {
	Node  Node `json:"node"`
	Reply bool `json:"reply,omitempty"`
}

// Punch coordinates a NAT hole punch: the initiator proposes At (unix ms, a few hundred ms
// ahead); the other side accepts and both configure each other's NAT-visible endpoint then.
type Punch struct {
	From   netip.Addr     `json:"from"`
	To     netip.Addr     `json:"to"`
	At     int64          `json:"at"`
	Accept bool           `json:"accept,omitempty"`
	Target netip.AddrPort `json:"target"`        // the endpoint of the receiver the sender will aim at
	Mine   netip.AddrPort `json:"mine,omitzero"` // the sender's own NAT-visible endpoint, if it knows it
}

func (Hello) Type() Type        { return TypeHello }
func (RouteDB) Type() Type      { return TypeRouteDB }
func (RouteDBReq) Type() Type   { return TypeRouteDBReq }
func (LocalContact) Type() Type { return TypeLocalContact }
func (Punch) Type() Type        { return TypePunch }

func encodeBody(m Message) ([]byte, error) { return json.Marshal(m) }

func decodeBody(t Type, b []byte) (Message, error) {
	var err error
	switch t {
	case TypeHello:
		var m Hello
		err = json.Unmarshal(b, &m)
		return m, err
	case TypeRouteDB:
		var m RouteDB
		if err = json.Unmarshal(b, &m); err == nil && len(m.Entries) > 4096 {
			err = fmt.Errorf("route database with %d entries", len(m.Entries))
		}
		for i := range m.Entries {
			if len(m.Entries[i].Path) > 64 {
				return nil, fmt.Errorf("route database entry with a path of %d hops", len(m.Entries[i].Path))
			}
			m.Entries[i].Path = slices.Clip(m.Entries[i].Path)
		}
		return m, err
	case TypeRouteDBReq:
		var m RouteDBReq
		err = json.Unmarshal(b, &m)
		return m, err
	case TypeLocalContact:
		var m LocalContact
		err = json.Unmarshal(b, &m)
		return m, err
	case TypePunch:
		var m Punch
		err = json.Unmarshal(b, &m)
		return m, err
	}
	return nil, fmt.Errorf("unknown message type %d", t)
}
