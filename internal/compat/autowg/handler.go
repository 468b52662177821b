// Package autowg is the autowg-compatible zero-touch registration endpoint
// (specs/autowg.md): POST <prefix>v1/register with a base64 public key as the body answers
// the five key=value lines a device needs, and GET <prefix>v1/peers.json lists the
// registered devices for monitoring (HTTP_AUTH).
//
// A device is identified by its TLS client certificate: either verified on our own listener
// (direct mTLS, CA per site or global, optional CRL), or reported by a reverse proxy in
// X-Client-Subject, which is honoured only from trusted proxy addresses (upstream trusts it
// from anyone). The CN gives the device name through --cn-pattern, and a converter
// (internal/ipam) its address. Registrations are stored by the control plane's service
// layer (control.Service.Register: one transaction, 409 on collisions) and, when the
// handler runs next to the device, applied to it before the answer is sent.
package autowg

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/control"
	"github.com/wirefleet/wirefleet/internal/ipam"
	"github.com/wirefleet/wirefleet/internal/wgdev"
)

// Service is what the endpoint needs from the control plane (control.Service has it).
type Service interface {
	Register(ctx context.Context, in control.RegisterInput) (control.Registration, error)
	GetNetwork(ctx context.Context, name string) (wirefleet.Network, error)
	ListPeers(ctx context.Context, f control.PeerFilter) (control.PeerPage, error)
	DeletePeer(ctx context.Context, network string, pub wirefleet.Key) error
}

var _ Service = (*control.Service)(nil)

// Applier puts a registration on the local device: the registered peer present, the
// keys it replaced gone. The handler calls it before answering, one call per registration,
// serialised per device name (so two registrations of one name reach the device in the
// order they were stored).
type Applier interface {
	ApplyRegistration(ctx context.Context, peer wirefleet.Peer, removed []wirefleet.Key) error
}

// Device is the read side of the device port: the endpoint reads the interface's public
// key and listen port from it (so a change needs no restart) and the peer statistics of
// peers.json.
type Device interface {
	Info(ctx context.Context) (wgdev.Info, error)
	Peers(ctx context.Context) ([]wgdev.PeerStatus, error)
}

// SiteConfig is the registration settings of one network.
type SiteConfig struct {
	// Prefix is the URL prefix (default "/"), normalised to start and end with '/'.
	Prefix  string
	Network string
	// Pool is the registration pool (IPv6, inside the network's IPv6 prefix).
	Pool netip.Prefix
	// Route is pushed to devices (exactly one IPv6 prefix).
	Route netip.Prefix
	// Endpoint is the host devices dial; the port comes from the interface.
	Endpoint  string
	CNPattern string // default DefaultPattern
	Converter string // default direct-bcd
	Template  string // metans template
	// ClientCAs verify direct mTLS clients of this site; nil uses Config.ClientCAs.
	ClientCAs []*x509.Certificate
	// Device, when set, is where the interface key, port and statistics are read; nil uses
	// the network's stored key and port, and peers.json reports no statistics.
	Device Device
	// Apply, when set, applies each registration before answering.
	Apply Applier
	// HTTPAuth ("user:pass") enables GET v1/peers.json; empty: 404.
	HTTPAuth string
}

// Config configures the handler.
type Config struct {
	Sites   []SiteConfig
	Service Service
	// ClientCAs verify direct mTLS clients of sites without their own.
	ClientCAs []*x509.Certificate
	// CRLFile is an optional certificate revocation list (PEM or DER), signed by one of the
	// CAs; it is re-read when it changes.
	CRLFile string
	// TrustedProxies may set X-Client-Subject; from any other address the header is ignored.
	TrustedProxies []netip.Prefix
	Logger         *slog.Logger
}

// site is a checked SiteConfig.
type site struct {
	SiteConfig
	pattern Pattern
	conv    ipam.Converter
	roots   *x509.CertPool

	infoMu   sync.Mutex // guards info, infoAt
	info     wgdev.Info
	infoAt   time.Time
	register string // path of v1/register
	peers    string // path of v1/peers.json
}

// Handler serves the registration endpoints of its sites.
type Handler struct {
	svc     Service
	log     *slog.Logger
	sites   []*site
	proxies []netip.Prefix
	crl     *crlCache

	// nameLocks serialise store write and device apply per device name (striped).
	nameLocks [64]sync.Mutex
}

// NormalizePrefix makes a URL prefix start and end with '/'.
func NormalizePrefix(p string) string {
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}

