// Package wire holds the JSON shapes of the REST API /api/v1, shared by the server
// (internal/api) and the Go client (internal/apiclient) so that the two cannot drift.
// docs/openapi.yaml documents the same shapes; the API tests check responses against them.
package wire

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"time"

	"github.com/wirefleet/wirefleet"
)

// Network is a network as the API shows it: everything but the private key.
type Network = wirefleet.Network

// NetworkCreate is the body of POST /api/v1/networks. Zero fields take the defaults
// (listen_port 51820, mtu 1420, persistent_keepalive 25, allocation sequential).
type NetworkCreate struct {
	Name       string   `json:"name"`
	ListenPort uint16   `json:"listen_port,omitempty"`
	IPv4       string   `json:"ipv4,omitempty"`
	IPv6       string   `json:"ipv6,omitempty"`
	Endpoint   string   `json:"endpoint,omitempty"`
	Routes     []string `json:"routes,omitempty"`
	DNS        []string `json:"dns,omitempty"`
	MTU        int      `json:"mtu,omitempty"`
	Keepalive  *int     `json:"persistent_keepalive,omitempty"`
	Allocation string   `json:"allocation,omitempty"`
}

// NetworkUpdate is the body of PATCH /api/v1/networks/{network}: absent fields keep their
// value. Changing ipv4/ipv6 ("" removes that family) is refused with 409 when a peer
// address would no longer fit.
type NetworkUpdate struct {
	ListenPort *uint16   `json:"listen_port,omitempty"`
	IPv4       *string   `json:"ipv4,omitempty"`
	IPv6       *string   `json:"ipv6,omitempty"`
	Allocation *string   `json:"allocation,omitempty"`
	Endpoint   *string   `json:"endpoint,omitempty"`
	Routes     *[]string `json:"routes,omitempty"`
	DNS        *[]string `json:"dns,omitempty"`
	MTU        *int      `json:"mtu,omitempty"`
	Keepalive  *int      `json:"persistent_keepalive,omitempty"`
}

// Peer is a peer as the API shows it. The preshared key itself is never shown.
type Peer struct {
	wirefleet.Peer
	HasPresharedKey bool `json:"has_preshared_key"`
}

// PeerFrom converts a domain peer.
func PeerFrom(p wirefleet.Peer) Peer { return Peer{Peer: p, HasPresharedKey: p.PresharedKey.IsSet()} }

// PeerCreate is the body of POST /api/v1/networks/{network}/peers. Without addresses, IPAM
// allocates one per address family of the network.
type PeerCreate struct {
	PublicKey    wirefleet.Key  `json:"public_key"`
	Name         string         `json:"name,omitempty"`
	Addresses    []string       `json:"addresses,omitempty"`
	PresharedKey *wirefleet.Key `json:"preshared_key,omitempty"`
	Enabled      *bool          `json:"enabled,omitempty"` // default true
	ExpiresAt    *time.Time     `json:"expires_at,omitempty"`
}

// PeerUpdate is the body of PATCH /api/v1/networks/{network}/peers/{key}.
type PeerUpdate struct {
	Name    *string `json:"name,omitempty"`
	Enabled *bool   `json:"enabled,omitempty"`
	// ExpiresAt: absent keeps the expiry, null removes it, a time sets it.
	ExpiresAt OptionalTime `json:"expires_at"`
}

// OptionalTime distinguishes an absent JSON field (Set false) from null (Set, Time nil).
type OptionalTime struct {
	Set  bool
	Time *time.Time
}

// UnmarshalJSON implements json.Unmarshaler.
func (o *OptionalTime) UnmarshalJSON(b []byte) error {
	o.Set = true
	if bytes.Equal(b, []byte("null")) {
		o.Time = nil
		return nil
	}
	var t time.Time
	if err := json.Unmarshal(b, &t); err != nil {
		return wirefleet.Errorf(wirefleet.KindInvalid, "expires_at %s is not an RFC 3339 time or null", b)
	}
	o.Time = &t
	return nil
}

// MarshalJSON implements json.Marshaler (absent is encoded as null; use omitzero to drop it).
func (o OptionalTime) MarshalJSON() ([]byte, error) {
	if o.Time == nil {
		return []byte("null"), nil
	}
	return json.Marshal(o.Time)
}

// IsZero lets `omitzero` drop an unset OptionalTime.
func (o OptionalTime) IsZero() bool { return !o.Set }

// PeerList is a page of peers. NextCursor is empty on the last page; pass it as ?cursor=
// to get the next one.
type PeerList struct {
	Items      []Peer `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// NetworkList is the list of networks.
type NetworkList struct {
	Items []Network `json:"items"`
}

// ClientCreate is the body of POST /api/v1/networks/{network}/clients: the server generates
// the key pair (and a preshared key unless preshared_key is false) and returns the config once.
type ClientCreate struct {
	Name         string     `json:"name"`
	Addresses    []string   `json:"addresses,omitempty"`
	PresharedKey *bool      `json:"preshared_key,omitempty"` // default true
	ExpiresAt    *time.Time `json:"expires_at,omitempty"`
}

// Client is the JSON answer of POST …/clients: the stored peer and its wg-quick config,
// which holds the private key. It is shown this once and never stored.
type Client struct {
	Peer   Peer   `json:"peer"`
	Config string `json:"config"`
}

// TokenCreate is the body of POST /api/v1/tokens.
type TokenCreate struct {
	Name      string           `json:"name,omitempty"`
	Roles     []wirefleet.Role `json:"roles"`
	Networks  []string         `json:"networks,omitempty"`
	ExpiresAt *time.Time       `json:"expires_at,omitempty"`
}

// TokenCreated is the answer of POST /api/v1/tokens; Secret is shown this once.
type TokenCreated struct {
	Token  wirefleet.Token `json:"token"`
	Secret string          `json:"secret"`
}

// TokenList is the list of tokens (never with secrets or hashes).
type TokenList struct {
	Items []wirefleet.Token `json:"items"`
}

// NetworkImport is the body of POST /api/v1/networks/import: a wg-quick server config whose
// [Interface] becomes the network and whose [Peer] sections become its peers, in one
// transaction.
type NetworkImport struct {
	Name     string `json:"name"`
	Config   string `json:"config"`
	Endpoint string `json:"endpoint,omitempty"`
}

// NetworkImported is the answer of an import.
type NetworkImported struct {
	Network Network `json:"network"`
	Peers   int     `json:"peers"`
	// Warnings name what the file had that was not imported (PostUp, peer endpoints…).
	Warnings []string `json:"warnings,omitempty"`
}

// Health is the answer of /healthz and /readyz.
type Health struct {
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// ParseAddrs parses a list of addresses; field names the input in errors.
func ParseAddrs(field string, ss []string) ([]netip.Addr, error) {
	out := make([]netip.Addr, 0, len(ss))
	for _, s := range ss {
		a, err := wirefleet.ParseAddr(field, s)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}
