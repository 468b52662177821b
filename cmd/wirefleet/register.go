package main

import (
	"context"
	"io"
	"log/slog"
	"time"

	devreg "github.com/wirefleet/wirefleet/internal/register"
)

func init() {
	register(command{
		name:    "register",
		summary: "device side of zero-touch registration (autowg-client): register this device's WireGuard key with its certificate",
		run:     runRegister,
	})
}

func runRegister(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("register", "[--url URL] [--cert FILE --key FILE] [--interface NAME] [--ca FILE] [--foreground]", stderr)
	conf := fs.String("conf", devreg.DefaultConfFile, "upstream's client configuration `file` (ifname, api_endpoint), read for absent flags")
	url := fs.String("url", envDefault("AUTOWG_URL", ""), "registration server base `URL` (v1/register is appended) [AUTOWG_URL]")
	cert := fs.String("cert", envDefault("AUTOWG_CERT", devreg.DefaultCert), "device TLS client certificate `file` [AUTOWG_CERT]")
	key := fs.String("key", envDefault("AUTOWG_KEY", devreg.DefaultKey), "device TLS client key `file` [AUTOWG_KEY]")
	ca := fs.String("ca", envDefault("AUTOWG_CA", ""), "CA `file` of the server certificate; empty: the system store [AUTOWG_CA]")
	iface := fs.String("interface", envDefault("AUTOWG_INTERFACE", ""), "WireGuard interface `name` (default autowg) [AUTOWG_INTERFACE]")
	backend := fs.String("backend", envDefault("AUTOWG_BACKEND", ""), "WireGuard backend: kernel (one-shot default); auto or userspace need --foreground [AUTOWG_BACKEND]")
	fg := fs.Bool("foreground", false, "keep running, own the device and re-register when the handshake is stale (needed for userspace)")
	interval := fs.Duration("interval", time.Minute, "check `period` in --foreground mode")
	force := fs.Bool("force", false, "register even when the tunnel had a handshake within 135 s")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("register takes no arguments, got %q", fs.Args())
	}
	ifname, endpoint, err := devreg.ReadConfFile(*conf)
	if err != nil {
		return usageError("read %s: %v", *conf, err)
	}
	cfg := devreg.Config{URL: *url, Cert: *cert, Key: *key, CA: *ca, Interface: *iface, Backend: *backend,
		Foreground: *fg, Interval: *interval, Force: *force, Logger: slog.New(slog.NewTextHandler(stderr, nil))}
	if cfg.URL == "" {
		cfg.URL = endpoint
	}
	if cfg.Interface == "" {
		cfg.Interface = ifname
	}
	if cfg.Interface == "" {
		cfg.Interface = devreg.DefaultInterface
	}
	if err := cfg.Validate(); err != nil {
		return usageError("%v", err)
	}
	return devreg.Run(ctx, cfg)
}
