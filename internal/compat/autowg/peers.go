package autowg

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/control"
)

// peerEntry is one device in peers.json (fields in upstream's sorted order).
type peerEntry struct {
	Created       int64  `json:"created"`
	IP            string `json:"ip"`
	LastHandshake int64  `json:"last_handshake"`
	PubKey        string `json:"pubkey"`
	RxBytes       int64  `json:"rx_bytes"`
	TxBytes       int64  `json:"tx_bytes"`
}

// authorized compares the Authorization header with "Basic base64(HTTPAuth)" in constant time.
func authorized(r *http.Request, auth string) bool {
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(auth))
	return subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(want)) == 1
}

// peersJSON lists the registered names whose current key is on the interface.
func (h *Handler) peersJSON(w http.ResponseWriter, r *http.Request, s *site) {
	if !authorized(r, s.HTTPAuth) {
		w.Header().Set("WWW-Authenticate", "Basic realm=auth")
		plain(w, http.StatusUnauthorized, "unauthorized")
		return
	}
	ctx := r.Context()
	out := map[string]peerEntry{}
	registered := map[wirefleet.Key]wirefleet.Peer{}
	f := control.PeerFilter{Network: s.Network, Limit: control.MaxPageSize}
	for {
		page, err := h.svc.ListPeers(ctx, f)
		if err != nil {
			h.fail(w, "list peers", err)
			return
		}
		for _, p := range page.Peers {
			if len(p.Addresses) == 1 && s.Pool.Contains(p.Addresses[0]) && p.Active() {
				registered[p.PublicKey] = p
			}
		}
		if page.NextCursor == "" {
			break
		}
		f.Cursor = page.NextCursor
	}
	if s.Device != nil {
		ps, err := s.Device.Peers(ctx)
		if err != nil {
			h.fail(w, "read the device's peers", err)
			return
		}
		for _, st := range ps {
			p, ok := registered[st.PublicKey]
			if !ok {
				continue
			}
			e := peerEntry{Created: p.CreatedAt.Unix(), IP: p.Addresses[0].String(), PubKey: p.PublicKey.String(), RxBytes: st.RxBytes, TxBytes: st.TxBytes}
			if !st.LastHandshake.IsZero() {
				e.LastHandshake = st.LastHandshake.Unix()
			}
			out[p.Name] = e
		}
	} else {
		// No local device (a control plane whose gateways apply the peers): report the
		// registrations without statistics.
		for _, p := range registered {
			out[p.Name] = peerEntry{Created: p.CreatedAt.Unix(), IP: p.Addresses[0].String(), PubKey: p.PublicKey.String()}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "    ")
	_ = enc.Encode(out) // map keys are sorted by encoding/json
}
