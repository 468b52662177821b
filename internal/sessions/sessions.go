// Package sessions derives client sessions from the per-peer statistics gateways push:
// a session opens on a handshake and closes after a configurable inactivity (default
// 600 s, as wig) without a newer handshake. WireGuard re-handshakes every two minutes
// while traffic flows, so the last handshake is the activity signal. The tracker keeps per
// peer the last handshake seen on any gateway, and counts each session's bytes as the sum
// of the counter increases on every gateway (a counter that goes down — a recreated
// device — counts from zero).
//
// OpenVPN connections (reported by managed gateways next to the WireGuard peers, see
// openvpn.go) are sessions too, with protocol "openvpn": OpenVPN knows when a client
// connects, so such a session is exactly one connection of one CN to one process.
//
// Endpoint IPs are personal data: they are stored only when Config.KeepEndpoints is set.
// Sessions live in memory (the open ones and a bounded ring of closed ones); connect and
// disconnect events go to sinks (a JSON-lines file, a webhook) for a SIEM to keep.
package sessions

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/wirefleet/wirefleet"
)

// PeerStats is one peer as a gateway read it from its device.
type PeerStats struct {
	Network   string        `json:"network"`
	PublicKey wirefleet.Key `json:"public_key"`
	// LastHandshake is null when the peer never completed a handshake.
	LastHandshake *time.Time `json:"last_handshake"`
	RxBytes       int64      `json:"rx_bytes"`
	TxBytes       int64      `json:"tx_bytes"`
	// Endpoint is the peer's current UDP endpoint ("203.0.113.7:51820"), if known.
	Endpoint string `json:"endpoint,omitempty"`
}

// Report is one push of statistics from a gateway.
type Report struct {
	// Gateway names the reporting gateway (host name by default).
	Gateway string      `json:"gateway"`
	Time    time.Time   `json:"time"`
	Peers   []PeerStats `json:"peers"`
	// OpenVPN is every client of the gateway's OpenVPN processes. Absent or null: not
	// reported (a gateway without the OpenVPN bridge, or a batch after the first one);
	// present, even empty: complete, except for the processes in OpenVPNUnreachable,
	// whose clients are unknown this time. A session whose client is no longer listed
	// closes.
	OpenVPN            []OpenVPNClient `json:"openvpn"`
	OpenVPNUnreachable []string        `json:"openvpn_unreachable,omitempty"`
}

// Session is one connection of a peer, open or closed.
type Session struct {
	ID string `json:"id"`
	// Protocol is "wireguard" or "openvpn".
	Protocol string `json:"protocol"`
	// Network and PublicKey identify a WireGuard peer; OpenVPN clients have neither.
	Network   string        `json:"network,omitempty"`
	PublicKey wirefleet.Key `json:"public_key,omitzero"`
	// CommonName (the client certificate's CN) and Process (the OpenVPN server process,
	// its management socket's name) identify an OpenVPN connection; IPv4 and IPv6 are the
	// virtual addresses OpenVPN gave it.
	CommonName string `json:"common_name,omitempty"`
	Process    string `json:"process,omitempty"`
	IPv4       string `json:"ipv4,omitempty"`
	IPv6       string `json:"ipv6,omitempty"`
	// Gateway is the gateway of the latest handshake (OpenVPN: the reporting gateway).
	Gateway string `json:"gateway"`
	// Start is the first handshake (OpenVPN: the connected-since time OpenVPN reported).
	Start time.Time `json:"start"`
	// LastSeen is the latest handshake of the session (OpenVPN: the latest report that
	// listed the connection).
	LastSeen time.Time `json:"last_seen"`
	// End is when the inactivity was detected; null while open.
	End      *time.Time `json:"end"`
	RxBytes  int64      `json:"rx_bytes"`
	TxBytes  int64      `json:"tx_bytes"`
	Endpoint string     `json:"endpoint,omitempty"`
}

// Open reports whether the session is still open.
func (s Session) Open() bool { return s.End == nil }

// Event is a connect or disconnect, as exported to a SIEM.
type Event struct {
	Type    string    `json:"event"` // "connect" or "disconnect"
	Time    time.Time `json:"time"`
	Session Session   `json:"session"`
}

// Sink receives events. Send must not block (sinks queue and drop when full).
type Sink interface{ Send(Event) }

