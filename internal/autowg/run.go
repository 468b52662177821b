package autowg

import (
	"context"
	"crypto/tls"
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

	"golang.zx2c4.com/wireguard/wgctrl"

	"github.com/wirefleet/wirefleet"
	compat "github.com/wirefleet/wirefleet/internal/compat/autowg"
	"github.com/wirefleet/wirefleet/internal/compat/enabler"
	"github.com/wirefleet/wirefleet/internal/control"
	"github.com/wirefleet/wirefleet/internal/store/sqlite"
	"github.com/wirefleet/wirefleet/internal/wgdev/auto"
)

// DBFile is the store's file name inside the data directory.
const DBFile = "autowg.db"

// Run runs the autowg server until ctx is done. Startup errors (bad flags, no such
// interface, an interface without a key) are returned before anything is served.
func Run(ctx context.Context, cfg Config) error {
	s, err := cfg.parse()
	if err != nil {
		return err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}

	// The interface must exist and have a key: we attach, we never create.
	priv, err := interfaceKey(cfg.Interface)
	if err != nil {
		return err
	}
	if n, err := trimMixedPeers(cfg.Interface, s.pool, log); err != nil {
		return fmt.Errorf("clean the pool's addresses off mixed peers of %s: %w", cfg.Interface, err)
	} else if n > 0 {
		log.Info("startup cleanup: removed pool addresses from peers that also hold addresses outside the pool", "peers", n)
	}
	dev, err := auto.Open(ctx, auto.Config{Backend: "attach", Name: cfg.Interface, ManagedPrefixes: []netip.Prefix{s.pool}, Logger: log})
	if err != nil {
		return fmt.Errorf("attach to %s: %w", cfg.Interface, err)
	}
	defer dev.Close()
	info, err := dev.Info(ctx)
	if err != nil {
		return fmt.Errorf("read interface %s: %w", cfg.Interface, err)
	}

	dir := cfg.DataDir
	if dir == "" {
		// Like upstream: no state across restarts (devices re-register).
		if dir, err = os.MkdirTemp("", "wirefleet-autowg-"); err != nil {
			return fmt.Errorf("create a temporary store: %w", err)
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create the data directory: %w", err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, DBFile), sqlite.Options{Logger: log, Ephemeral: cfg.DataDir == ""})
	if err != nil {
		return fmt.Errorf("open the store in %s: %w", dir, err)
	}
	defer st.Close()
	svc := control.New(st, control.Options{Logger: log})
	if _, err := ensureNetwork(ctx, svc, cfg, s, priv, info.ListenPort); err != nil {
		return err
	}

	gw := enabler.NewLocalGateway(svc, dev, s.network, log)
	res, err := gw.Reconcile(ctx)
	if err != nil {
		return fmt.Errorf("startup cleanup of %s: %w", cfg.Interface, err)
	}
	log.Info("startup cleanup done: pool peers not registered were removed", "interface", cfg.Interface, "pool", s.pool.String(),
		"removed", res.Removed, "restored", res.Upserted, "failed", res.Failed)

	applier := newBatchApplier(dev)
	h, err := compat.New(compat.Config{
		Service: svc, ClientCAs: s.cas, CRLFile: cfg.CRLFile, TrustedProxies: s.proxies, Logger: log,
		Sites: []compat.SiteConfig{{
			Prefix: cfg.HTTPPrefix, Network: s.network, Pool: s.pool, Route: s.route, Endpoint: cfg.Endpoint,
			CNPattern: cfg.CNPattern, Converter: cfg.Converter, Template: cfg.MetansTemplate,
			Device: dev, Apply: applier, HTTPAuth: cfg.HTTPAuth,
		}},
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.listen)
	if err != nil {
		return fmt.Errorf("listen on %s (--http-host/--http-port): %w", s.listen, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 16 << 10}
	scheme := "http"
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("load --tls-cert/--tls-key: %w", err)
		}
		// RequestClientCert: the handler verifies the chain against the CAs itself, so a
		// certificate of another CA gets a clear 403 rather than a failed handshake.
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, srv.TLSConfig)
		scheme = "https"
	}

	var rest *http.Server
	var restLn net.Listener
	if cfg.RESTListen != "" {
		if rest, restLn, err = restServer(ctx, svc, cfg.RESTListen, cfg.Stdout, log); err != nil {
			ln.Close()
			return err
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 8) // one per goroutine below, so none blocks at shutdown
	wg.Go(func() { errc <- svc.Run(ctx) })
	wg.Go(func() { errc <- applier.Run(ctx) })
	if rest != nil {
		// Administrators change peers through the API too (disable, delete): follow the
		// op log (registrations are then applied twice, harmlessly).
		wg.Go(func() { errc <- gw.Run(ctx) })
		wg.Go(func() {
			if err := rest.Serve(restLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve the REST API: %w", err)
				return
			}
			errc <- nil
		})
	} else {
		wg.Go(func() { errc <- repairLoop(ctx, gw, RepairEvery, log) })
	}
	wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("serve registrations: %w", err)
			return
		}
		errc <- nil
	})
	log.Info("autowg ready", "listen", ln.Addr().String(), "scheme", scheme, "prefix", compat.NormalizePrefix(cfg.HTTPPrefix),
		"interface", cfg.Interface, "pool", s.pool.String(), "route", s.route.String(), "converter", cfg.Converter,
		"trusted_proxies", fmt.Sprint(s.proxies), "mtls", len(s.cas) > 0, "state", map[bool]string{true: "temporary", false: dir}[cfg.DataDir == ""])
	if cfg.Stdout != nil {
		fmt.Fprintf(cfg.Stdout, "autowg listening on %s://%s\n", scheme, ln.Addr())
	}
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr())
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	cancel()
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer scancel()
	_ = srv.Shutdown(sctx)
	if rest != nil {
		_ = rest.Shutdown(sctx)
	}
	wg.Wait()
	return runErr
}

