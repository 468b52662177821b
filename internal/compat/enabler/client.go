package enabler

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/control"
)

// PeerName labels the peers created through this facade in the rest of Wirefleet.
const PeerName = "vpn-enabler client"

// newClientAnswer is POST /client's answer, in upstream's field order.
type newClientAnswer struct {
	ServerPublicKey string `json:"serverPublicKey"`
	ServerIP        string `json:"serverIP"`
	ServerPort      string `json:"serverPort"`
	ClientIP        string `json:"clientIP"`
	AllowedIPs      string `json:"allowedIPs"`
	Message         string `json:"message"`
}

// readRequest decodes the body and answers the request itself when it cannot be decoded.
func readRequest(w http.ResponseWriter, r *http.Request) (body, bool) {
	b, err := readBody(w, r)
	var me *malformedError
	switch {
	case err == nil:
		return b, true
	case errors.Is(err, errTooLarge):
		writeMessage(w, http.StatusRequestEntityTooLarge, "request entity too large: the body is limited to 100 kB")
	case errors.As(err, &me):
		writeMessage(w, http.StatusBadRequest, me.msg)
	default:
		writeMessage(w, http.StatusBadRequest, err.Error())
	}
	return nil, false
}

// readKey decodes a body carrying {"publicKey"} and answers 400 itself when it is bad.
func readKey(w http.ResponseWriter, r *http.Request) (wirefleet.Key, bool) {
	b, ok := readRequest(w, r)
	if !ok {
		return wirefleet.Key{}, false
	}
	k, msg := publicKeyField(b)
	if msg != "" {
		writeMessage(w, http.StatusBadRequest, msg)
		return wirefleet.Key{}, false
	}
	return k, true
}

// undo runs a compensation after a failed device change even if the client went away:
// a rejected request must leave no trace in the store.
func undo(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
}

func (h *Handler) createClient(w http.ResponseWriter, r *http.Request) {
	b, ok := readRequest(w, r)
	if !ok {
		return
	}
	pub, msg := publicKeyField(b)
	if msg != "" {
		writeMessage(w, http.StatusBadRequest, msg)
		return
	}
	psk, msg := presharedKeyField(b)
	if msg != "" {
		writeMessage(w, http.StatusBadRequest, msg)
		return
	}
	ctx := r.Context()
	h.mu.Lock()
	defer h.mu.Unlock()

	n, err := h.svc.GetNetwork(ctx, h.cfg.Network)
	if err != nil {
		h.fail(w, r, "Cannot read the VPN network", err)
		return
	}
	if exists, err := h.exists(ctx, pub); err != nil {
		h.fail(w, r, "Cannot read the clients", err)
		return
	} else if exists {
		writeMessage(w, http.StatusBadRequest, msgExists(pub))
		return
	}
	in := control.PeerInput{Network: h.cfg.Network, PublicKey: pub, Name: PeerName, PresharedKey: psk}
	p, err := h.svc.CreatePeer(ctx, in)
	if wirefleet.IsKind(err, wirefleet.KindConflict) {
		// Either the key appeared meanwhile (another API of the same network) or the pool
		// is full. A conflict on an address the pool missed makes it rebuild: retry once.
		if exists, _ := h.exists(ctx, pub); exists {
			writeMessage(w, http.StatusBadRequest, msgExists(pub))
			return
		}
		p, err = h.svc.CreatePeer(ctx, in)
		if wirefleet.IsKind(err, wirefleet.KindConflict) {
			if exists, _ := h.exists(ctx, pub); exists {
				writeMessage(w, http.StatusBadRequest, msgExists(pub))
			} else {
				writeMessage(w, http.StatusBadRequest, msgCapacity)
			}
			return
		}
	}
	if err != nil {
		h.fail(w, r, "Cannot create the client", err)
		return
	}
	if err := h.gw.SyncPeer(ctx, pub); err != nil {
		uctx, cancel := undo(ctx)
		defer cancel()
		if derr := h.svc.DeletePeer(uctx, h.cfg.Network, pub); derr != nil && !wirefleet.IsKind(derr, wirefleet.KindNotFound) {
			h.log.Error("enabler: cannot roll back a client the device refused", "public_key", pub, "err", derr)
		}
		_ = h.gw.SyncPeer(uctx, pub)
		h.fail(w, r, "Cannot add the client to the WireGuard device", err)
		return
	}
	writeJSON(w, http.StatusOK, newClientAnswer{
		ServerPublicKey: n.PublicKey.String(),
		ServerIP:        h.cfg.ServerIP,
		ServerPort:      h.cfg.ServerPort,
		ClientIP:        clientIP(p),
		AllowedIPs:      h.cfg.AllowedIPs,
		Message:         msgPeerAdded,
	})
}

