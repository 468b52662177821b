package main

// Flags of managed mode (`wirefleet gateway -control …`) and of the all-in-one server
// (`wirefleet server` without -no-gateway), declared here so that gateway.go and server.go
// only gain one line each to declare them and one to use them.

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/gateway"
	"github.com/wirefleet/wirefleet/internal/server"
)

type managedGatewayFlags struct {
	fs                 *flag.FlagSet
	control, token, ca *string
	name               *string
	networks           stringList
	drift, stats       *time.Duration
	// openVPNSocketDir is gateway.go's -openvpn-socket-dir, shared with standalone mode.
	openVPNSocketDir string
}

func addManagedGatewayFlags(fs *flag.FlagSet) *managedGatewayFlags {
	m := &managedGatewayFlags{fs: fs}
	m.control = fs.String("control", envDefault("WIREFLEET_CONTROL", ""), "managed mode: follow the control plane at this `URL` (the vpn-daemon API is then not served;\n-listen serves /metrics, /healthz and /readyz) [WIREFLEET_CONTROL]")
	m.token = fs.String("token", envDefault("WIREFLEET_TOKEN", ""), "managed mode: bearer token with the gateway role [WIREFLEET_TOKEN]")
	m.ca = fs.String("control-ca", envDefault("WIREFLEET_CONTROL_CA", ""), "managed mode: PEM `file` of CAs trusted for an https -control [WIREFLEET_CONTROL_CA]")
	fs.Var(&m.networks, "network", "managed mode: serve this network (repeatable; default: every network the token may see)")
	m.drift = fs.Duration("drift-interval", gateway.DefaultDriftInterval, "managed mode: period of the drift check")
	m.stats = fs.Duration("stats-interval", gateway.DefaultStatsInterval, "managed mode: period of the statistics push")
	m.name = fs.String("name", "", "managed mode: this gateway's name in statistics (default: the host name)")
	return m
}

// managed reports whether managed mode was asked for.
func (m *managedGatewayFlags) managed() bool { return *m.control != "" }

// run runs the managed gateway with the device flags shared with standalone mode.
func (m *managedGatewayFlags) run(ctx context.Context, backend, device, stateDir, listen string, stderr io.Writer) error {
	var refused error
	m.fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "wg-port", "wg-address", "wg-managed-prefix":
			// The network on the control plane decides these (and the managed prefixes
			// are the network's prefixes).
			refused = usageError("-%s is not used with -control: the network's settings on the control plane apply (port, addresses, prefixes)", f.Name)
		}
	})
	if refused != nil {
		return refused
	}
	listenSet := false
	m.fs.Visit(func(f *flag.Flag) { listenSet = listenSet || f.Name == "listen" })
	if !listenSet {
		listen = gateway.DefaultManagedListen
	}
	deviceSet := false
	m.fs.Visit(func(f *flag.Flag) { deviceSet = deviceSet || f.Name == "wg-device" })
	if !deviceSet {
		device = "" // interfaces are named after their networks
	}
	cfg := gateway.Managed{
		ControlURL: *m.control, Token: *m.token, ControlCA: *m.ca, Networks: m.networks,
		Backend: backend, DeviceName: device, StateDir: stateDir, Listen: listen,
		DriftInterval: *m.drift, StatsInterval: *m.stats, Name: *m.name,
		OpenVPNSocketDir: m.openVPNSocketDir,
		Logger:           slog.New(slog.NewTextHandler(stderr, nil)),
	}
	if err := cfg.Validate(); err != nil {
		return usageError("%v", err)
	}
	return gateway.RunManaged(ctx, cfg)
}

type allInOneFlags struct {
	name, ipv4, ipv6, endpoint, backend, gwListen, ovpnDir, events, webhook *string
	port                                                                    *uint
	drift, stats, inactivity                                                *time.Duration
	endpoints                                                               *bool
	keepOps                                                                 *uint64
	keepAge                                                                 *time.Duration
}

