package vpndaemon

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/wgdev"
)

// onlineWindow is how recent a handshake must be for a peer to count as connected
// (peer_list?show_all=no, w_peer_count): vpn-daemon's 3 minutes, a little more than
// WireGuard's 2-minute rekey interval.
const onlineWindow = 3 * time.Minute

// peerJSON is one peer as vpn-daemon renders it, in peer_list and in remove_peer's answer.
type peerJSON struct {
	PublicKey string   `json:"public_key"`
	IPNet     []string `json:"ip_net"`
	// LastHandshakeTime is RFC 3339 UTC ("…Z"), or null when the peer never did one: the v3
	// portal warns on a missing key but accepts null.
	LastHandshakeTime *string `json:"last_handshake_time"`
	BytesIn           int64   `json:"bytes_in"`
	BytesOut          int64   `json:"bytes_out"`
}

func renderPeer(p wgdev.PeerStatus) peerJSON {
	out := peerJSON{
		PublicKey: p.PublicKey.String(),
		IPNet:     make([]string, 0, len(p.AllowedIPs)),
		BytesIn:   max(p.RxBytes, 0),
		BytesOut:  max(p.TxBytes, 0),
	}
	for _, a := range p.AllowedIPs {
		out.IPNet = append(out.IPNet, a.String())
	}
	if handshook(p) {
		s := p.LastHandshake.UTC().Format(time.RFC3339)
		out.LastHandshakeTime = &s
	}
	return out
}

// handshook reports whether the peer ever completed a handshake. Backends report "never"
// as the zero time; some as the Unix epoch, which must not be rendered as 1970.
func handshook(p wgdev.PeerStatus) bool {
	return !p.LastHandshake.IsZero() && p.LastHandshake.Unix() > 0
}

// online reports whether the peer's last handshake is within the window before now.
func online(p wgdev.PeerStatus, now time.Time) bool {
	return handshook(p) && now.Sub(p.LastHandshake) <= onlineWindow
}

// lockWrites takes the write lock within ctx.
func (h *Handler) lockWrites(ctx context.Context) error {
	select {
	case h.writes <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", errBusy, ctx.Err())
	}
}

func (h *Handler) unlockWrites() { <-h.writes }

func (h *Handler) addPeer(w http.ResponseWriter, r *http.Request) {
	peer, err := h.parseAddPeer(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.deviceTimeout)
	defer cancel()
	if err := h.lockWrites(ctx); err != nil {
		h.fail(w, r, err)
		return
	}
	defer h.unlockWrites()
	// An upsert: an existing peer keeps its handshake and counters and only gets the new
	// allowed IPs, so the portal's re-add of every known peer after a failed sync is harmless.
	if err := h.dev.ApplyPeers(ctx, []wgdev.Peer{peer}, nil); err != nil {
		h.failApply(w, r, fmt.Errorf("add peer %s: %w", peer.PublicKey, err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// parseAddPeer validates the whole request before anything touches the device.
func (h *Handler) parseAddPeer(r *http.Request) (wgdev.Peer, error) {
	form, err := readForm(r)
	if err != nil {
		return wgdev.Peer{}, err
	}
	raw, err := single(form, "public_key")
	if err != nil {
		return wgdev.Peer{}, err
	}
	key, err := parsePublicKey(raw)
	if err != nil {
		return wgdev.Peer{}, err
	}
	if own, ok := h.ownKey(r.Context()); ok && own == key {
		return wgdev.Peer{}, badf("invalid public_key: it is this node's own public key")
	}
	nets, err := parseIPNets(form["ip_net"])
	if err != nil {
		return wgdev.Peer{}, err
	}
	return wgdev.Peer{PublicKey: key, AllowedIPs: nets}, nil
}

func (h *Handler) peerList(w http.ResponseWriter, r *http.Request) {
	showAll, err := parseYesNo(r.URL.Query(), "show_all")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.deviceTimeout)
	defer cancel()
	peers, err := h.dev.Peers(ctx)
	if err != nil {
		h.fail(w, r, fmt.Errorf("list peers: %w", err))
		return
	}
	now := h.now()
	out := struct {
		PeerList []peerJSON `json:"peer_list"`
	}{PeerList: make([]peerJSON, 0, len(peers))}
	for _, p := range peers {
		if showAll || online(p, now) {
			out.PeerList = append(out.PeerList, renderPeer(p))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) removePeer(w http.ResponseWriter, r *http.Request) {
	form, err := readForm(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	raw, err := single(form, "public_key")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	key, err := parsePublicKey(raw)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.deviceTimeout)
	defer cancel()
	if err := h.lockWrites(ctx); err != nil {
		h.fail(w, r, err)
		return
	}
	defer h.unlockWrites()
	// The port has no single-peer read; the answer must be the peer as it was just before
	// removal (the portal logs its counters), read under the write lock.
	peers, err := h.dev.Peers(ctx)
	if err != nil {
		h.fail(w, r, fmt.Errorf("remove peer %s: read peers: %w", key, err))
		return
	}
	var found *wgdev.PeerStatus
	for i := range peers {
		if peers[i].PublicKey == key {
			found = &peers[i]
			break
		}
	}
	if found == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if err := h.dev.ApplyPeers(ctx, nil, []wirefleet.Key{key}); err != nil {
		h.failApply(w, r, fmt.Errorf("remove peer %s: %w", key, err))
		return
	}
	writeJSON(w, http.StatusOK, renderPeer(*found))
}
