package vpndaemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/wgdev"
)

// Config is what New needs. Only Device is required.
type Config struct {
	Device wgdev.Device
	// OpenVPN is the bridge to the OpenVPN processes; nil: none is running.
	OpenVPN OpenVPN
	// MaintenanceFile makes maintenance_mode true while it exists; empty: never.
	MaintenanceFile string
	// ProcRoot is where loadavg and uptime are read; empty: /proc.
	ProcRoot string
	// CPUCount is reported as cpu_count; 0: runtime.NumCPU() when New runs.
	CPUCount int
	// Version is reported as v; empty: wirefleet.Version.
	Version string
	// Now is the clock (the 3-minute windows, node_uptime); nil: time.Now.
	Now func() time.Time
	// OpenVPNBudget bounds all OpenVPN work of one request; 0 or more than 2 s: 2 s.
	OpenVPNBudget time.Duration
	// DeviceTimeout bounds the device work of one request; 0: 2.5 s, so that every answer
	// leaves the portal's 4 s budget room for TLS and the network.
	DeviceTimeout time.Duration
	Logger        *slog.Logger
}

// Handler is the vpn-daemon API as an http.Handler.
type Handler struct {
	dev           wgdev.Device
	openvpn       OpenVPN
	maintenance   string
	procRoot      string
	cpuCount      int
	version       string
	now           func() time.Time
	openvpnBudget time.Duration
	deviceTimeout time.Duration
	log           *slog.Logger
	routes        map[string]route
	started       time.Time // when New ran, after the device was opened
	// writes serializes add_peer and remove_peer. remove_peer reads the peer and then removes
	// it; without the lock two concurrent removes of one key would both answer 200, and an
	// add racing a remove could leave either answer inconsistent with the device. A channel,
	// not a mutex, so that waiting for it respects the request's deadline.
	writes chan struct{}

	infoMu sync.Mutex // guards info and infoOK
	info   wgdev.Info
	infoOK bool
}

type route struct {
	methods string // for the Allow header
	get     bool   // GET (and HEAD) rather than POST
	serve   func(http.ResponseWriter, *http.Request)
}

// New builds the handler. It panics when cfg.Device is nil (a wiring bug).
func New(cfg Config) *Handler {
	if cfg.Device == nil {
		panic("vpndaemon: Config.Device is nil")
	}
	h := &Handler{
		dev:           cfg.Device,
		openvpn:       cfg.OpenVPN,
		maintenance:   cfg.MaintenanceFile,
		procRoot:      cfg.ProcRoot,
		cpuCount:      cfg.CPUCount,
		version:       cfg.Version,
		now:           cfg.Now,
		openvpnBudget: cfg.OpenVPNBudget,
		deviceTimeout: cfg.DeviceTimeout,
		log:           cfg.Logger,
		writes:        make(chan struct{}, 1),
	}
	if h.procRoot == "" {
		h.procRoot = "/proc"
	}
	if h.cpuCount <= 0 {
		h.cpuCount = runtime.NumCPU()
	}
	if h.version == "" {
		h.version = wirefleet.Version
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.started = h.now()
	if h.openvpnBudget <= 0 || h.openvpnBudget > openVPNBudget {
		h.openvpnBudget = openVPNBudget
	}
	if h.deviceTimeout <= 0 {
		h.deviceTimeout = 2500 * time.Millisecond
	}
	if h.log == nil {
		h.log = discard
	}
	h.routes = map[string]route{
		"/i/node":              {"GET, HEAD", true, h.node},
		"/w/add_peer":          {"POST", false, h.addPeer},
		"/w/peer_list":         {"GET, HEAD", true, h.peerList},
		"/w/remove_peer":       {"POST", false, h.removePeer},
		"/o/connection_list":   {"GET, HEAD", true, h.connectionList},
		"/o/disconnect_client": {"POST", false, h.disconnectClient},
	}
	return h
}

// ServeHTTP routes by exact path. Runs of slashes count as one ("//i/node" from a node URL
// ending in "/" is /i/node) and are served, not redirected: the portal does not follow
// redirects, which is why this is not an http.ServeMux.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	rt, ok := h.routes[squashSlashes(r.URL.Path)]
	if !ok {
		writeText(w, http.StatusNotFound, "not found: "+quote(r.URL.Path)+" is not a vpn-daemon API path")
		return
	}
	allowed := r.Method == http.MethodPost
	if rt.get {
		allowed = r.Method == http.MethodGet || r.Method == http.MethodHead
	}
	if !allowed {
		w.Header().Set("Allow", rt.methods)
		writeText(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed: use "+rt.methods)
		return
	}
	rt.serve(w, r)
}

func squashSlashes(p string) string {
	if !strings.Contains(p, "//") {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && i > 0 && p[i-1] == '/' {
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// fail answers an error: a badRequest is the client's fault (400 with its one line),
// anything else is logged and answered 500, or 503 when the device is unavailable or did
// not answer within the request's budget (the portal retries on its next sync).
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var bad *badRequest
	if errors.As(err, &bad) {
		writeText(w, http.StatusBadRequest, bad.msg)
		return
	}
	h.log.Error("vpn-daemon request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	status := http.StatusInternalServerError
	if errors.Is(err, errBusy) || errors.Is(err, context.DeadlineExceeded) || wirefleet.IsKind(err, wirefleet.KindUnavailable) {
		status = http.StatusServiceUnavailable
	}
	// The message names the cause without the details meant for the operator's log.
	writeText(w, status, "internal error: "+http.StatusText(status)+"; see the gateway log")
}

// failApply answers an error of ApplyPeers. The device refusing what this package let
// through is still the client's input (an attached, shared interface refuses allowed IPs
// outside its managed prefixes, or a key that belongs to a peer it does not manage), and
// backends validate a whole change before applying any of it, so the device is unchanged.
func (h *Handler) failApply(w http.ResponseWriter, r *http.Request, err error) {
	var we *wirefleet.Error
	switch {
	case !errors.As(err, &we):
	case we.Kind == wirefleet.KindInvalid:
		h.log.Warn("device refused a request", "path", r.URL.Path, "err", err)
		writeText(w, http.StatusBadRequest, "refused by the device: "+we.Error())
		return
	case we.Kind == wirefleet.KindConflict:
		h.log.Warn("device refused a request", "path", r.URL.Path, "err", err)
		writeText(w, http.StatusConflict, "conflict: "+we.Error())
		return
	}
	h.fail(w, r, err)
}

var errBusy = errors.New("device busy: too many concurrent changes, retry")

func writeText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(strings.ReplaceAll(msg, "\n", " ") + "\n"))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		// Only unsupported values fail, all of ours are plain structs: a bug.
		writeText(w, http.StatusInternalServerError, "internal error: encoding the response failed")
		return
	}
	writeRawJSON(w, status, buf.Bytes())
}

// writeRawJSON answers an already encoded JSON body, with its length (no chunking).
func writeRawJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
