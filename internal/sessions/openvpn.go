package sessions

import (
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/wirefleet/wirefleet"
)

// Session protocols.
const (
	ProtocolWireGuard = "wireguard"
	ProtocolOpenVPN   = "openvpn"
)

// OpenVPNClient is one client connected to one of a gateway's OpenVPN server processes,
// as the gateway read it over the management interface ("status 3").
type OpenVPNClient struct {
	// Process is the OpenVPN process: its management socket's name without ".sock".
	Process    string `json:"process"`
	CommonName string `json:"common_name"`
	// IPv4 and IPv6 are the virtual addresses, "" if OpenVPN gave none.
	IPv4 string `json:"ipv4,omitempty"`
	IPv6 string `json:"ipv6,omitempty"`
	// BytesReceived and BytesSent count this connection's traffic from and to the client.
	BytesReceived int64 `json:"bytes_received"`
	BytesSent     int64 `json:"bytes_sent"`
	// ConnectedSince is when the connection was made; with the gateway, process and CN it
	// identifies the session, so a reconnect is a new session.
	ConnectedSince time.Time `json:"connected_since"`
	// Endpoint is the client's real address ("203.0.113.7:1194"), kept only with
	// Config.KeepEndpoints.
	Endpoint string `json:"endpoint,omitempty"`
}

type ovpnID struct {
	gateway, process, cn string
	since                int64 // Unix nanoseconds (time.Time is not a safe map key)
}

// ingestOpenVPN opens, updates and closes the OpenVPN sessions of r's gateway. t.mu is
// held.
func (t *Tracker) ingestOpenVPN(r Report, now time.Time) {
	seen := make(map[ovpnID]bool, len(r.OpenVPN))
	for _, c := range r.OpenVPN {
		id := ovpnID{r.Gateway, c.Process, c.CommonName, c.ConnectedSince.UnixNano()}
		seen[id] = true
		s := t.ovpn[id]
		if s == nil {
			s = &Session{ID: newID(), Protocol: ProtocolOpenVPN, Gateway: r.Gateway, Process: c.Process,
				CommonName: c.CommonName, Start: c.ConnectedSince.UTC()}
			t.ovpn[id] = s
			t.update(s, c, now)
			t.emit(Event{Type: "connect", Time: now, Session: *s})
			continue
		}
		t.update(s, c, now)
	}
	for id, s := range t.ovpn {
		if id.gateway == r.Gateway && !seen[id] && !slices.Contains(r.OpenVPNUnreachable, id.process) {
			t.closeOpenVPN(id, s, now)
		}
	}
}

// update sets what changes during a connection. OpenVPN's counters are per connection,
// so they are the session's bytes as they are.
func (t *Tracker) update(s *Session, c OpenVPNClient, now time.Time) {
	s.LastSeen = now.UTC()
	s.RxBytes, s.TxBytes = c.BytesReceived, c.BytesSent
	s.IPv4, s.IPv6 = c.IPv4, c.IPv6
	if t.cfg.KeepEndpoints && c.Endpoint != "" {
		s.Endpoint = c.Endpoint
	}
}

func (t *Tracker) closeOpenVPN(id ovpnID, s *Session, now time.Time) {
	end := now.UTC()
	s.End = &end
	delete(t.ovpn, id)
	t.closed = appendRing(t.closed, *s, t.cfg.MaxClosed)
	t.emit(Event{Type: "disconnect", Time: now, Session: *s})
}

// validateOpenVPN checks the OpenVPN part of a report (outside input).
func validateOpenVPN(r Report) error {
	for i, c := range r.OpenVPN {
		if err := validName("process", c.Process, 255); err != nil {
			return wirefleet.Errorf(wirefleet.KindInvalid, "openvpn[%d]: %v", i, err)
		}
		if err := validName("common_name", c.CommonName, 256); err != nil {
			return wirefleet.Errorf(wirefleet.KindInvalid, "openvpn[%d]: %v", i, err)
		}
		if c.BytesReceived < 0 || c.BytesSent < 0 {
			return wirefleet.Errorf(wirefleet.KindInvalid, "openvpn[%d]: byte counters must not be negative", i)
		}
		if c.ConnectedSince.IsZero() {
			return wirefleet.Errorf(wirefleet.KindInvalid, "openvpn[%d]: connected_since is missing", i)
		}
		for _, a := range []struct{ name, v string }{{"ipv4", c.IPv4}, {"ipv6", c.IPv6}} {
			if _, ok := parseAddr(a.v); !ok {
				return wirefleet.Errorf(wirefleet.KindInvalid, "openvpn[%d]: %s %q is not an IP address", i, a.name, truncate(a.v))
			}
		}
		if len(c.Endpoint) > 64 {
			return wirefleet.Errorf(wirefleet.KindInvalid, "openvpn[%d]: endpoint is too long", i)
		}
	}
	for i, p := range r.OpenVPNUnreachable {
		if err := validName("process", p, 255); err != nil {
			return wirefleet.Errorf(wirefleet.KindInvalid, "openvpn_unreachable[%d]: %v", i, err)
		}
	}
	return nil
}

// validName accepts 1 to max bytes of UTF-8 without control characters (a process name
// also without '/': it is a file name).
func validName(field, s string, max int) error {
	switch {
	case s == "":
		return wirefleet.Errorf(wirefleet.KindInvalid, "%s is missing", field)
	case len(s) > max:
		return wirefleet.Errorf(wirefleet.KindInvalid, "%s is longer than %d bytes", field, max)
	case !utf8.ValidString(s):
		return wirefleet.Errorf(wirefleet.KindInvalid, "%s is not valid UTF-8", field)
	case strings.ContainsFunc(s, unicode.IsControl):
		return wirefleet.Errorf(wirefleet.KindInvalid, "%s %q contains control characters", field, s)
	case field == "process" && strings.Contains(s, "/"):
		return wirefleet.Errorf(wirefleet.KindInvalid, "process %q contains '/'", s)
	}
	return nil
}

// parseAddr parses an optional address: "" is the zero Addr, and fine.
func parseAddr(s string) (netip.Addr, bool) {
	if s == "" {
		return netip.Addr{}, true
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a, true
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
