package server

// The managed-gateway side of the control plane: the replication handler (snapshot + log)
// and the session tracker behind the API's routes (routes.go adapts them), /metrics, and — unless
// -no-gateway — the all-in-one experience: on first run a default network and an admin
// token printed once, and a managed gateway running in this process that follows the
// control plane over loopback like any other gateway.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/api"
	"github.com/wirefleet/wirefleet/internal/api/mount"
	"github.com/wirefleet/wirefleet/internal/control"
	"github.com/wirefleet/wirefleet/internal/gateway"
	"github.com/wirefleet/wirefleet/internal/metrics"
	"github.com/wirefleet/wirefleet/internal/replication"
	"github.com/wirefleet/wirefleet/internal/sessions"
	"github.com/wirefleet/wirefleet/internal/store"
	"github.com/wirefleet/wirefleet/internal/wgdev"
	"github.com/wirefleet/wirefleet/internal/wgdev/auto"
)

// DefaultNetworkName is the network created on first run of the all-in-one server.
const DefaultNetworkName = "default"

// localTokenFile keeps the local gateway's token secret in the data dir (0600).
const localTokenFile = "local-gateway.token"

// AllInOne configures the managed side of `wirefleet server`. The zero value is the
// product default.
type AllInOne struct {
	// DefaultIPv4 and DefaultIPv6 are the default network's own addresses with their
	// prefix (198.18.7.1/24). Zero: a random /24 in 100.64.0.0/10 (shared address space,
	// RFC 6598, rarely used on LANs) and a random ULA /64 (fd00::/8, RFC 4193).
	DefaultIPv4, DefaultIPv6 netip.Prefix
	// DefaultNetwork names the network created on first run (default "default").
	DefaultNetwork string
	// DefaultPort is the default network's UDP port (default 51820).
	DefaultPort uint16
	// DefaultEndpoint is the host clients dial. Empty: the host's primary address (the
	// source address of its route to the internet) or else its name, logged with the
	// reason (endpoint.go).
	DefaultEndpoint string
	// GatewayBackend is the local gateway's WireGuard backend (default auto).
	GatewayBackend string
	// GatewayListen serves the local gateway's /metrics; "" means not served (the
	// gateway's metrics are then only in its log).
	GatewayListen string
	// GatewayOpenVPNSocketDir is where the node's OpenVPN servers keep their management
	// sockets: their clients become sessions (protocol openvpn) like remote gateways'
	// ones. "" turns the bridge off.
	GatewayOpenVPNSocketDir string
	// DriftInterval and StatsInterval of the local gateway (defaults 60 s and 30 s).
	DriftInterval, StatsInterval time.Duration
	// SessionInactivity closes sessions (default 600 s); SessionEndpoints keeps endpoint
	// IPs; SessionEventsFile appends events as JSON lines; SessionWebhook POSTs them.
	SessionInactivity                 time.Duration
	SessionEndpoints                  bool
	SessionEventsFile, SessionWebhook string
	// Heartbeat of replication streams (default 15 s).
	Heartbeat time.Duration
	// LogKeepOps and LogKeepAge compact the operation log: ops beyond the last LogKeepOps
	// or older than LogKeepAge are deleted (0: no limit; both 0: never compact). Consumers
	// further behind reload a snapshot.
	LogKeepOps uint64
	LogKeepAge time.Duration
	// Out receives the admin token printed once on first run (default os.Stdout).
	Out io.Writer
	// OpenDevice replaces wgdev/auto for the local gateway (tests).
	OpenDevice func(ctx context.Context, c auto.Config) (wgdev.Device, error)
	// probe replaces the system's route lookups and host name (tests).
	probe *endpointProbe
}

