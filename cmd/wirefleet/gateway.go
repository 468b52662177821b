package main

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"

	"github.com/wirefleet/wirefleet/internal/gateway"
)

func init() {
	register(command{
		name:    "gateway",
		summary: "run a gateway: WireGuard node agent with the eduVPN vpn-daemon API",
		run:     runGateway,
	})
}

func runGateway(ctx context.Context, args []string, _, stderr io.Writer) error {
	def := gateway.Default()
	fs := newFlagSet("gateway", "[flags]", stderr)
	listen := fs.String("listen", envDefault("LISTEN", def.Listen), "host:port of the vpn-daemon API [LISTEN]")
	device := fs.String("wg-device", envDefault("WG_DEVICE", def.Device.Name), "WireGuard interface name [WG_DEVICE]")
	backend := fs.String("wg-backend", def.Device.Backend, "WireGuard backend: "+strings.Join(gateway.Backends, ", ")+"\n(auto: kernel when it can create a wireguard link, else userspace)")
	port := fs.Int("wg-port", def.Device.ListenPort, "WireGuard UDP listen port")
	var addrs stringList
	fs.Var(&addrs, "wg-address", "`CIDR` address for the interface when the gateway creates it (repeatable)")
	var managed stringList
	fs.Var(&managed, "wg-managed-prefix", "with -wg-backend attach: manage only peers whose allowed IPs lie in this `CIDR`\n(repeatable; default: every peer, as vpn-daemon)")
	stateDir := fs.String("state-dir", def.StateDir, "directory for the device's private key (created 0700)")
	maint := fs.String("maintenance-file", def.MaintenanceFile, "/i/node reports maintenance_mode while this file exists")
	ovpnDir := fs.String("openvpn-socket-dir", def.OpenVPNSocketDir, "directory of the OpenVPN management sockets (*.sock); managed mode reports their clients\nwith the statistics (\"\" turns that off)")
	mgd := addManagedGatewayFlags(fs) // -control URL -token T -network NAME… (managed.go)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("gateway takes no arguments, got %q", fs.Args())
	}
	if mgd.managed() {
		mgd.openVPNSocketDir = *ovpnDir
		return mgd.run(ctx, *backend, *device, *stateDir, *listen, stderr)
	}
	cfg := def
	cfg.Listen = *listen
	cfg.Device.Name = *device
	cfg.Device.Backend = *backend
	cfg.Device.ListenPort = *port
	for _, a := range addrs {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return usageError("-wg-address %q: want a CIDR such as 198.51.100.1/24 or 2001:db8::1/64", a)
		}
		cfg.Device.Addresses = append(cfg.Device.Addresses, p)
	}
	for _, m := range managed {
		p, err := netip.ParsePrefix(m)
		if err != nil {
			return usageError("-wg-managed-prefix %q: want a CIDR such as 198.51.100.0/24", m)
		}
		cfg.Device.ManagedPrefixes = append(cfg.Device.ManagedPrefixes, p)
	}
	cfg.StateDir = *stateDir
	cfg.MaintenanceFile = *maint
	cfg.OpenVPNSocketDir = *ovpnDir
	cfg.CredentialsDir = os.Getenv("CREDENTIALS_DIRECTORY")
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	if err := cfg.Validate(); err != nil {
		return usageError("%v", err)
	}
	return gateway.Run(ctx, cfg)
}
