package gateway

// Managed mode: `wirefleet gateway -control URL -token T -network NAME…`. The gateway
// follows the control plane (internal/replication), applies each op to its devices in
// O(1) (internal/reconcile), repairs drift periodically, pushes per-peer statistics to
// the control plane, and serves /metrics, /healthz and /readyz on -listen. The vpn-daemon
// API is not served in this mode: the control plane is the source of truth. With
// OpenVPNSocketDir, the node's OpenVPN processes are read too: their clients go with the
// statistics (the control plane makes them sessions with protocol openvpn) and into
// /metrics.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/metrics"
	"github.com/wirefleet/wirefleet/internal/openvpn"
	"github.com/wirefleet/wirefleet/internal/reconcile"
	"github.com/wirefleet/wirefleet/internal/replication"
	"github.com/wirefleet/wirefleet/internal/sessions"
	"github.com/wirefleet/wirefleet/internal/wgdev"
	"github.com/wirefleet/wirefleet/internal/wgdev/auto"
)

// Defaults of managed mode.
const (
	DefaultDriftInterval = 60 * time.Second
	DefaultStatsInterval = 30 * time.Second
	DefaultManagedListen = "127.0.0.1:9586"
)

// Managed configures a managed gateway.
type Managed struct {
	// ControlURL is the control plane's base URL; Token a bearer token with the gateway
	// role (scoped to the networks it serves). ControlCA, if set, is a PEM file of CAs
	// trusted for an https ControlURL.
	ControlURL, Token, ControlCA string
	// Networks to serve; empty: every network the token may see.
	Networks []string
	// Backend: auto, kernel, userspace or attach. DeviceName names the interface when the
	// gateway serves one network; otherwise each network's interface is named after it.
	Backend, DeviceName string
	// StateDir keeps the last applied state (fail-open restarts).
	StateDir string
	// Listen serves /metrics, /healthz and /readyz; "" disables it.
	Listen string
	// DriftInterval and StatsInterval default to 60 s and 30 s.
	DriftInterval, StatsInterval time.Duration
	// Name identifies this gateway in statistics (default: the host name).
	Name string
	// OpenVPNSocketDir holds the management sockets of the node's OpenVPN server
	// processes (*.sock, listed anew at each push and scrape); "" turns the OpenVPN
	// bridge off. A missing directory means no OpenVPN process.
	OpenVPNSocketDir string
	Logger           *slog.Logger
	// Client talks to the control plane; nil: one built from ControlCA.
	Client *http.Client
	// OpenDevice opens a network's device; nil: wgdev/auto (tests inject other backends).
	OpenDevice func(ctx context.Context, c auto.Config) (wgdev.Device, error)
	// Ready is called with the metrics listener's address once it accepts connections.
	Ready func(addr net.Addr)
}

// Validate checks a managed configuration; errors name the flag and the bad value.
func (m Managed) Validate() error {
	u, err := url.Parse(m.ControlURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("-control %q: want the control plane's URL, such as https://control.example.org:8443", m.ControlURL)
	}
	if m.Token == "" {
		return errors.New("-token is empty: give a token with the gateway role (wirefleet token create -role gateway -network NAME)")
	}
	for _, n := range m.Networks {
		if err := wirefleet.ValidateNetworkName(n); err != nil {
			return fmt.Errorf("-network: %v", err)
		}
	}
	if !contains(Backends, m.Backend) {
		return fmt.Errorf("-wg-backend %q: want one of %s", m.Backend, strings.Join(Backends, ", "))
	}
	if m.StateDir == "" {
		return errors.New("-state-dir is empty: the gateway keeps the last applied state there")
	}
	if m.Listen != "" {
		if err := validateListen(m.Listen); err != nil {
			return err
		}
	}
	if m.DriftInterval < 0 || m.StatsInterval < 0 {
		return errors.New("-drift-interval and -stats-interval must not be negative")
	}
	return nil
}

