package enabler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/api"
	"github.com/wirefleet/wirefleet/internal/compat/enabler"
	"github.com/wirefleet/wirefleet/internal/control"
	"github.com/wirefleet/wirefleet/internal/store/sqlite"
	"github.com/wirefleet/wirefleet/internal/wgdev/auto"
)

// DBFile is the store's file name inside the data directory.
const DBFile = "wirefleet.db"

// Run runs the enabler until ctx is done. Startup errors (bad configuration, a store or
// device that cannot be opened, a network that cannot take the configuration) are returned
// before anything is served.
func Run(ctx context.Context, cfg Config) error {
	s, err := cfg.parse()
	if err != nil {
		return err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if len(cfg.IgnoredEnv) > 0 {
		log.Info("ignoring upstream storage settings: Wirefleet keeps clients in its own store", "variables", cfg.IgnoredEnv, "store", filepath.Join(cfg.DataDir, DBFile))
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create the data directory: %w", err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, DBFile), sqlite.Options{Logger: log})
	if err != nil {
		return fmt.Errorf("open the store in %s: %w", cfg.DataDir, err)
	}
	defer st.Close()
	svc := control.New(st, control.Options{Logger: log})

	n, err := ensureNetwork(ctx, svc, cfg, s, log)
	if err != nil {
		return err
	}
	dev, err := auto.Open(ctx, auto.Config{
		Backend: cfg.Backend, Name: cfg.Device, ListenPort: int(n.ListenPort), PrivateKey: n.PrivateKey.Reveal(),
		Addresses: []netip.Prefix{n.IPv4}, MTU: n.MTU, Logger: log,
	})
	if err != nil {
		return fmt.Errorf("open WireGuard device %s: %w", cfg.Device, err)
	}
	defer dev.Close()

	gw := enabler.NewLocalGateway(svc, dev, s.network, log)
	res, err := gw.Reconcile(ctx)
	if err != nil {
		return fmt.Errorf("restore the clients on %s: %w", cfg.Device, err)
	}
	log.Info("clients restored on the device", "device", cfg.Device, "enabled", res.Desired, "applied", res.Upserted, "removed_unknown", res.Removed, "failed", res.Failed)

	hcfg := enabler.Config{
		Network: s.network, ServerIP: cfg.ServerIP, ServerPort: fmt.Sprint(n.ListenPort), AllowedIPs: cfg.AllowedIPs,
		Tokens: cfg.APITokens, Logger: log,
	}
	if len(cfg.APITokens) > 0 {
		hcfg.Authenticate = storeTokenAuth(svc, s.network)
	}
	h := enabler.New(hcfg, svc, gw, dev)

	ln, err := net.Listen("tcp", s.listen)
	if err != nil {
		return fmt.Errorf("listen on %s (API_PORT): %w", s.listen, err)
	}
	if !h.AuthEnabled() && !isLoopback(ln.Addr()) {
		log.Warn("the enabler API has no authentication and listens beyond loopback: anyone who reaches it can add VPN clients; set API_TOKEN (or -api-token-file) or restrict access with a network policy", "listen", ln.Addr().String())
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	servers := []served{{srv, ln, "enabler API"}}
	closeAll := func() {
		for _, sv := range servers {
			sv.ln.Close()
		}
	}
	obs := newObserver(svc, dev, s.network, cfg.StatsInterval, log)
	if cfg.RESTListen != "" {
		rest, err := restServer(ctx, svc, obs, cfg, log)
		if err != nil {
			closeAll()
			return err
		}
		servers = append(servers, rest)
	}
	if cfg.MetricsListen != "" {
		mln, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			closeAll()
			return fmt.Errorf("listen on %s (-metrics-listen): %w", cfg.MetricsListen, err)
		}
		log.Info("metrics listening", "listen", mln.Addr().String())
		servers = append(servers, served{&http.Server{Handler: obs.metricsHandler(), ReadHeaderTimeout: 10 * time.Second}, mln, "metrics"})
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 3+len(servers))
	wg.Go(func() { errc <- svc.Run(ctx) })
	wg.Go(func() { errc <- obs.Run(ctx) })
	wg.Go(func() { errc <- gw.Run(ctx) })
	for _, sv := range servers {
		wg.Go(func() {
			if err := sv.srv.Serve(sv.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve the %s: %w", sv.what, err)
				return
			}
			errc <- nil
		})
	}
	log.Info("enabler ready", "listen", ln.Addr().String(), "device", cfg.Device, "network", s.network,
		"subnet", n.IPv4.String(), "server_public_key", n.PublicKey.String(), "auth", h.AuthEnabled())

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	cancel()
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer scancel()
	obs.stopStreams()
	for _, sv := range servers {
		_ = sv.srv.Shutdown(sctx)
	}
	wg.Wait()
	return runErr
}

// ensureNetwork creates the network on first start, or brings it in line with the
// environment on later starts (port, subnet, endpoint, routes, keepalive 25, random
// allocation). The private key is the store's once created: a different WG_PRIVATE_KEY
// is refused rather than silently ignored, since clients hold the server's public key.
func ensureNetwork(ctx context.Context, svc *control.Service, cfg Config, s settings, log *slog.Logger) (wirefleet.Network, error) {
	keepalive := Keepalive
	random := wirefleet.AllocRandom
	endpoint := cfg.ServerIP
	if wirefleet.ValidateEndpointHost(endpoint) != nil {
		endpoint = "" // echoed verbatim by the facade anyway; the REST API's configs omit it
	}
	n, err := svc.GetNetwork(ctx, s.network)
	switch {
	case wirefleet.IsKind(err, wirefleet.KindNotFound):
		n, err = svc.CreateNetwork(ctx, control.NetworkInput{
			Name: s.network, ListenPort: s.wgPort, IPv4: s.subnet, Endpoint: endpoint, Routes: s.routes,
			Keepalive: &keepalive, Allocation: random, PrivateKey: s.privateKey,
		})
		if err != nil {
			return n, fmt.Errorf("create network %q from WG_SUBNET %s: %w", s.network, s.subnet, err)
		}
		if s.privateKey == nil {
			log.Info("WG_PRIVATE_KEY is not set: generated the interface key and kept it in the store", "server_public_key", n.PublicKey.String())
		}
		log.Info("network created", "network", n.Name, "subnet", n.IPv4.String(), "listen_port", n.ListenPort)
		return n, nil
	case err != nil:
		return n, fmt.Errorf("read network %q: %w", s.network, err)
	}
	if s.privateKey != nil && s.privateKey.PublicKey() != n.PublicKey {
		return n, fmt.Errorf("WG_PRIVATE_KEY does not match the interface key of network %q kept in %s (public key %s): clients trust that key; unset WG_PRIVATE_KEY to keep it, or use a new -data directory for a new key", s.network, cfg.DataDir, n.PublicKey)
	}
	routes := s.routes
	if routes == nil {
		routes = []netip.Prefix{}
	}
	u := control.NetworkUpdate{ListenPort: &s.wgPort, IPv4: &s.subnet, Endpoint: &endpoint, Routes: &routes, Keepalive: &keepalive, Allocation: &random}
	n, err = svc.UpdateNetwork(ctx, s.network, u)
	if err != nil {
		return n, fmt.Errorf("apply WG_SUBNET %s, WG_PORT %d and SERVER_IP to network %q: %w", s.subnet, s.wgPort, s.network, err)
	}
	return n, nil
}

// storeTokenAuth accepts the control plane's tokens that may manage the network's peers.
func storeTokenAuth(svc *control.Service, network string) func(context.Context, string) error {
	return func(ctx context.Context, secret string) error {
		t, err := svc.Authenticate(ctx, secret)
		if err != nil {
			return err
		}
		if !(t.HasRole(wirefleet.RoleAdmin) || t.HasRole(wirefleet.RoleOperator)) || !t.InScope(network) {
			return wirefleet.Errorf(wirefleet.KindForbidden, "token %s may not manage the clients of network %q", t.ID, network)
		}
		return nil
	}
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// served is one HTTP server with its listener.
type served struct {
	srv  *http.Server
	ln   net.Listener
	what string
}

// restServer builds the optional /api/v1 listener. With no token in the store yet, it
// creates an admin token and prints it once (only its hash is kept).
func restServer(ctx context.Context, svc *control.Service, obs *observer, cfg Config, log *slog.Logger) (served, error) {
	repl, sess := obs.apiRoutes()
	h, err := api.New(api.Config{Service: svc, Logger: log, Replication: repl, Sessions: sess})
	if err != nil {
		return served{}, fmt.Errorf("build the REST API: %w", err)
	}
	toks, err := svc.ListTokens(ctx)
	if err != nil {
		return served{}, fmt.Errorf("list API tokens: %w", err)
	}
	if len(toks) == 0 {
		_, secret, err := svc.CreateToken(ctx, control.TokenInput{Name: "enabler admin", Roles: []wirefleet.Role{wirefleet.RoleAdmin}})
		if err != nil {
			return served{}, fmt.Errorf("create the first admin token: %w", err)
		}
		out := cfg.Stdout
		if out == nil {
			out = os.Stdout
		}
		fmt.Fprintf(out, "REST API admin token (shown once, keep it): %s\n", secret)
	}
	ln, err := net.Listen("tcp", cfg.RESTListen)
	if err != nil {
		return served{}, fmt.Errorf("listen on %s (-rest-listen): %w", cfg.RESTListen, err)
	}
	log.Info("REST API listening", "listen", ln.Addr().String())
	srv := &http.Server{Handler: obs.restHandler(h), ReadHeaderTimeout: 10 * time.Second}
	return served{srv, ln, "REST API"}, nil
}