// New checks the configuration and returns the handler. Errors name the bad setting.
func New(cfg Config) (*Handler, error) {
	if cfg.Service == nil {
		return nil, errors.New("autowg: no service")
	}
	if len(cfg.Sites) == 0 {
		return nil, errors.New("autowg: no registration site configured")
	}
	h := &Handler{svc: cfg.Service, log: cfg.Logger, proxies: cfg.TrustedProxies}
	if h.log == nil {
		h.log = slog.Default()
	}
	for i, p := range h.proxies {
		if !p.IsValid() {
			return nil, fmt.Errorf("trusted proxy #%d is not a valid prefix", i+1)
		}
		h.proxies[i] = p.Masked()
	}
	var allCAs []*x509.Certificate
	allCAs = append(allCAs, cfg.ClientCAs...)
	seen := map[string]bool{}
	for _, sc := range cfg.Sites {
		s, err := newSite(sc, cfg.ClientCAs)
		if err != nil {
			return nil, err
		}
		if seen[s.Prefix] {
			return nil, fmt.Errorf("two registration sites share the URL prefix %q", s.Prefix)
		}
		seen[s.Prefix] = true
		allCAs = append(allCAs, sc.ClientCAs...)
		h.sites = append(h.sites, s)
	}
	if cfg.CRLFile != "" {
		c, err := newCRLCache(cfg.CRLFile, allCAs)
		if err != nil {
			return nil, err
		}
		h.crl = c
	}
	return h, nil
}

func newSite(sc SiteConfig, global []*x509.Certificate) (*site, error) {
	s := &site{SiteConfig: sc}
	s.Prefix = NormalizePrefix(sc.Prefix)
	if err := wirefleet.ValidateNetworkName(sc.Network); err != nil {
		return nil, err
	}
	if err := ipam.ValidatePool(sc.Pool); err != nil {
		return nil, err
	}
	if !sc.Route.IsValid() || !sc.Route.Addr().Is6() || sc.Route.Addr().Is4In6() || sc.Route.Masked() != sc.Route {
		return nil, wirefleet.Errorf(wirefleet.KindInvalid, "route %q must be one IPv6 prefix with host bits cleared, like fd00::/48", sc.Route)
	}
	if sc.Endpoint == "" {
		return nil, wirefleet.Errorf(wirefleet.KindInvalid, "endpoint is missing: give the host devices dial (the port comes from the interface)")
	}
	if err := wirefleet.ValidateEndpointHost(sc.Endpoint); err != nil {
		return nil, err
	}
	var err error
	if s.pattern, err = CompilePattern(sc.CNPattern); err != nil {
		return nil, err
	}
	if s.conv, err = ipam.NewConverter(sc.Converter, sc.Pool, sc.Template); err != nil {
		return nil, err
	}
	cas := sc.ClientCAs
	if len(cas) == 0 {
		cas = global
	}
	if len(cas) > 0 {
		s.roots = x509.NewCertPool()
		for _, c := range cas {
			s.roots.AddCert(c)
		}
	}
	s.register = s.Prefix + "v1/register"
	s.peers = s.Prefix + "v1/peers.json"
	return s, nil
}

// MaxBody bounds a registration body.
const MaxBody = 4096

// ServeHTTP routes to the sites.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for _, s := range h.sites {
		switch r.URL.Path {
		case s.register:
			if r.Method != http.MethodPost {
				w.Header().Set("Allow", http.MethodPost)
				plain(w, http.StatusMethodNotAllowed, "method not allowed: POST the public key")
				return
			}
			h.register(w, r, s)
			return
		case s.peers:
			if s.HTTPAuth == "" {
				plain(w, http.StatusNotFound, "not found")
				return
			}
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				w.Header().Set("Allow", "GET, HEAD")
				plain(w, http.StatusMethodNotAllowed, "method not allowed: use GET")
				return
			}
			h.peersJSON(w, r, s)
			return
		}
	}
	plain(w, http.StatusNotFound, "not found")
}

// plain writes a one-line text/plain answer.
func plain(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	io.WriteString(w, strings.ReplaceAll(msg, "\n", " ")+"\n")
}