// RunManaged runs a managed gateway until ctx ends. It serves the saved state first
// (fail-open), then follows the control plane, retrying forever while it is away.
func RunManaged(ctx context.Context, m Managed) error {
	if err := m.Validate(); err != nil {
		return err
	}
	log := m.Logger
	if log == nil {
		log = slog.Default()
	}
	if m.DriftInterval == 0 {
		m.DriftInterval = DefaultDriftInterval
	}
	if m.StatsInterval == 0 {
		m.StatsInterval = DefaultStatsInterval
	}
	if m.Name == "" {
		m.Name, _ = os.Hostname()
	}
	open := m.OpenDevice
	if open == nil {
		open = auto.Open
	}
	client := m.Client
	if client == nil {
		var err error
		if client, err = controlClient(m.ControlCA); err != nil {
			return err
		}
	}

	reg := metrics.NewRegistry()
	var (
		rec      *reconcile.Reconciler
		follower *replication.Follower
		stats    = &statsState{}
	)
	gm := metrics.NewGateway(reg, metrics.GatewaySources{
		Peers: stats.samples,
		Replication: func() metrics.ReplicationSample {
			s := follower.Status()
			return metrics.ReplicationSample{Connected: s.Connected, Applied: s.Applied, Head: s.Head, Snapshots: s.Snapshots, Reloads: s.Reloads, Ops: s.Ops}
		},
		Counts: func() map[string][2]int { return rec.Counts() },
	})
	var fleet *openvpn.Fleet
	if m.OpenVPNSocketDir != "" {
		fleet = newFleet(m.OpenVPNSocketDir, log)
		reg.MustRegister(openvpn.NewCollector(fleet))
	}
	single := len(m.Networks) == 1 && m.DeviceName != ""
	rec, err := reconcile.New(reconcile.Config{
		Networks:      m.Networks,
		StateDir:      m.StateDir,
		DriftInterval: m.DriftInterval,
		Logger:        log,
		Open: func(ctx context.Context, n wirefleet.NetworkValue) (wgdev.Device, error) {
			name := InterfaceName(n.Name)
			if single {
				name = m.DeviceName
			}
			return open(ctx, auto.Config{Backend: m.Backend, Name: name, ListenPort: int(n.ListenPort),
				PrivateKey: n.PrivateKey, Addresses: reconcile.Addresses(n.Network), MTU: n.MTU,
				ManagedPrefixes: n.Prefixes(), Logger: log})
		},
		Hooks: reconcile.Hooks{
			Applied: func(t wirefleet.OpType, d time.Duration) {
				gm.ApplyDuration.WithLabelValues(string(t)).Observe(d.Seconds())
			},
			Repaired:    func(n, kind string) { gm.DriftRepairs.WithLabelValues(n, kind).Inc() },
			DeviceError: func(n string) { gm.DeviceErrors.WithLabelValues(n).Inc() },
			Propagated:  func(d time.Duration) { gm.Propagation.Observe(d.Seconds()) },
		},
	})
	if err != nil {
		return err
	}
	// Listen first: a port in use is a configuration error to report before any device
	// is touched.
	var (
		ln net.Listener
		hs *http.Server
	)
	if m.Listen != "" {
		if ln, err = net.Listen("tcp", m.Listen); err != nil {
			return fmt.Errorf("-listen %s: %w", m.Listen, err)
		}
		mux := http.NewServeMux()
		metrics.Mount(mux, reg, func(ctx context.Context) error {
			// Ready when serving a state: caught up with the control plane, or the saved
			// state while it is away (fail-open).
			if s := follower.Status(); s.Synced || s.Applied > 0 {
				return nil
			}
			return errors.New("no state yet: waiting for the control plane's snapshot")
		})
		hs = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	}
	seq, err := rec.Load(ctx)
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		return fmt.Errorf("load saved state: %w", err)
	}
	follower, err = replication.NewFollower(replication.FollowerConfig{URL: m.ControlURL, Token: m.Token, Client: client, Applier: rec, Logger: log})
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		_ = rec.Close()
		return err
	}
	log.Info("managed gateway starting", "control", m.ControlURL, "networks", m.Networks, "resume_after", seq)

	var wg sync.WaitGroup
	run := func(f func(context.Context)) {
		wg.Add(1)
		go func() { defer wg.Done(); f(ctx) }()
	}
	run(func(ctx context.Context) { _ = follower.Run(ctx) })
	run(func(ctx context.Context) { _ = rec.Run(ctx) })
	run(func(ctx context.Context) {
		pushStats(ctx, statsPusher{url: strings.TrimRight(m.ControlURL, "/") + sessions.StatsPath, token: m.Token, client: client, name: m.Name, log: log, ovpn: fleet}, rec, stats, m.StatsInterval)
	})

	if hs != nil {
		run(func(ctx context.Context) { _ = hs.Serve(ln) })
		run(func(ctx context.Context) { <-ctx.Done(); _ = hs.Close() })
		log.Info("managed gateway: metrics and health listening", "addr", ln.Addr().String())
		if m.Ready != nil {
			m.Ready(ln.Addr())
		}
	}
	<-ctx.Done()
	wg.Wait()
	log.Info("managed gateway stopping: saving state")
	if err := rec.Close(); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