// clientIP is the peer's IPv4 address as a /32 (the enabler's networks are IPv4).
func clientIP(p wirefleet.Peer) string {
	for _, a := range p.Addresses {
		if a.Is4() {
			return netip.PrefixFrom(a, 32).String()
		}
	}
	if len(p.Addresses) > 0 {
		return netip.PrefixFrom(p.Addresses[0], p.Addresses[0].BitLen()).String()
	}
	return ""
}

func (h *Handler) exists(ctx context.Context, pub wirefleet.Key) (bool, error) {
	_, err := h.svc.GetPeer(ctx, h.cfg.Network, pub)
	switch {
	case err == nil:
		return true, nil
	case wirefleet.IsKind(err, wirefleet.KindNotFound):
		return false, nil
	default:
		return false, err
	}
}

// lookup answers 400 "not found" itself when the client does not exist.
func (h *Handler) lookup(w http.ResponseWriter, r *http.Request, pub wirefleet.Key) (wirefleet.Peer, bool) {
	p, err := h.svc.GetPeer(r.Context(), h.cfg.Network, pub)
	switch {
	case err == nil:
		return p, true
	case wirefleet.IsKind(err, wirefleet.KindNotFound):
		writeMessage(w, http.StatusBadRequest, msgNotFound(pub))
	default:
		h.fail(w, r, "Cannot read the client", err)
	}
	return wirefleet.Peer{}, false
}

func (h *Handler) deleteClient(w http.ResponseWriter, r *http.Request) {
	pub, ok := readKey(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	h.mu.Lock()
	defer h.mu.Unlock()
	p, ok := h.lookup(w, r, pub)
	if !ok {
		return
	}
	if err := h.svc.DeletePeer(ctx, h.cfg.Network, pub); err != nil {
		if wirefleet.IsKind(err, wirefleet.KindNotFound) {
			writeMessage(w, http.StatusBadRequest, msgNotFound(pub))
			return
		}
		h.fail(w, r, "Cannot delete the client", err)
		return
	}
	if err := h.gw.SyncPeer(ctx, pub); err != nil {
		// Put the record back as it was (same addresses, key and state), so the request
		// leaves no trace; the device still has the peer, which the record again explains.
		uctx, cancel := undo(ctx)
		defer cancel()
		back := control.PeerInput{Network: p.Network, PublicKey: p.PublicKey, Name: p.Name, Addresses: p.Addresses,
			PresharedKey: p.PresharedKey.Ptr(), Disabled: !p.Enabled, ExpiresAt: p.ExpiresAt}
		if _, rerr := h.svc.CreatePeer(uctx, back); rerr != nil {
			h.log.Error("enabler: cannot restore a client after the device refused its removal", "public_key", pub, "err", rerr)
		}
		h.fail(w, r, "Cannot remove the client from the WireGuard device", err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (h *Handler) enableClient(w http.ResponseWriter, r *http.Request)  { h.setEnabled(w, r, true) }
func (h *Handler) disableClient(w http.ResponseWriter, r *http.Request) { h.setEnabled(w, r, false) }

// setEnabled flips the flag and re-applies the peer. It is idempotent: the device is
// synchronised even when the flag already has the wanted value. Enabling does not check
// capacity: a disabled client keeps its address.
func (h *Handler) setEnabled(w http.ResponseWriter, r *http.Request, enabled bool) {
	pub, ok := readKey(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	h.mu.Lock()
	defer h.mu.Unlock()
	p, ok := h.lookup(w, r, pub)
	if !ok {
		return
	}
	set := h.svc.DisablePeer
	if enabled {
		set = h.svc.EnablePeer
	}
	changed := p.Enabled != enabled
	if changed {
		if _, err := set(ctx, h.cfg.Network, pub); err != nil {
			if wirefleet.IsKind(err, wirefleet.KindNotFound) {
				writeMessage(w, http.StatusBadRequest, msgNotFound(pub))
				return
			}
			h.fail(w, r, "Cannot change the client", err)
			return
		}
	}
	if err := h.gw.SyncPeer(ctx, pub); err != nil {
		if changed {
			uctx, cancel := undo(ctx)
			defer cancel()
			revert := h.svc.EnablePeer
			if enabled {
				revert = h.svc.DisablePeer
			}
			if _, rerr := revert(uctx, h.cfg.Network, pub); rerr != nil {
				h.log.Error("enabler: cannot revert a client the device refused", "public_key", pub, "err", rerr)
			}
			_ = h.gw.SyncPeer(uctx, pub)
		}
		h.fail(w, r, "Cannot apply the client to the WireGuard device", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
