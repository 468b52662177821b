package enabler

import (
	_ "embed"
	"net/http"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/wgdev"
)

//go:embed openapi.json
var openAPI []byte

func (h *Handler) version(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, struct {
		Enabler string `json:"enabler"`
		Version string `json:"version"`
	}{"VPN enabler", wirefleet.Version})
}

// health is 200 with an empty body when the device answers and the store is reachable.
func (h *Handler) health(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if _, err := h.dev.Info(ctx); err != nil {
		h.fail(w, r, "The WireGuard device does not answer", err)
		return
	}
	if _, err := h.svc.GetNetwork(ctx, h.cfg.Network); err != nil {
		h.fail(w, r, "The store is not reachable", err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (h *Handler) apiExport(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(openAPI)
}

func writeText(w http.ResponseWriter, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(s))
}

// info is `wg show <device>`, rendered from the device port (no command is run).
func (h *Handler) info(w http.ResponseWriter, r *http.Request) {
	if info, peers, ok := h.readDevice(w, r); ok {
		writeText(w, RenderShow(info, peers, h.now()))
	}
}

// infoConf is `wg showconf <device>` without a single secret.
func (h *Handler) infoConf(w http.ResponseWriter, r *http.Request) {
	if info, peers, ok := h.readDevice(w, r); ok {
		writeText(w, RenderShowConf(info, peers))
	}
}

// readDevice reads what `wg show` prints from the device port; on failure it has answered.
func (h *Handler) readDevice(w http.ResponseWriter, r *http.Request) (wgdev.Info, []wgdev.PeerStatus, bool) {
	info, err := h.dev.Info(r.Context())
	if err != nil {
		h.fail(w, r, "Cannot read the WireGuard device", err)
		return wgdev.Info{}, nil, false
	}
	peers, err := h.dev.Peers(r.Context())
	if err != nil {
		h.fail(w, r, "Cannot read the peers of the WireGuard device", err)
		return wgdev.Info{}, nil, false
	}
	return info, peers, true
}

// keys generates a client key set. Nothing is stored: the private key exists only in this
// answer, which must not be cached.
func (h *Handler) keys(w http.ResponseWriter, r *http.Request) {
	priv, err := wirefleet.GeneratePrivateKey()
	if err != nil {
		h.fail(w, r, "Cannot generate keys", err)
		return
	}
	psk, err := wirefleet.GeneratePresharedKey()
	if err != nil {
		h.fail(w, r, "Cannot generate keys", err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, struct {
		Public    string `json:"public"`
		Private   string `json:"private"`
		Preshared string `json:"preshared"`
	}{priv.PublicKey().String(), priv.String(), psk.String()})
}