// managedSide is what the control plane adds to the REST API for gateways.
type managedSide struct {
	handler http.Handler // set by mount
	sm      *metrics.Server
	reg     *prometheus.Registry
	repl    *replication.Handler
	tracker *sessions.Tracker
	cfg     Config
	svc     *control.Service
	log     *slog.Logger
	wg      sync.WaitGroup
	bgStop  context.CancelFunc
	gwToken string
	// endStreams ends the replication streams (registered with the HTTP server's
	// Shutdown, which would otherwise wait for them).
	endStreams func()
}

func newManagedSide(ctx context.Context, cfg Config, st store.Store, svc *control.Service, log *slog.Logger) (*managedSide, error) {
	a := cfg.AllInOne
	reg := metrics.NewRegistry()
	var sinks []sessions.Sink
	var runners []func(context.Context) error
	if a.SessionEventsFile != "" {
		s := sessions.NewFileSink(a.SessionEventsFile, log)
		sinks, runners = append(sinks, s), append(runners, s.Run)
	}
	if a.SessionWebhook != "" {
		s := sessions.NewWebhookSink(a.SessionWebhook, nil, log)
		sinks, runners = append(sinks, s), append(runners, s.Run)
	}
	tracker := sessions.New(sessions.Config{Inactivity: a.SessionInactivity, KeepEndpoints: a.SessionEndpoints, Logger: log, Sinks: sinks})
	runners = append(runners, tracker.Run)
	if a.LogKeepOps > 0 || a.LogKeepAge > 0 {
		c := &replication.Compactor{Log: svc, KeepOps: a.LogKeepOps, KeepAge: a.LogKeepAge, Logger: log}
		runners = append(runners, c.Run)
	}
	peerCounts := &cachedCounts{st: st, ttl: 30 * time.Second}
	sm := metrics.NewServer(reg, metrics.ServerSources{
		LogSeq: func() uint64 {
			seq, _, _ := svc.Head(context.Background())
			return seq
		},
		Gateways:     func() int { return tracker.Gateways(2 * time.Minute) },
		PeersByState: peerCounts.get,
	})
	streamsDone := make(chan struct{})
	repl := replication.NewHandler(replication.Options{Source: svc, Heartbeat: a.Heartbeat, Logger: log, Stop: streamsDone,
		Streams: func(d int, c replication.Caller) { sm.Streams.WithLabelValues(roleLabel(c.Roles)).Add(float64(d)) }})
	m := &managedSide{sm: sm, reg: reg, repl: repl, tracker: tracker, cfg: cfg, svc: svc, log: log,
		endStreams: sync.OnceFunc(func() { close(streamsDone) })}
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	m.bgStop = stop
	for _, r := range runners {
		m.wg.Add(1)
		go func() { defer m.wg.Done(); _ = r(bg) }()
	}
	if !cfg.NoGateway {
		if err := m.bootstrap(ctx); err != nil {
			stop()
			return nil, err
		}
	}
	return m, nil
}

// apiRoutes are the managed routes as the API's route table calls them.
func (m *managedSide) apiRoutes() (api.Replication, api.Sessions) {
	return mount.Replication(m.repl), mount.Sessions(sessions.Handler{T: m.tracker})
}

// mount serves the API (which carries the replication, stats and sessions routes) and
// /metrics, with API latency recorded by route.
func (m *managedSide) mount(apiHandler http.Handler) {
	mux := http.NewServeMux()
	mux.Handle("/", apiHandler)
	mux.Handle("GET /metrics", metrics.Handler(m.reg))
	m.handler = m.sm.Instrument(mux)
}

// roleLabel picks the replication role of a caller for the streams metric.
func roleLabel(roles []wirefleet.Role) string {
	for _, r := range []wirefleet.Role{wirefleet.RoleGateway, wirefleet.RoleFollower, wirefleet.RoleAdmin} {
		if slices.Contains(roles, r) {
			return string(r)
		}
	}
	return "other"
}

