package api

import (
	"mime"
	"net/http"
	"strings"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/api/wire"
	"github.com/wirefleet/wirefleet/internal/control"
	"github.com/wirefleet/wirefleet/internal/qrcode"
	"github.com/wirefleet/wirefleet/internal/wgquick"
)

// clientFormat picks the representation of a new client: ?format= wins, then Accept.
func clientFormat(r *http.Request) (string, error) {
	switch f := r.URL.Query().Get("format"); f {
	case "json", "conf", "png":
		return f, nil
	case "":
	default:
		return "", wirefleet.Errorf(wirefleet.KindInvalid, "format %q is invalid: use json, conf or png", f)
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "image/png":
			return "png", nil
		case "text/plain":
			return "conf", nil
		case "application/json":
			return "json", nil
		}
	}
	return "json", nil
}

func (s *Server) createClient(w http.ResponseWriter, r *http.Request, _ Principal) error {
	format, err := clientFormat(r)
	if err != nil {
		return err
	}
	var req wire.ClientCreate
	if err := decodeJSON(w, r, maxBody, &req); err != nil {
		return err
	}
	addrs, err := wire.ParseAddrs("addresses", req.Addresses)
	if err != nil {
		return err
	}
	c, err := s.svc.CreateClient(r.Context(), control.ClientInput{
		Network:      r.PathValue("network"),
		Name:         req.Name,
		Addresses:    addrs,
		PresharedKey: req.PresharedKey == nil || *req.PresharedKey,
		ExpiresAt:    req.ExpiresAt,
	})
	if err != nil {
		return err
	}
	conf := wgquick.ClientConfig(c.Network, c.Peer, c.PrivateKey.Reveal(), c.PresharedKey.Reveal()).Render()
	// The answer holds a private key: no cache may keep it.
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", peerPath(c.Peer))
	switch format {
	case "png":
		img, err := qrcode.PNG(string(conf))
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "image/png")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(img)
	case "conf":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+c.Network.Name+`.conf"`)
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(conf)
	default:
		writeJSON(w, http.StatusCreated, wire.Client{Peer: wire.PeerFrom(c.Peer), Config: string(conf)})
	}
	return nil
}
