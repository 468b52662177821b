package wire

import (
	"time"

	"github.com/wirefleet/wirefleet"
)

// Session is a session as GET /api/v1/sessions lists it (derived by internal/sessions
// from the gateways' statistics). WireGuard sessions have Network and PublicKey; OpenVPN
// sessions CommonName and Process instead.
type Session struct {
	ID         string        `json:"id"`
	Protocol   string        `json:"protocol"` // wireguard or openvpn
	Network    string        `json:"network,omitempty"`
	PublicKey  wirefleet.Key `json:"public_key,omitzero"`
	CommonName string        `json:"common_name,omitempty"`
	Process    string        `json:"process,omitempty"`
	IPv4       string        `json:"ipv4,omitempty"`
	IPv6       string        `json:"ipv6,omitempty"`
	Gateway    string        `json:"gateway"`
	Start      time.Time     `json:"start"`
	LastSeen   time.Time     `json:"last_seen"`
	// End is null while the session is open.
	End      *time.Time `json:"end"`
	RxBytes  int64      `json:"rx_bytes"`
	TxBytes  int64      `json:"tx_bytes"`
	Endpoint string     `json:"endpoint,omitempty"`
}

// Open reports whether the session is still open.
func (s Session) Open() bool { return s.End == nil }

// SessionList is the answer of GET /api/v1/sessions.
type SessionList struct {
	Sessions []Session `json:"sessions"`
}
