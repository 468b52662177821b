package enabler

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/control"
	"github.com/wirefleet/wirefleet/internal/wgdev"
)

// Service is what the facade needs from the control plane (internal/control.Service
// implements it). Errors carry wirefleet kinds.
type Service interface {
	GetNetwork(ctx context.Context, name string) (wirefleet.Network, error)
	GetPeer(ctx context.Context, network string, pub wirefleet.Key) (wirefleet.Peer, error)
	CreatePeer(ctx context.Context, in control.PeerInput) (wirefleet.Peer, error)
	EnablePeer(ctx context.Context, network string, pub wirefleet.Key) (wirefleet.Peer, error)
	DisablePeer(ctx context.Context, network string, pub wirefleet.Key) (wirefleet.Peer, error)
	DeletePeer(ctx context.Context, network string, pub wirefleet.Key) error
}

var _ Service = (*control.Service)(nil)

// Gateway puts the stored state of one peer on the WireGuard device: the peer present
// (with its addresses, preshared key and keepalive) when it is active, absent otherwise or
// when it no longer exists. SyncPeer returns once the device matches, so that a 2xx answer
// means the device has been changed, as upstream's synchronous `wg set` did.
type Gateway interface {
	SyncPeer(ctx context.Context, pub wirefleet.Key) error
}

// Device is the read side of the device port, for /info, /info/conf and /health.
type Device interface {
	Info(ctx context.Context) (wgdev.Info, error)
	Peers(ctx context.Context) ([]wgdev.PeerStatus, error)
}

// Config binds the facade to one network. ServerIP, ServerPort and AllowedIPs are echoed
// verbatim in POST /client answers, as upstream echoes its environment.
type Config struct {
	Network    string
	ServerIP   string // SERVER_IP
	ServerPort string // WG_PORT, sent as a JSON string
	AllowedIPs string // PEER_ALLOWED_IPS
	// Tokens enables bearer-token auth when non-empty: a request must carry one of them
	// (Authorization: Bearer <token>). Only their SHA-256 is kept.
	Tokens []string
	// Authenticate, when set, is asked about bearer tokens not in Tokens (for example the
	// control plane's own API tokens). Auth is on when Tokens or Authenticate is set.
	Authenticate func(ctx context.Context, token string) error
	Logger       *slog.Logger
	// Now is the clock of /info's "latest handshake: … ago"; nil means time.Now.
	Now func() time.Time
}

// Handler serves the enabler API. It is safe for concurrent use.
type Handler struct {
	cfg    Config
	svc    Service
	gw     Gateway
	dev    Device
	log    *slog.Logger
	now    func() time.Time
	tokens [][32]byte // SHA-256 of the accepted static tokens

	// mu serialises the client mutations (create, delete, enable, disable), so
	// that the duplicate check, the allocation and the device change of one request are
	// never interleaved with another's; the store's single writer serialises allocation
	// anyway, this keeps each request's answer and device state coherent.
	mu sync.Mutex
}

// New returns the handler. svc, gw and dev are required.
func New(cfg Config, svc Service, gw Gateway, dev Device) *Handler {
	h := &Handler{cfg: cfg, svc: svc, gw: gw, dev: dev, log: cfg.Logger, now: cfg.Now}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.now == nil {
		h.now = time.Now
	}
	for _, t := range cfg.Tokens {
		h.tokens = append(h.tokens, hashToken(t))
	}
	return h
}

// AuthEnabled reports whether requests must carry a bearer token.
func (h *Handler) AuthEnabled() bool { return len(h.tokens) > 0 || h.cfg.Authenticate != nil }

// route is one endpoint; public endpoints (probes, version, the API document) never need
// a token, so that Kubernetes probes keep working when auth is on.
type route struct {
	method, path string
	public       bool
	serve        func(h *Handler, w http.ResponseWriter, r *http.Request)
}

// routes are upstream's ten operations (routes/index.js), nothing more.
var routes = []route{
	{http.MethodGet, "/version", true, (*Handler).version},
	{http.MethodGet, "/health", true, (*Handler).health},
	{http.MethodGet, "/api-export", true, (*Handler).apiExport},
	{http.MethodGet, "/info", false, (*Handler).info},
	{http.MethodGet, "/info/conf", false, (*Handler).infoConf},
	{http.MethodGet, "/keys", false, (*Handler).keys},
	{http.MethodPost, "/client", false, (*Handler).createClient},
	{http.MethodDelete, "/client", false, (*Handler).deleteClient},
	{http.MethodPut, "/client/enable", false, (*Handler).enableClient},
	{http.MethodPut, "/client/disable", false, (*Handler).disableClient},
}

// normalizePath matches upstream's router: case-insensitive, one trailing slash ignored.
func normalizePath(p string) string {
	p = strings.ToLower(p)
	if len(p) > 1 && strings.HasSuffix(p, "/") {
		p = p[:len(p)-1]
	}
	return p
}

// ServeHTTP routes a request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := normalizePath(r.URL.Path)
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet // as express: HEAD is GET without a body
	}
	for _, rt := range routes {
		if rt.path != path || rt.method != method {
			continue
		}
		if !rt.public && !h.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="wirefleet-enabler"`)
			writeMessage(w, http.StatusUnauthorized, "Missing or invalid bearer token: send the header Authorization: Bearer <token> with a token configured for this enabler")
			return
		}
		rt.serve(h, w, r)
		return
	}
	// Upstream (express) answers every unknown path or method with 404.
	writeMessage(w, http.StatusNotFound, fmt.Sprintf("Cannot %s %s", r.Method, r.URL.Path))
}

func (h *Handler) authorized(r *http.Request) bool {
	if !h.AuthEnabled() {
		return true
	}
	auth := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return false
	}
	tok = strings.TrimSpace(tok)
	sum := hashToken(tok)
	match := 0
	for _, t := range h.tokens {
		match |= subtle.ConstantTimeCompare(sum[:], t[:])
	}
	if match == 1 {
		return true
	}
	if h.cfg.Authenticate != nil {
		return h.cfg.Authenticate(r.Context(), tok) == nil
	}
	return false
}

// message is upstream's error body.
type message struct {
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"message":"internal error: cannot encode the answer"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeMessage(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, message{Message: msg})
}

// fail answers an error from the service or the device: the client's mistakes (invalid
// kind) are 400 as upstream, everything else is 500 (upstream said 400 for everything).
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	status := http.StatusInternalServerError
	if wirefleet.IsKind(err, wirefleet.KindInvalid) {
		status = http.StatusBadRequest
	}
	if status == http.StatusInternalServerError && !errors.Is(err, context.Canceled) {
		h.log.Error("enabler request failed", "method", r.Method, "path", r.URL.Path, "what", what, "err", err)
	}
	writeMessage(w, status, what+": "+err.Error())
}

func hashToken(t string) [32]byte { return sha256.Sum256([]byte(t)) }
