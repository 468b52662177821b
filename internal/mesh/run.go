package mesh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/wgdev"
)

// DeviceConfig is what the node asks of the device layer.
type DeviceConfig struct {
	Name            string
	Attach          bool // -e: manage peers on an existing interface
	ListenPort      int
	PrivateKey      wirefleet.Key
	Addresses       []netip.Prefix
	ManagedPrefixes []netip.Prefix
}

// OpenDevice opens the WireGuard device; the composition root (cmd) supplies it so this
// package never imports a concrete backend.
type OpenDevice func(ctx context.Context, c DeviceConfig) (wgdev.Device, error)

// Run starts a node from cfg and serves until ctx ends.
func Run(ctx context.Context, cfg Config, open OpenDevice, log *slog.Logger) error {
	if cfg.StateDir == "" {
		cfg.StateDir = DefaultStateDir
	}
	id, err := LoadIdentity(cfg.StateDir)
	if err != nil {
		return err
	}
	bindings, err := OpenBindings(cfg.StateDir)
	if err != nil {
		return err
	}
	// a fresh WireGuard key at every start, like the reference; the identity signs it
	wgKey, err := wirefleet.GeneratePrivateKey()
	if err != nil {
		return err
	}
	dc := DeviceConfig{Name: cfg.Interface, Attach: cfg.Existing, ListenPort: cfg.WgPort, PrivateKey: wgKey,
		ManagedPrefixes: []netip.Prefix{cfg.Subnet}}
	if !cfg.Existing {
		// the subnet's prefix length makes the kernel route the whole mesh into the device
		dc.Addresses = []netip.Prefix{netip.PrefixFrom(cfg.WgIP, cfg.Subnet.Bits())}
	}
	dev, err := open(ctx, dc)
	if err != nil {
		return fmt.Errorf("WireGuard device %s: %w", cfg.Interface, err)
	}
	defer dev.Close()
	wgPub := wgKey.PublicKey()
	if cfg.Existing {
		// an attached interface keeps its owner's key and port: advertise those
		info, err := dev.Info(ctx)
		if err != nil {
			return fmt.Errorf("read %s: %w", cfg.Interface, err)
		}
		if info.PublicKey.IsZero() {
			return fmt.Errorf("existing interface %s has no private key: set one (wg set %s private-key FILE) or drop -e", cfg.Interface, cfg.Interface)
		}
		if info.ListenPort != cfg.WgPort {
			log.Warn("existing interface listens on another port than configured; advertising its port", "interface", cfg.Interface, "configured", cfg.WgPort, "actual", info.ListenPort)
			cfg.WgPort = info.ListenPort
		}
		wgPub = info.PublicKey
		if !slices.ContainsFunc(info.Addresses, func(p netip.Prefix) bool { return p.Addr() == cfg.WgIP }) {
			// the kernel picks the admin channel's source address from the interface
			return fmt.Errorf("existing interface %s lacks the address %s: add it (ip addr add %s/%d dev %s)", cfg.Interface, cfg.WgIP, cfg.WgIP, cfg.Subnet.Bits(), cfg.Interface)
		}
	}
	host := LinuxHost{}
	if err := host.EnsureRoute(cfg.Interface, cfg.Subnet); err != nil {
		return err
	}
	pc, err := net.ListenUDP("udp", &net.UDPAddr{Port: cfg.AdminPort})
	if err != nil {
		return fmt.Errorf("admin port %d: %w", cfg.AdminPort, err)
	}
	metrics := NewMetrics()
	n, err := NewNode(cfg, Deps{Device: dev, Host: host, Conn: pc, Identity: id, Bindings: bindings,
		Metrics: metrics, Logger: log, WgPublic: wgPub})
	if err != nil {
		pc.Close()
		return err
	}
	log.Info("mesh node up", "name", cfg.Name, "wg_ip", cfg.WgIP, "interface", cfg.Interface,
		"wg_port", cfg.WgPort, "admin_port", cfg.AdminPort, "public_key", n.self.WgKey,
		"identity", idString(n.self.Identity), "local_addrs", n.self.LocalAddrs)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		if err := n.ServeControl(ctx); err != nil {
			log.Error("control socket", "err", err)
		}
	}()
	if cfg.MetricsListen != "" {
		ml, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			pc.Close()
			return fmt.Errorf("metrics listen %s: %w", cfg.MetricsListen, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{}))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { <-ctx.Done(); _ = srv.Close() }()
		go func() {
			if err := srv.Serve(ml); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics server", "err", err)
			}
		}()
	}
	return n.Run(ctx)
}
