package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/api/wire"
	"github.com/wirefleet/wirefleet/internal/control"
	"github.com/wirefleet/wirefleet/internal/wgquick"
)

func (s *Server) importNetwork(w http.ResponseWriter, r *http.Request, p Principal) error {
	var req wire.NetworkImport
	if err := decodeJSON(w, r, maxImportBody, &req); err != nil {
		return err
	}
	if err := wirefleet.ValidateNetworkName(req.Name); err != nil {
		return err
	}
	if !p.inScope(req.Name) {
		return p.scopeError(req.Name)
	}
	cfg, err := wgquick.Parse(strings.NewReader(req.Config))
	if err != nil {
		return err
	}
	in, warnings, err := ImportInput(req.Name, req.Endpoint, cfg)
	if err != nil {
		return err
	}
	n, err := s.svc.ImportNetwork(r.Context(), in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/networks/"+n.Name)
	writeJSON(w, http.StatusCreated, wire.NetworkImported{Network: n, Peers: len(in.Peers), Warnings: warnings})
	return nil
}

// ImportInput turns a parsed wg-quick server config into an import: the [Interface]
// addresses (first IPv4, first IPv6) become the network's, its private key is kept so that
// no client needs re-keying, and each [Peer]'s AllowedIPs host addresses become the peer's
// addresses. Wider AllowedIPs (a site's LAN behind a peer) cannot be represented yet and are
// refused with an error naming the peer rather than silently dropped. Settings that do not
// carry over (PostUp, a peer's Endpoint…) come back as warnings, so an operator knows what
// to redo.
func ImportInput(name, endpoint string, cfg *wgquick.Config) (control.ImportInput, []string, error) {
	var warnings []string
	for _, kv := range cfg.Interface.Extra {
		warnings = append(warnings, fmt.Sprintf("line %d: [Interface] %s is not imported (Wirefleet gateways manage the interface)", kv.Line, kv.Key))
	}
	if len(cfg.Interface.DNS) > 0 {
		warnings = append(warnings, "[Interface] DNS of a server config is not imported: set the DNS pushed to clients with the network's dns")
	}
	in := control.ImportInput{Network: control.NetworkInput{
		Name:     name,
		Endpoint: endpoint,
		MTU:      cfg.Interface.MTU,
	}}
	if cfg.Interface.ListenPort > 0 {
		in.Network.ListenPort = uint16(cfg.Interface.ListenPort)
	}
	if !cfg.Interface.PrivateKey.IsZero() {
		k := cfg.Interface.PrivateKey
		in.Network.PrivateKey = &k
	}
	for _, a := range cfg.Interface.Addresses {
		switch {
		case a.Addr().Is4() && !in.Network.IPv4.IsValid():
			in.Network.IPv4 = a
		case a.Addr().Is6() && !in.Network.IPv6.IsValid():
			in.Network.IPv6 = a
		}
	}
	if !in.Network.IPv4.IsValid() && !in.Network.IPv6.IsValid() {
		return in, nil, wirefleet.Errorf(wirefleet.KindInvalid, "the [Interface] has no Address: the network needs one (like 198.51.100.1/24)")
	}
	in.Peers = make([]control.PeerInput, 0, len(cfg.Peers))
	for _, cp := range cfg.Peers {
		pin := control.PeerInput{PublicKey: cp.PublicKey, Name: cp.Name}
		if !cp.PresharedKey.IsZero() {
			psk := cp.PresharedKey
			pin.PresharedKey = &psk
		}
		for _, a := range cp.AllowedIPs {
			if !a.IsSingleIP() {
				return in, nil, wirefleet.Errorf(wirefleet.KindInvalid, "line %d: peer %s has AllowedIPs %s, a subnet; only host addresses (/32, /128) can be imported", cp.Line, cp.PublicKey, a)
			}
			pin.Addresses = append(pin.Addresses, a.Addr())
		}
		if len(pin.Addresses) == 0 {
			return in, nil, wirefleet.Errorf(wirefleet.KindInvalid, "line %d: peer %s has no AllowedIPs: give it its tunnel address", cp.Line, cp.PublicKey)
		}
		if err := wirefleet.ValidateName("name", pin.Name); err != nil {
			pin.Name = truncateName(pin.Name)
			warnings = append(warnings, fmt.Sprintf("line %d: peer name shortened to %q (%v)", cp.Line, pin.Name, err))
		}
		if cp.Endpoint != "" || cp.PersistentKeepalive != 0 || len(cp.Extra) > 0 {
			warnings = append(warnings, fmt.Sprintf("line %d: peer %s: Endpoint, PersistentKeepalive and unknown keys are not imported (clients dial the gateway)", cp.Line, cp.PublicKey))
		}
		in.Peers = append(in.Peers, pin)
	}
	return in, capWarnings(warnings), nil
}

// maxWarnings keeps the answer of a 50,000-peer import readable.
const maxWarnings = 20

func capWarnings(w []string) []string {
	if len(w) <= maxWarnings {
		return w
	}
	return append(w[:maxWarnings:maxWarnings], fmt.Sprintf("… and %d more warnings", len(w)-maxWarnings))
}

// truncateName makes a comment-derived name fit the peer name rules instead of failing the
// import over a label.
func truncateName(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len()+len(string(r)) > wirefleet.MaxNameLen {
			break
		}
		if wirefleet.ValidateName("name", string(r)) == nil {
			b.WriteRune(r)
		}
	}
	return b.String()
}
