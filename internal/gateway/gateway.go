package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/compat/vpndaemon"
)

// shutdownGrace is how long in-flight requests get after SIGTERM; the portal's own budget
// is 4 s per request.
const shutdownGrace = 5 * time.Second

// Run opens the device, serves the vpn-daemon API until ctx ends (SIGTERM), then stops
// accepting requests, lets in-flight ones finish and closes the device. A userspace device
// goes away with it; kernel and attached links and their peers stay.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	var tlsCfg *tls.Config
	if cfg.CredentialsDir != "" {
		var err error
		if tlsCfg, err = tlsConfig(cfg.CredentialsDir, nil); err != nil {
			return err
		}
	}
	// An attached interface keeps its own key (wg-quick or the operator set it): the key
	// in the state directory is for devices the gateway creates.
	var key *wirefleet.Key
	if cfg.Device.Backend != "attach" {
		k, err := loadOrCreateKey(cfg.StateDir, log)
		if err != nil {
			return err
		}
		key = &k
	}
	open := cfg.OpenDevice
	if open == nil {
		open = openDevice
	}
	dev, err := open(ctx, cfg.Device, key, log)
	if err != nil {
		return fmt.Errorf("open WireGuard device %s (-wg-backend %s): %w", cfg.Device.Name, cfg.Device.Backend, err)
	}
	defer func() {
		if err := dev.Close(); err != nil {
			log.Warn("closing the device", "err", err)
		}
	}()
	info, err := dev.Info(ctx)
	if err != nil {
		return fmt.Errorf("read WireGuard device %s: %w", cfg.Device.Name, err)
	}
	log.Info("WireGuard device ready", "device", info.Name, "backend", info.Backend,
		"public_key", info.PublicKey, "listen_port", info.ListenPort, "addresses", fmt.Sprint(info.Addresses))

	fleet := newFleet(cfg.OpenVPNSocketDir, log)
	var ovpn vpndaemon.OpenVPN = fleetOpenVPN{fleet}
	if cfg.OpenVPN != nil {
		ovpn = cfg.OpenVPN
	}
	api := vpndaemon.New(vpndaemon.Config{
		Device:          dev,
		OpenVPN:         ovpn,
		MaintenanceFile: cfg.MaintenanceFile,
		Logger:          log.With("api", "vpn-daemon"),
	})
	reg := standaloneRegistry(dev, info.Name, fleet, log)
	// Ready while the device answers (an attached interface someone deleted does not).
	ready := func(ctx context.Context) error { _, err := dev.Info(ctx); return err }
	return serve(ctx, cfg, withObservability(api, reg, ready), tlsCfg, log)
}

func serve(ctx context.Context, cfg Config, h http.Handler, tlsCfg *tls.Config, log *slog.Logger) error {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("-listen %s: %w", cfg.Listen, err)
	}
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		// peer_list of a large node is megabytes; the portal's own limit is 4 s.
		WriteTimeout:   30 * time.Second,
		IdleTimeout:    60 * time.Second,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:    func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() {
		if tlsCfg != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	log.Info("vpn-daemon API listening", "addr", ln.Addr().String(), "tls", tlsCfg != nil)
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr())
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", cfg.Listen, err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		log.Warn("requests still running at shutdown were cut off", "err", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