// RepairEvery is the period of the full diff between the store and the interface.
const RepairEvery = 30 * time.Second

// repairLoop runs the gateway's full diff periodically: registrations are applied by the
// handler itself, so this only repairs drift (a pool peer removed or added by hand). In
// autowg mode nothing else writes to the store (no REST API, no expiry), so following the
// op log as well would only apply every registration twice.
func repairLoop(ctx context.Context, gw *enabler.LocalGateway, every time.Duration, log *slog.Logger) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		res, err := gw.Reconcile(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("autowg: full diff of the interface failed", "err", err)
		case res.Upserted+res.Removed+res.Failed > 0:
			log.Info("autowg: interface repaired", "upserted", res.Upserted, "removed", res.Removed, "failed", res.Failed)
		}
	}
}

// interfaceKey reads the interface's private key: the network's key must be the
// interface's, so that the API shows the key devices actually talk to.
func interfaceKey(name string) (wirefleet.Key, error) {
	c, err := wgctrl.New()
	if err != nil {
		return wirefleet.Key{}, fmt.Errorf("open wgctrl: %w", err)
	}
	defer c.Close()
	d, err := c.Device(name)
	if err != nil {
		return wirefleet.Key{}, fmt.Errorf("interface %s is not an existing WireGuard interface (%v): autowg manages peers on an interface you bring up first, e.g. with wg-quick up %s", name, err, name)
	}
	var zero [32]byte
	if d.PrivateKey == zero {
		return wirefleet.Key{}, fmt.Errorf("interface %s has no private key: set one (wg set %s private-key FILE, or PrivateKey in wg-quick's file) before starting autowg", name, name)
	}
	if d.ListenPort == 0 {
		return wirefleet.Key{}, fmt.Errorf("interface %s has no listen port: devices need a port to dial (wg set %s listen-port PORT)", name, name)
	}
	return wirefleet.Key(d.PrivateKey), nil
}

// ensureNetwork creates the registration network (the pool, its own address the pool's
// last one, which no converter produces in practice and sequential never reaches), or, with
// -data, brings the stored one in line with the flags.
func ensureNetwork(ctx context.Context, svc *control.Service, cfg Config, s settings, priv wirefleet.Key, port int) (wirefleet.Network, error) {
	own := netip.PrefixFrom(lastAddr(s.pool), s.pool.Bits())
	zero := 0
	lport := uint16(port)
	routes := []netip.Prefix{s.route}
	n, err := svc.GetNetwork(ctx, s.network)
	switch {
	case wirefleet.IsKind(err, wirefleet.KindNotFound):
		n, err = svc.CreateNetwork(ctx, control.NetworkInput{Name: s.network, ListenPort: lport, IPv6: own, Endpoint: cfg.Endpoint,
			Routes: routes, Keepalive: &zero, PrivateKey: &priv})
		if err != nil {
			return n, fmt.Errorf("create the registration network %q for pool %s: %w", s.network, s.pool, err)
		}
		return n, nil
	case err != nil:
		return n, fmt.Errorf("read network %q: %w", s.network, err)
	}
	if n.PublicKey != priv.PublicKey() {
		return n, fmt.Errorf("interface %s has another key than the one kept in %s for network %q: devices would be told a wrong key; use a new -data directory", cfg.Interface, cfg.DataDir, s.network)
	}
	n, err = svc.UpdateNetwork(ctx, s.network, control.NetworkUpdate{ListenPort: &lport, IPv6: &own, Endpoint: &cfg.Endpoint, Routes: &routes, Keepalive: &zero})
	if err != nil {
		return n, fmt.Errorf("apply --pool %s, --route and --endpoint to the stored network %q: %w", s.pool, s.network, err)
	}
	return n, nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As16()
	host := 128 - p.Bits()
	for i := 15; i >= 0 && host > 0; i-- {
		n := min(host, 8)
		b[i] |= byte(1<<n - 1)
		host -= n
	}
	return netip.AddrFrom16(b)
}
