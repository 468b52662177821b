package vpndaemon

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/wgdev"
)

// onlineWindow is how recent a handshake must be for a peer to count as connected
// (peer_list?show_all=no, w_peer_count): vpn-daemon's 3 minutes, a little more than
// WireGuard's 2-minute rekey interval.
const onlineWindow = 3 * time.Minute

// appendPeer appends one peer as vpn-daemon renders it, in peer_list and in remove_peer's
// answer: {"public_key","ip_net":[…],"last_handshake_time","bytes_in","bytes_out"}.
// last_handshake_time is RFC 3339 UTC ("…Z", whole seconds), or null when the peer never
// did a handshake: the v3 portal warns on a missing key but accepts null.
//
// Hand-written rather than encoding/json: peer_list of a 10k-peer node is the portal's
// largest request, and reflection was most of the handler's share of it. Every value is
// either base64, a prefix, a timestamp or a number, so none needs escaping.
// TestAppendPeerMatchesJSON checks the output against encoding/json.
func appendPeer(b []byte, p wgdev.PeerStatus) []byte {
	b = append(b, `{"public_key":"`...)
	b = base64.StdEncoding.AppendEncode(b, p.PublicKey[:])
	b = append(b, `","ip_net":[`...)
	for i, a := range p.AllowedIPs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = a.AppendTo(b)
		b = append(b, '"')
	}
	b = append(b, `],"last_handshake_time":`...)
	if handshook(p) {
		b = append(b, '"')
		b = p.LastHandshake.UTC().AppendFormat(b, time.RFC3339)
		b = append(b, '"')
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"bytes_in":`...)
	b = strconv.AppendInt(b, max(p.RxBytes, 0), 10)
	b = append(b, `,"bytes_out":`...)
	b = strconv.AppendInt(b, max(p.TxBytes, 0), 10)
	return append(b, '}')
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
	// One deadline for all device work of the request (own key, lock, apply).
	ctx, cancel := context.WithTimeout(r.Context(), h.deviceTimeout)
	defer cancel()
	peer, err := h.parseAddPeer(ctx, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
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
func (h *Handler) parseAddPeer(ctx context.Context, r *http.Request) (wgdev.Peer, error) {
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
	if own, ok := h.ownKey(ctx); ok && own == key {
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
	// About 150 bytes per peer; growing from a good guess saves most reallocations.
	b := make([]byte, 0, 64+160*len(peers))
	b = append(b, `{"peer_list":[`...)
	first := true
	for _, p := range peers {
		if !showAll && !online(p, now) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendPeer(b, p)
	}
	b = append(b, "]}\n"...)
	writeRawJSON(w, http.StatusOK, b)
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
	writeRawJSON(w, http.StatusOK, append(appendPeer(nil, *found), '\n'))
}