// bootstrap creates the default network and prints an admin token on first run (an empty
// database), and makes sure the local gateway has a token.
func (m *managedSide) bootstrap(ctx context.Context) error {
	a := m.cfg.AllInOne
	nets, err := m.svc.ListNetworks(ctx)
	if err != nil {
		return err
	}
	toks, err := m.svc.ListTokens(ctx)
	if err != nil {
		return err
	}
	if len(nets) == 0 && len(toks) == 0 {
		name := a.DefaultNetwork
		if name == "" {
			name = DefaultNetworkName
		}
		in := control.NetworkInput{Name: name, ListenPort: a.DefaultPort, IPv4: a.DefaultIPv4, IPv6: a.DefaultIPv6, Endpoint: a.DefaultEndpoint}
		if !in.IPv4.IsValid() {
			in.IPv4 = randomCGNAT24()
		}
		if !in.IPv6.IsValid() {
			in.IPv6 = randomULA64()
		}
		if in.Endpoint == "" {
			in.Endpoint = m.defaultEndpoint(ctx)
		}
		n, err := m.svc.CreateNetwork(ctx, in)
		if err != nil {
			return fmt.Errorf("create the default network: %w", err)
		}
		_, secret, err := m.svc.CreateToken(ctx, control.TokenInput{Name: "admin (first run)", Roles: []wirefleet.Role{wirefleet.RoleAdmin}})
		if err != nil {
			return fmt.Errorf("create the first admin token: %w", err)
		}
		out := a.Out
		if out == nil {
			out = os.Stdout
		}
		dial := "none: client configs lack an Endpoint until the network has one"
		if n.Endpoint != "" {
			dial = net.JoinHostPort(n.Endpoint, strconv.Itoa(int(n.ListenPort)))
		}
		fmt.Fprintf(out, "Created network %q (%s, %s, port %d; clients dial %s).\nAdmin token (shown once, keep it): %s\n", n.Name, n.IPv4, n.IPv6, n.ListenPort, dial, secret)
		m.log.Info("first run: created the default network and an admin token (printed on stdout)", "network", n.Name, "ipv4", n.IPv4, "ipv6", n.IPv6)
	}
	return m.localToken(ctx)
}

// defaultEndpoint picks the default network's endpoint when -default-endpoint is not
// given, so that the first client config works from a phone; it logs what and why.
func (m *managedSide) defaultEndpoint(ctx context.Context) string {
	p := systemProbe()
	if m.cfg.AllInOne.probe != nil {
		p = *m.cfg.AllInOne.probe
	}
	host, why := p.choose(ctx)
	if host != "" {
		if err := wirefleet.ValidateEndpointHost(host); err != nil {
			host, why = "", fmt.Sprintf("%s, but %v", why, err)
		}
	}
	if host == "" {
		m.log.Warn("first run: no -default-endpoint and no usable address or host name: the default network has no endpoint, so client configs will lack one until it is set (PATCH /api/v1/networks/{network} with {\"endpoint\": HOST})", "why", why)
		return ""
	}
	m.log.Info("first run: no -default-endpoint given; clients will dial this host (give -default-endpoint to choose another)", "endpoint", host, "why", why)
	return host
}