func (h *Handler) register(w http.ResponseWriter, r *http.Request, s *site) {
	// Body framing: a length or chunked, at most MaxBody.
	if r.ProtoMajor == 1 && r.ContentLength == 0 && r.Header.Get("Content-Length") == "" && len(r.TransferEncoding) == 0 {
		plain(w, http.StatusLengthRequired, "length required: send Content-Length or a chunked body")
		return
	}
	if r.ContentLength > MaxBody {
		plain(w, http.StatusRequestEntityTooLarge, "body too large: send only the public key")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			plain(w, http.StatusRequestEntityTooLarge, "body too large: send only the public key")
			return
		}
		plain(w, http.StatusBadRequest, "cannot read the body")
		return
	}
	cn, how, err := h.identity(r, s)
	if err != nil {
		h.log.Info("autowg: registration refused: no identity", "remote", r.RemoteAddr, "reason", err)
		plain(w, http.StatusForbidden, "forbidden: "+err.Error())
		return
	}
	raw, ok := s.pattern.Name(cn)
	if !ok {
		h.log.Info("autowg: registration refused: CN does not match the pattern", "remote", r.RemoteAddr, "cn", cn, "pattern", s.pattern.String())
		plain(w, http.StatusForbidden, "forbidden: the certificate's CN does not match the expected pattern")
		return
	}
	pub, err := ParseKeyBody(body)
	if err != nil {
		plain(w, http.StatusBadRequest, err.Error())
		return
	}
	lower, err := CanonicalName(raw)
	if err != nil {
		plain(w, http.StatusBadRequest, err.Error())
		return
	}
	name, addr, err := s.conv.Convert(lower)
	if err != nil {
		plain(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx := r.Context()
	mu := &h.nameLocks[nameStripe(name)]
	mu.Lock()
	reg, err := h.svc.Register(ctx, control.RegisterInput{Network: s.Network, Name: name, PublicKey: pub, Pool: s.Pool, Address: addr})
	if err == nil && s.Apply != nil {
		if err = s.Apply.ApplyRegistration(ctx, reg.Peer, reg.Replaced); err != nil {
			err = fmt.Errorf("apply the registration of %q to the device: %w", name, err)
			// A new device the interface refuses (its key belongs to a static peer there)
			// must not stay registered: take it out of the store again.
			if reg.Changed && len(reg.Replaced) == 0 {
				if derr := h.svc.DeletePeer(context.WithoutCancel(ctx), s.Network, pub); derr != nil {
					h.log.Error("autowg: cannot undo a registration the device refused", "name", name, "public_key", pub, "err", derr)
				}
			}
		}
	}
	mu.Unlock()
	if err != nil {
		h.fail(w, "register", err, "name", name, "cn", cn, "identity", how, "public_key", pub)
		return
	}
	ifPub, port, err := h.iface(ctx, s)
	if err != nil {
		h.fail(w, "read the interface", err)
		return
	}
	if reg.Changed {
		h.log.Info("autowg: device registered", "network", s.Network, "name", name, "cn", cn, "identity", how,
			"ip", reg.Peer.Addresses[0].String(), "public_key", pub, "replaced", len(reg.Replaced))
	}
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintf(w, "endpoint=%s\npubkey=%s\nroute=%s\nip=%s\nkeepalive=25\n",
		net.JoinHostPort(s.Endpoint, fmt.Sprint(port)), ifPub, s.Route, reg.Peer.Addresses[0])
}

func nameStripe(name string) int {
	h := fnv.New32a()
	h.Write([]byte(name))
	return int(h.Sum32() % 64)
}

// fail maps an error to its status: 400, 403, 409 (logged as a warning) or 500 only.
func (h *Handler) fail(w http.ResponseWriter, what string, err error, attrs ...any) {
	attrs = append(attrs, "err", err)
	switch wirefleet.KindOf(err) {
	case wirefleet.KindInvalid:
		plain(w, http.StatusBadRequest, firstLine(err))
	case wirefleet.KindForbidden:
		h.log.Warn("autowg: registration refused", attrs...)
		plain(w, http.StatusForbidden, "forbidden: "+firstLine(err))
	case wirefleet.KindConflict:
		h.log.Warn("autowg: registration conflict", attrs...)
		plain(w, http.StatusConflict, "conflict: "+firstLine(err))
	default:
		h.log.Error("autowg: "+what+" failed", attrs...)
		plain(w, http.StatusInternalServerError, "internal error")
	}
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// infoTTL bounds how stale the interface key and port may be in answers: reading them
// costs a full peer dump on wgctrl backends (milliseconds at thousands of peers), too much
// for every registration; a key or port change shows within infoTTL, without a restart.
const infoTTL = 5 * time.Second

// iface returns the interface public key and listen port.
func (h *Handler) iface(ctx context.Context, s *site) (wirefleet.Key, int, error) {
	if s.Device == nil {
		n, err := h.svc.GetNetwork(ctx, s.Network)
		if err != nil {
			return wirefleet.Key{}, 0, err
		}
		return n.PublicKey, int(n.ListenPort), nil
	}
	s.infoMu.Lock()
	defer s.infoMu.Unlock()
	if time.Since(s.infoAt) > infoTTL {
		info, err := s.Device.Info(ctx)
		if err != nil {
			return wirefleet.Key{}, 0, err
		}
		s.info, s.infoAt = info, time.Now()
	}
	if s.info.PublicKey.IsZero() || s.info.ListenPort == 0 {
		return wirefleet.Key{}, 0, fmt.Errorf("interface %s has no private key or no listen port", s.info.Name)
	}
	return s.info.PublicKey, s.info.ListenPort, nil
}
