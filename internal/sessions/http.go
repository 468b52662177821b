package sessions

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/wirefleet/wirefleet"
)

// Routes served by Handler (mounted by the server composition behind the API's auth).
const (
	StatsPath    = "/api/v1/stats"           // POST, role gateway (perm stats:write)
	SessionsPath = "/api/v1/sessions"        // GET, roles admin/operator/viewer (peers:read)
	EventsPath   = "/api/v1/sessions/events" // GET JSON lines, same roles
	LastSeenPath = "/api/v1/sessions/peers"  // GET per-peer last handshake, same roles
)

// MaxReportBytes bounds a stats push (50k peers ≈ 12 MB of JSON).
const MaxReportBytes = 32 << 20

// Caller is the authenticated caller as the API identified it.
type Caller struct {
	// Name identifies the caller ("token:<id>"), used as the gateway name when a report
	// does not give one.
	Name string
	// Networks scopes the caller; empty means all.
	Networks []string
}

func (c Caller) inScope(n string) bool { return len(c.Networks) == 0 || slices.Contains(c.Networks, n) }

// Handler serves the stats and sessions routes. Handlers return wirefleet errors that the
// API renders as problem+json.
type Handler struct{ T *Tracker }

// PushStats serves POST /api/v1/stats: a gateway's Report. Peers outside the caller's
// scope are refused as a whole (403), so a misconfigured gateway is noticed. OpenVPN
// clients belong to no network: any caller allowed to push may report them, and only
// readers not scoped to networks see their sessions.
func (h Handler) PushStats(w http.ResponseWriter, r *http.Request, c Caller) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxReportBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return wirefleet.Errorf(wirefleet.KindInvalid, "stats report is larger than %d bytes: push in smaller batches", MaxReportBytes)
		}
		return wirefleet.Errorf(wirefleet.KindInvalid, "read stats report: %v", err)
	}
	rep, err := ParseReport(body)
	if err != nil {
		return err
	}
	for _, p := range rep.Peers {
		if !c.inScope(p.Network) {
			return wirefleet.Errorf(wirefleet.KindForbidden, "%s may not report statistics for network %q", c.Name, p.Network)
		}
	}
	if rep.Gateway == "" {
		rep.Gateway = c.Name
	}
	h.T.Ingest(rep, nil)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ParseReport decodes and validates a stats report (outside input).
func ParseReport(b []byte) (Report, error) {
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return Report{}, wirefleet.Errorf(wirefleet.KindInvalid, "stats report is not valid JSON of the documented shape: %v", err)
	}
	if len(rep.Gateway) > 253 {
		return Report{}, wirefleet.Errorf(wirefleet.KindInvalid, "gateway name is longer than 253 bytes")
	}
	for i, p := range rep.Peers {
		if err := wirefleet.ValidateNetworkName(p.Network); err != nil {
			return Report{}, wirefleet.Errorf(wirefleet.KindInvalid, "peers[%d]: %v", i, err)
		}
		if p.PublicKey.IsZero() {
			return Report{}, wirefleet.Errorf(wirefleet.KindInvalid, "peers[%d]: public_key is missing", i)
		}
		if p.RxBytes < 0 || p.TxBytes < 0 {
			return Report{}, wirefleet.Errorf(wirefleet.KindInvalid, "peers[%d]: byte counters must not be negative", i)
		}
		if len(p.Endpoint) > 64 {
			return Report{}, wirefleet.Errorf(wirefleet.KindInvalid, "peers[%d]: endpoint is too long", i)
		}
	}
	if err := validateOpenVPN(rep); err != nil {
		return Report{}, err
	}
	return rep, nil
}

// ParseFilter reads the query of GET /api/v1/sessions: protocol=wireguard|openvpn,
// network, public_key, common_name, state=open|closed, since (RFC 3339), limit.
func ParseFilter(q map[string][]string) (Filter, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	var f Filter
	f.Network = get("network")
	switch f.Protocol = get("protocol"); f.Protocol {
	case "", ProtocolWireGuard, ProtocolOpenVPN:
	default:
		return Filter{}, wirefleet.Errorf(wirefleet.KindInvalid, "protocol %q is invalid: use wireguard or openvpn", f.Protocol)
	}
	f.CommonName = get("common_name")
	if s := get("public_key"); s != "" {
		k, err := wirefleet.ParseKey(s)
		if err != nil {
			return Filter{}, wirefleet.Errorf(wirefleet.KindInvalid, "public_key %q is not a base64 WireGuard key", s)
		}
		f.PublicKey = &k
	}
	switch f.State = get("state"); f.State {
	case "", "open", "closed":
	default:
		return Filter{}, wirefleet.Errorf(wirefleet.KindInvalid, "state %q is invalid: use open or closed", f.State)
	}
	if s := get("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return Filter{}, wirefleet.Errorf(wirefleet.KindInvalid, "since %q is not an RFC 3339 time like 2026-01-02T15:04:05Z", s)
		}
		f.Since = t
	}
	if s := get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100000 {
			return Filter{}, wirefleet.Errorf(wirefleet.KindInvalid, "limit %q is invalid: use 1-100000", s)
		}
		f.Limit = n
	}
	return f, nil
}

// List serves GET /api/v1/sessions.
func (h Handler) List(w http.ResponseWriter, r *http.Request, c Caller) error {
	f, err := ParseFilter(r.URL.Query())
	if err != nil {
		return err
	}
	if f.Network != "" && !c.inScope(f.Network) {
		return wirefleet.Errorf(wirefleet.KindForbidden, "%s may not read sessions of network %q", c.Name, f.Network)
	}
	f.Networks = c.Networks
	list := h.T.List(f)
	if list == nil {
		list = []Session{}
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(map[string]any{"sessions": list})
}

// Events serves GET /api/v1/sessions/events?since=RFC3339 as JSON lines (one event per
// line), the export a SIEM can poll.
func (h Handler) Events(w http.ResponseWriter, r *http.Request, c Caller) error {
	var since time.Time
	if s := r.URL.Query().Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return wirefleet.Errorf(wirefleet.KindInvalid, "since %q is not an RFC 3339 time like 2026-01-02T15:04:05Z", s)
		}
		since = t
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	for _, e := range h.T.Events(since, c.Networks) {
		if err := enc.Encode(e); err != nil {
			return nil
		}
	}
	return nil
}

// LastSeen serves GET /api/v1/sessions/peers: every peer's latest handshake on any
// gateway.
func (h Handler) LastSeen(w http.ResponseWriter, r *http.Request, c Caller) error {
	list := h.T.LastSeenAll(c.Networks)
	if n := r.URL.Query().Get("network"); n != "" {
		list = slices.DeleteFunc(list, func(l LastSeen) bool { return l.Network != n })
	}
	if list == nil {
		list = []LastSeen{}
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(map[string]any{"peers": list})
}