// InterfaceName is the interface of a network on a managed gateway: the network's name,
// except for names the kernel reserves for its per-interface settings
// (/proc/sys/net/ipv4/conf/{all,default}), which get a "wf-" prefix: the all-in-one
// server's network "default" is served on interface wf-default.
func InterfaceName(network string) string {
	if network == "default" || network == "all" {
		return "wf-" + network
	}
	return network
}

func controlClient(caFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = 30 * time.Second
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("-control-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-control-ca %s holds no PEM certificate", caFile)
		}
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	}
	return &http.Client{Transport: tr}, nil
}

// statsState is the latest device read, for the per-peer metrics.
type statsState struct {
	mu   sync.Mutex // guards last
	last []metrics.PeerSample
}

func (s *statsState) samples() []metrics.PeerSample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

type statsPusher struct {
	url, token, name string
	client           *http.Client
	log              *slog.Logger
	ovpn             *openvpn.Fleet // nil: OpenVPN is not reported
}

// pushStats reads every device (no lock of the apply path is held: the reconciler only
// hands out the device handles) and pushes the counters in batches.
func pushStats(ctx context.Context, p statsPusher, rec *reconcile.Reconciler, st *statsState, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var (
			peers   []sessions.PeerStats
			samples []metrics.PeerSample
		)
		devs := rec.Devices()
		names := make([]string, 0, len(devs))
		for n := range devs {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			ps, err := devs[n].Peers(ctx)
			if err != nil {
				p.log.Warn("stats: read device failed", "network", n, "err", err)
				continue
			}
			peers = slices.Grow(peers, len(ps))
			samples = slices.Grow(samples, len(ps))
			for _, s := range ps {
				ep := ""
				if s.Endpoint.IsValid() {
					ep = s.Endpoint.String()
				}
				var hs *time.Time
				if !s.LastHandshake.IsZero() {
					h := s.LastHandshake.UTC()
					hs = &h
				}
				peers = append(peers, sessions.PeerStats{Network: n, PublicKey: s.PublicKey, LastHandshake: hs, RxBytes: s.RxBytes, TxBytes: s.TxBytes, Endpoint: ep})
				samples = append(samples, metrics.PeerSample{Network: n, PublicKey: s.PublicKey, RxBytes: s.RxBytes, TxBytes: s.TxBytes, LastHandshake: s.LastHandshake})
			}
		}
		st.mu.Lock()
		st.last = samples
		st.mu.Unlock()
		var ov openVPNStats
		if p.ovpn != nil {
			ov.clients, ov.unreachable, ov.reported = openVPNReport(ctx, p.ovpn)
		}
		err := p.push(ctx, peers, ov)
		peers = nil // not kept alive while waiting for the next tick (50k peers: ~5 MB)
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			p.log.Warn("stats: push to the control plane failed (will retry)", "err", err)
			failing = true
		case err == nil && failing:
			p.log.Info("stats: push works again")
			failing = false
		}
	}
}

// statsBatch bounds the peers per request (a 50k-peer gateway sends 10 requests).
const statsBatch = 5000

// openVPNStats is the OpenVPN part of one push; it goes with the first batch only (a
// report's openvpn array is the complete list, see sessions.Report).
type openVPNStats struct {
	clients     []sessions.OpenVPNClient
	unreachable []string
	reported    bool
}

func (p statsPusher) push(ctx context.Context, peers []sessions.PeerStats, ov openVPNStats) error {
	now := time.Now().UTC()
	for start := 0; start < len(peers) || start == 0; start += statsBatch {
		end := min(start+statsBatch, len(peers))
		rep := sessions.Report{Gateway: p.name, Time: now, Peers: peers[start:end]}
		if rep.Peers == nil {
			rep.Peers = []sessions.PeerStats{} // "peers" is a required array
		}
		if start == 0 && ov.reported {
			rep.OpenVPN, rep.OpenVPNUnreachable = ov.clients, ov.unreachable
		}
		b, err := json.Marshal(rep)
		if err != nil {
			return err
		}
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		req, err := http.NewRequestWithContext(rctx, http.MethodPost, p.url, bytes.NewReader(b))
		if err != nil {
			cancel()
			return err
		}
		req.Header.Set("Authorization", "Bearer "+p.token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := p.client.Do(req)
		if err != nil {
			cancel()
			return err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		cancel()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("POST %s: %s: %s", sessions.StatsPath, resp.Status, bytes.TrimSpace(body))
		}
		if end == len(peers) {
			break
		}
	}
	return nil
}