// Config configures a Tracker.
type Config struct {
	// Inactivity closes a session with no handshake for that long (default 600 s).
	Inactivity time.Duration
	// KeepEndpoints stores peers' endpoint IPs in sessions and events (off by default).
	KeepEndpoints bool
	// MaxClosed bounds the closed sessions kept in memory (default 10000); MaxEvents the
	// events kept for export (default 10000).
	MaxClosed, MaxEvents int
	Now                  func() time.Time
	Logger               *slog.Logger
	Sinks                []Sink
}

type peerID struct {
	network string
	key     wirefleet.Key
}

type counters struct{ rx, tx int64 }

type track struct {
	lastHandshake time.Time
	gateway       string
	gws           map[string]counters // last counters per gateway
	open          *Session
}

// Tracker derives sessions. It is safe for concurrent use.
type Tracker struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex // guards everything below
	peers    map[peerID]*track
	ovpn     map[ovpnID]*Session // open OpenVPN sessions
	closed   []Session           // ring, oldest first
	events   []Event             // ring, oldest first
	gateways map[string]time.Time
}

// New returns a Tracker.
func New(cfg Config) *Tracker {
	if cfg.Inactivity <= 0 {
		cfg.Inactivity = 600 * time.Second
	}
	if cfg.MaxClosed <= 0 {
		cfg.MaxClosed = 10000
	}
	if cfg.MaxEvents <= 0 {
		cfg.MaxEvents = 10000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	t := &Tracker{cfg: cfg, log: cfg.Logger, peers: map[peerID]*track{}, ovpn: map[ovpnID]*Session{}, gateways: map[string]time.Time{}}
	if t.log == nil {
		t.log = slog.Default()
	}
	return t
}

// Ingest folds one report in. Peers of networks for which allowed returns false are
// ignored (a gateway scoped to some networks cannot report for others); OpenVPN clients
// belong to no network and are not filtered.
func (t *Tracker) Ingest(r Report, allowed func(network string) bool) {
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.gateways[r.Gateway] = now
	for _, ps := range r.Peers {
		if allowed != nil && !allowed(ps.Network) {
			continue
		}
		id := peerID{ps.Network, ps.PublicKey}
		tr := t.peers[id]
		if tr == nil {
			tr = &track{gws: map[string]counters{}}
			t.peers[id] = tr
		}
		// Bytes since the previous report of this gateway; a first report of the pair is
		// only a baseline, and a counter going down (a recreated device) restarts at zero.
		prev, seen := tr.gws[r.Gateway]
		var drx, dtx int64
		if seen {
			drx, dtx = ps.RxBytes-prev.rx, ps.TxBytes-prev.tx
			if drx < 0 || dtx < 0 {
				drx, dtx = ps.RxBytes, ps.TxBytes
			}
		}
		tr.gws[r.Gateway] = counters{ps.RxBytes, ps.TxBytes}
		if ps.LastHandshake != nil && ps.LastHandshake.After(tr.lastHandshake) {
			tr.lastHandshake = ps.LastHandshake.UTC()
			tr.gateway = r.Gateway
		}
		if tr.open == nil && !tr.lastHandshake.IsZero() && now.Sub(tr.lastHandshake) < t.cfg.Inactivity {
			tr.open = &Session{ID: newID(), Protocol: ProtocolWireGuard, Network: ps.Network, PublicKey: ps.PublicKey, Gateway: tr.gateway, Start: tr.lastHandshake, LastSeen: tr.lastHandshake}
			if t.cfg.KeepEndpoints {
				tr.open.Endpoint = ps.Endpoint
			}
			t.emit(Event{Type: "connect", Time: now, Session: *tr.open})
		}
		if s := tr.open; s != nil {
			s.LastSeen, s.Gateway = tr.lastHandshake, tr.gateway
			s.RxBytes += drx
			s.TxBytes += dtx
			if t.cfg.KeepEndpoints && ps.Endpoint != "" && r.Gateway == tr.gateway {
				s.Endpoint = ps.Endpoint
			}
		}
	}
	if r.OpenVPN != nil {
		t.ingestOpenVPN(r, now)
	}
}

// Sweep closes sessions inactive at now; Run calls it periodically.
func (t *Tracker) Sweep() int {
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, tr := range t.peers {
		if s := tr.open; s != nil && now.Sub(tr.lastHandshake) >= t.cfg.Inactivity {
			end := now.UTC()
			s.End = &end
			tr.open = nil
			t.closed = appendRing(t.closed, *s, t.cfg.MaxClosed)
			t.emit(Event{Type: "disconnect", Time: now, Session: *s})
			n++
		}
	}
	for id, s := range t.ovpn {
		if now.Sub(s.LastSeen) >= t.cfg.Inactivity {
			t.closeOpenVPN(id, s, now)
			n++
		}
	}
	return n
}

// Run sweeps every tenth of the inactivity (at most every 30 s) until ctx ends.
func (t *Tracker) Run(ctx context.Context) error {
	tick := time.NewTicker(min(t.cfg.Inactivity/10, 30*time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			t.Sweep()
		}
	}
}

func (t *Tracker) emit(e Event) {
	t.events = appendRing(t.events, e, t.cfg.MaxEvents)
	for _, s := range t.cfg.Sinks {
		s.Send(e)
	}
}

func appendRing[T any](ring []T, v T, max int) []T {
	if len(ring) >= max {
		copy(ring, ring[1:])
		ring = ring[:len(ring)-1]
	}
	return append(ring, v)
}

func newID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Filter selects sessions.
type Filter struct {
	// Protocol is "", "wireguard" or "openvpn".
	Protocol   string
	CommonName string
	Network    string
	PublicKey  *wirefleet.Key
	// State is "", "open" or "closed".
	State string
	// Since keeps sessions active at or after it (LastSeen or End).
	Since time.Time
	// Networks restricts to a caller's scope; empty means all.
	Networks []string
	Limit    int
}

func (f Filter) match(s Session) bool {
	if f.Protocol != "" && s.Protocol != f.Protocol || f.CommonName != "" && s.CommonName != f.CommonName {
		return false
	}
	if f.Network != "" && s.Network != f.Network {
		return false
	}
	if len(f.Networks) > 0 && !slices.Contains(f.Networks, s.Network) {
		return false
	}
	if f.PublicKey != nil && s.PublicKey != *f.PublicKey {
		return false
	}
	if f.State == "open" && !s.Open() || f.State == "closed" && s.Open() {
		return false
	}
	if !f.Since.IsZero() {
		last := s.LastSeen
		if s.End != nil {
			last = *s.End
		}
		if last.Before(f.Since) {
			return false
		}
	}
	return true
}

// List returns matching sessions, newest start first.
func (t *Tracker) List(f Filter) []Session {
	t.mu.Lock()
	var out []Session
	for _, tr := range t.peers {
		if tr.open != nil && f.match(*tr.open) {
			out = append(out, *tr.open)
		}
	}
	for _, s := range t.ovpn {
		if f.match(*s) {
			out = append(out, *s)
		}
	}
	for _, s := range t.closed {
		if f.match(s) {
			out = append(out, s)
		}
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b Session) int {
		if c := b.Start.Compare(a.Start); c != 0 {
			return c
		}
		return compareStr(a.ID, b.ID)
	})
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out
}

func compareStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Events returns the kept events at or after since, oldest first, within networks (empty:
// all).
func (t *Tracker) Events(since time.Time, networks []string) []Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Event
	for _, e := range t.events {
		if !e.Time.Before(since) && (len(networks) == 0 || slices.Contains(networks, e.Session.Network)) {
			out = append(out, e)
		}
	}
	return out
}

// LastSeen is a peer's latest handshake on any gateway.
type LastSeen struct {
	Network       string        `json:"network"`
	PublicKey     wirefleet.Key `json:"public_key"`
	LastHandshake time.Time     `json:"last_handshake"`
	Gateway       string        `json:"gateway"`
}

// LastSeenAll returns every peer ever seen with a handshake (within networks; empty: all).
func (t *Tracker) LastSeenAll(networks []string) []LastSeen {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []LastSeen
	for id, tr := range t.peers {
		if tr.lastHandshake.IsZero() || len(networks) > 0 && !slices.Contains(networks, id.network) {
			continue
		}
		out = append(out, LastSeen{Network: id.network, PublicKey: id.key, LastHandshake: tr.lastHandshake, Gateway: tr.gateway})
	}
	slices.SortFunc(out, func(a, b LastSeen) int {
		if c := compareStr(a.Network, b.Network); c != 0 {
			return c
		}
		return compareStr(a.PublicKey.String(), b.PublicKey.String())
	})
	return out
}

// Gateways returns how many gateways reported within window (the "connected gateways"
// metric).
func (t *Tracker) Gateways(window time.Duration) int {
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, at := range t.gateways {
		if now.Sub(at) <= window {
			n++
		}
	}
	return n
}