func addAllInOneFlags(fs *flag.FlagSet) *allInOneFlags {
	return &allInOneFlags{
		name:       fs.String("default-network", envDefault("WIREFLEET_DEFAULT_NETWORK", "default"), "first run: the name of the network created [WIREFLEET_DEFAULT_NETWORK]"),
		ipv4:       fs.String("default-ipv4", envDefault("WIREFLEET_DEFAULT_IPV4", ""), "first run: the default network's IPv4 address/prefix (default: a random 100.64.x.1/24)\n[WIREFLEET_DEFAULT_IPV4]"),
		ipv6:       fs.String("default-ipv6", envDefault("WIREFLEET_DEFAULT_IPV6", ""), "first run: the default network's IPv6 address/prefix (default: a random ULA fdxx::1/64)\n[WIREFLEET_DEFAULT_IPV6]"),
		port:       fs.Uint("default-port", wirefleet.DefaultListenPort, "first run: the default network's UDP port"),
		endpoint:   fs.String("default-endpoint", envDefault("WIREFLEET_ENDPOINT", ""), "first run: the host name clients dial (default: this host's primary address,\nlogged with the reason) [WIREFLEET_ENDPOINT]"),
		backend:    fs.String("wg-backend", "auto", "local gateway's WireGuard backend: auto, kernel, userspace"),
		ovpnDir:    fs.String("openvpn-socket-dir", gateway.DefaultOpenVPNSocketDir, "local gateway: report the clients of the OpenVPN servers whose management sockets are in this `directory` as sessions (\"\": off)"),
		gwListen:   fs.String("gateway-listen", "", "serve the local gateway's /metrics on this host:port (default: not served)"),
		drift:      fs.Duration("drift-interval", gateway.DefaultDriftInterval, "local gateway: period of the drift check"),
		stats:      fs.Duration("stats-interval", gateway.DefaultStatsInterval, "local gateway: period of the statistics push"),
		inactivity: fs.Duration("session-inactivity", 600*time.Second, "close a session after this long without a handshake"),
		endpoints:  fs.Bool("session-endpoints", false, "store peers' endpoint IPs in sessions (personal data: off by default)"),
		events:     fs.String("session-events-file", "", "append session connect/disconnect events as JSON lines to this `file`"),
		webhook:    fs.String("session-webhook", "", "POST session events (application/x-ndjson) to this `URL`"),
		keepOps:    fs.Uint64("log-keep-ops", 0, "compact the operation log beyond this many ops (0: no limit by count)"),
		keepAge:    fs.Duration("log-keep-age", 0, "compact operation log entries older than this (0: no limit by age)"),
	}
}

func (a *allInOneFlags) config() (server.AllInOne, error) {
	c := server.AllInOne{
		DefaultNetwork: *a.name, DefaultPort: uint16(*a.port), DefaultEndpoint: *a.endpoint, GatewayBackend: *a.backend,
		GatewayListen: *a.gwListen, GatewayOpenVPNSocketDir: *a.ovpnDir, DriftInterval: *a.drift, StatsInterval: *a.stats,
		SessionInactivity: *a.inactivity, SessionEndpoints: *a.endpoints,
		SessionEventsFile: *a.events, SessionWebhook: *a.webhook,
		LogKeepOps: *a.keepOps, LogKeepAge: *a.keepAge,
	}
	if err := wirefleet.ValidateNetworkName(*a.name); err != nil {
		return c, usageError("-default-network: %v", err)
	}
	var err error
	if *a.ipv4 != "" {
		if c.DefaultIPv4, err = wirefleet.ParseHostPrefix("-default-ipv4", *a.ipv4); err != nil {
			return c, usageError("%v", err)
		}
	}
	if *a.ipv6 != "" {
		if c.DefaultIPv6, err = wirefleet.ParseHostPrefix("-default-ipv6", *a.ipv6); err != nil {
			return c, usageError("%v", err)
		}
	}
	if *a.port == 0 || *a.port > 65535 {
		return c, usageError("-default-port %d: want 1-65535", *a.port)
	}
	return c, nil
}
