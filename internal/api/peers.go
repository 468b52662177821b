package api

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/api/wire"
	"github.com/wirefleet/wirefleet/internal/control"
)

// peerKeyParam reads the {key} path value: the standard base64 public key, path-escaped
// (%2F for '/', %2B for '+'), or its URL-safe base64 form ('-' and '_') which needs no
// escaping.
func peerKeyParam(r *http.Request) (wirefleet.Key, error) {
	s := r.PathValue("key")
	s = strings.NewReplacer("-", "+", "_", "/").Replace(s)
	k, err := wirefleet.ParseKey(s)
	if err != nil {
		return k, wirefleet.Errorf(wirefleet.KindInvalid, "peer key in the path: %v (escape '/' as %%2F and '+' as %%2B, or use URL-safe base64)", err)
	}
	return k, nil
}

func (s *Server) listPeers(w http.ResponseWriter, r *http.Request, _ Principal) error {
	q := r.URL.Query()
	f := control.PeerFilter{
		Network:    r.PathValue("network"),
		NamePrefix: q.Get("name_prefix"),
		Cursor:     q.Get("cursor"),
	}
	var err error
	if f.Enabled, err = boolParam(q.Get("enabled"), "enabled"); err != nil {
		return err
	}
	if f.Expired, err = boolParam(q.Get("expired"), "expired"); err != nil {
		return err
	}
	if l := q.Get("limit"); l != "" {
		if f.Limit, err = strconv.Atoi(l); err != nil || f.Limit < 1 {
			return wirefleet.Errorf(wirefleet.KindInvalid, "limit %q is not a positive number", l)
		}
	}
	page, err := s.svc.ListPeers(r.Context(), f)
	if err != nil {
		return err
	}
	writePeerList(w, page)
	return nil
}

// writePeerList streams a page as wire.PeerList one peer at a time, so that a page of 100k
// peers never exists twice in memory (once as structs, once as a JSON buffer).
func writePeerList(w http.ResponseWriter, page control.PeerPage) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 32<<10)
	bw.WriteString(`{"items":[`)
	var buf []byte
	for i, p := range page.Peers {
		if i > 0 {
			bw.WriteByte(',')
		}
		buf = wire.AppendPeerJSON(buf[:0], p)
		bw.Write(buf)
	}
	bw.WriteString(`]`)
	if page.NextCursor != "" {
		c, _ := json.Marshal(page.NextCursor)
		bw.WriteString(`,"next_cursor":`)
		bw.Write(c)
	}
	bw.WriteString("}\n")
	_ = bw.Flush()
}

func boolParam(v, name string) (*bool, error) {
	if v == "" {
		return nil, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return nil, wirefleet.Errorf(wirefleet.KindInvalid, "query parameter %s=%q is not true or false", name, v)
	}
	return &b, nil
}

func (s *Server) createPeer(w http.ResponseWriter, r *http.Request, _ Principal) error {
	var req wire.PeerCreate
	if err := decodeJSON(w, r, maxBody, &req); err != nil {
		return err
	}
	addrs, err := wire.ParseAddrs("addresses", req.Addresses)
	if err != nil {
		return err
	}
	if req.PublicKey.IsZero() {
		return wirefleet.Errorf(wirefleet.KindInvalid, "public_key is missing")
	}
	in := control.PeerInput{
		Network:      r.PathValue("network"),
		PublicKey:    req.PublicKey,
		Name:         req.Name,
		Addresses:    addrs,
		PresharedKey: req.PresharedKey,
		Disabled:     req.Enabled != nil && !*req.Enabled,
		ExpiresAt:    req.ExpiresAt,
	}
	p, err := s.svc.CreatePeer(r.Context(), in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", peerPath(p))
	writePeer(w, http.StatusCreated, p)
	return nil
}

// peerPath is the canonical URL of a peer (URL-safe key, nothing to escape).
func peerPath(p wirefleet.Peer) string {
	k := strings.NewReplacer("+", "-", "/", "_").Replace(p.PublicKey.String())
	return "/api/v1/networks/" + p.Network + "/peers/" + k
}

func (s *Server) getPeer(w http.ResponseWriter, r *http.Request, _ Principal) error {
	k, err := peerKeyParam(r)
	if err != nil {
		return err
	}
	p, err := s.svc.GetPeer(r.Context(), r.PathValue("network"), k)
	if err != nil {
		return err
	}
	writePeer(w, http.StatusOK, p)
	return nil
}

func (s *Server) updatePeer(w http.ResponseWriter, r *http.Request, _ Principal) error {
	k, err := peerKeyParam(r)
	if err != nil {
		return err
	}
	var req wire.PeerUpdate
	if err := decodeJSON(w, r, maxBody, &req); err != nil {
		return err
	}
	u := control.PeerUpdate{Name: req.Name, Enabled: req.Enabled}
	if req.ExpiresAt.Set {
		u.ExpiresAt, u.ClearExpiry = req.ExpiresAt.Time, req.ExpiresAt.Time == nil
	}
	p, err := s.svc.UpdatePeer(r.Context(), r.PathValue("network"), k, u)
	if err != nil {
		return err
	}
	writePeer(w, http.StatusOK, p)
	return nil
}

func (s *Server) deletePeer(w http.ResponseWriter, r *http.Request, _ Principal) error {
	k, err := peerKeyParam(r)
	if err != nil {
		return err
	}
	if err := s.svc.DeletePeer(r.Context(), r.PathValue("network"), k); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// setPeerEnabled is POST …/enable and …/disable.
func (s *Server) setPeerEnabled(enabled bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, _ Principal) error {
		k, err := peerKeyParam(r)
		if err != nil {
			return err
		}
		u := control.PeerUpdate{Enabled: &enabled}
		p, err := s.svc.UpdatePeer(r.Context(), r.PathValue("network"), k, u)
		if err != nil {
			return err
		}
		writePeer(w, http.StatusOK, p)
		return nil
	}
}

// writePeer answers with one peer (the encoder of the lists: the hot path of peer creates).
func writePeer(w http.ResponseWriter, status int, p wirefleet.Peer) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(wire.AppendPeerJSON(make([]byte, 0, 512), p), '\n'))
}