// localToken loads or creates the local gateway's token (role gateway, all networks).
func (m *managedSide) localToken(ctx context.Context) error {
	path := filepath.Join(m.cfg.DataDir, localTokenFile)
	b, err := os.ReadFile(path)
	if err == nil {
		secret := strings.TrimSpace(string(b))
		if _, aerr := m.svc.Authenticate(ctx, secret); aerr == nil {
			m.gwToken = secret
			return nil
		}
		m.log.Warn("the local gateway's token was revoked or is invalid; creating a new one", "file", path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read %s: %w", path, err)
	}
	_, secret, err := m.svc.CreateToken(ctx, control.TokenInput{Name: "local gateway", Roles: []wirefleet.Role{wirefleet.RoleGateway}})
	if err != nil {
		return fmt.Errorf("create the local gateway's token: %w", err)
	}
	if err := os.WriteFile(path+".tmp", []byte(secret+"\n"), 0o600); err != nil {
		return err
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return err
	}
	m.gwToken = secret
	return nil
}

// startGateway runs the local managed gateway against the server's own listener.
func (m *managedSide) startGateway(ctx context.Context, addr net.Addr, tlsOn bool) {
	if m.cfg.NoGateway {
		return
	}
	a := m.cfg.AllInOne
	host, port, _ := net.SplitHostPort(addr.String())
	if ip, err := netip.ParseAddr(host); err != nil || ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip.Is6() && !ip.Is4In6() {
			host = "::1"
		}
	}
	scheme := "http"
	client := &http.Client{}
	if tlsOn {
		scheme = "https"
		client = pinnedClient(m.cfg.TLSCert)
	}
	backend := a.GatewayBackend
	if backend == "" {
		backend = "auto"
	}
	g := gateway.Managed{
		ControlURL:       scheme + "://" + net.JoinHostPort(host, port),
		Token:            m.gwToken,
		Backend:          backend,
		StateDir:         filepath.Join(m.cfg.DataDir, "gateway"),
		Listen:           a.GatewayListen,
		OpenVPNSocketDir: a.GatewayOpenVPNSocketDir,
		DriftInterval:    a.DriftInterval,
		StatsInterval:    a.StatsInterval,
		Name:             "local",
		Logger:           m.log.With("component", "local-gateway"),
		OpenDevice:       a.OpenDevice,
		Client:           client,
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := gateway.RunManaged(ctx, g); err != nil {
			m.log.Error("local gateway stopped", "err", err)
		}
	}()
}

// stop waits for the local gateway and the background jobs (ctx of startGateway must be
// done first).
func (m *managedSide) stop() {
	m.bgStop()
	m.wg.Wait()
}

// pinnedClient trusts exactly the server's own certificate: the local gateway talks to
// its own process over loopback, whatever names the certificate was issued for.
func pinnedClient(certFile string) *http.Client {
	var leaf []byte
	if b, err := os.ReadFile(certFile); err == nil {
		if blk, _ := pem.Decode(b); blk != nil && blk.Type == "CERTIFICATE" {
			leaf = blk.Bytes
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by the exact pin below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || leaf == nil || !bytes.Equal(cs.PeerCertificates[0].Raw, leaf) {
				return errors.New("local gateway: the server's certificate is not the one in -tls-cert")
			}
			return nil
		},
	}
	return &http.Client{Transport: tr}
}

func randomCGNAT24() netip.Prefix {
	// 100.64.0.0/10 holds 2^14 /24s; skip the first, often used by carriers' examples.
	n, _ := rand.Int(rand.Reader, big.NewInt(1<<14-1))
	v := uint32(100)<<24 | 64<<16 | uint32(n.Int64()+1)<<8 | 1
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), 24)
}

func randomULA64() netip.Prefix {
	var b [16]byte
	b[0] = 0xfd
	_, _ = rand.Read(b[1:8]) // 40-bit global ID + 16-bit subnet, as RFC 4193
	b[15] = 1
	return netip.PrefixFrom(netip.AddrFrom16(b), 64)
}

// cachedCounts counts peers by state for the metric, at most once per ttl (a scrape
// every few seconds must not list 50k peers each time).
type cachedCounts struct {
	st  store.Store
	ttl time.Duration

	mu   sync.Mutex // guards at and last
	at   time.Time
	last map[string]int
}

func (c *cachedCounts) get() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) < c.ttl && c.last != nil {
		return c.last
	}
	counts := map[string]int{"enabled": 0, "disabled": 0, "expired": 0}
	err := c.st.View(context.Background(), func(tx store.ReadTx) error {
		ps, err := tx.ListPeers(store.PeerQuery{})
		if err != nil {
			return err
		}
		for _, p := range ps {
			switch {
			case p.Expired:
				counts["expired"]++
			case p.Enabled:
				counts["enabled"]++
			default:
				counts["disabled"]++
			}
		}
		return nil
	})
	if err != nil {
		return c.last
	}
	c.at, c.last = time.Now(), counts
	return counts
}
