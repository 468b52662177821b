// Package gateway is the composition root of `wirefleet gateway`: it opens the WireGuard
// device (kernel, userspace or attached, through wgdev/auto), keeps the device's private key
// in the state directory, and serves the eduVPN vpn-daemon API (internal/compat/vpndaemon)
// over HTTP, or HTTPS with required client certificates when CREDENTIALS_DIRECTORY is set.
//
// Standalone mode (Config, Run) makes the vpn-daemon API the source of truth, as eduVPN's
// daemon is: the portal adds and removes peers and re-syncs them every few minutes.
// Managed mode (Managed, RunManaged in managed.go) follows a control plane instead.
package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/compat/vpndaemon"
	"github.com/wirefleet/wirefleet/internal/wgdev"
)

// Defaults of the flags; the vpn-daemon ones are vpn-daemon's.
const (
	DefaultListen           = "127.0.0.1:41194"
	DefaultDevice           = "wg0"
	DefaultBackend          = "auto"
	DefaultWGPort           = 51820
	DefaultStateDir         = "/var/lib/wirefleet/gateway"
	DefaultMaintenanceFile  = "/run/vpn-daemon/maintenance-mode"
	DefaultOpenVPNSocketDir = "/run/openvpn-server"
)

// Backends are the accepted values of DeviceConfig.Backend.
var Backends = []string{"auto", "kernel", "userspace", "attach"}

// Config is everything `wirefleet gateway` needs. The zero value is not valid; start from
// Default().
type Config struct {
	// Listen is the host:port of the vpn-daemon API.
	Listen string
	Device DeviceConfig
	// StateDir keeps what must survive a restart: the device's private key (private.key,
	// mode 0600, in a 0700 directory), created on first start.
	StateDir string
	// MaintenanceFile makes /i/node report maintenance_mode while it exists.
	MaintenanceFile string
	// OpenVPNSocketDir is where OpenVPN server processes put their management sockets
	// (*.sock); the directory is listed anew on every request, so processes may come and
	// go. A missing directory means no OpenVPN process.
	OpenVPNSocketDir string
	// CredentialsDir, when set (env CREDENTIALS_DIRECTORY), turns on TLS: ca.crt,
	// server.crt (with intermediates appended) and server.key are read from it and every
	// client must present a certificate signed by ca.crt.
	CredentialsDir string
	Logger         *slog.Logger // nil: slog.Default()

	// Hooks for tests and other composition roots; nil means the production default.
	OpenDevice func(ctx context.Context, dc DeviceConfig, key *wirefleet.Key, log *slog.Logger) (wgdev.Device, error)
	OpenVPN    vpndaemon.OpenVPN // nil: the management sockets in OpenVPNSocketDir
	// Ready is called with the listening address once the API accepts connections.
	Ready func(addr net.Addr)
}

// DeviceConfig describes the WireGuard interface.
type DeviceConfig struct {
	Name    string // interface name, 1 to 15 bytes
	Backend string // auto, kernel, userspace or attach
	// ListenPort is the UDP port when the gateway creates or owns the device.
	ListenPort int
	// Addresses are given to the interface when the gateway creates it; attach leaves the
	// interface's own addresses alone and refuses them.
	Addresses []netip.Prefix
	MTU       int // 0: the backend's default
	// ManagedPrefixes limit an attached gateway to the peers whose allowed IPs lie inside
	// them (peers of a shared interface that are not the portal's stay untouched). Empty
	// with attach: every peer, as vpn-daemon. Devices the gateway creates are all its own.
	ManagedPrefixes []netip.Prefix
}

// Default returns the configuration of `wirefleet gateway` without flags.
func Default() Config {
	return Config{
		Listen:           DefaultListen,
		Device:           DeviceConfig{Name: DefaultDevice, Backend: DefaultBackend, ListenPort: DefaultWGPort},
		StateDir:         DefaultStateDir,
		MaintenanceFile:  DefaultMaintenanceFile,
		OpenVPNSocketDir: DefaultOpenVPNSocketDir,
	}
}

// Validate checks the configuration; each error names the setting (as its flag) and the
// bad value.
func (c Config) Validate() error {
	if err := validateListen(c.Listen); err != nil {
		return err
	}
	d := c.Device
	if d.Name == "" || len(d.Name) > 15 || strings.ContainsAny(d.Name, "/ \t\n:%") || d.Name == "." || d.Name == ".." {
		return fmt.Errorf("-wg-device %q: want an interface name of 1 to 15 bytes without '/', ':', '%%' or spaces", d.Name)
	}
	if !contains(Backends, d.Backend) {
		return fmt.Errorf("-wg-backend %q: want one of %s", d.Backend, strings.Join(Backends, ", "))
	}
	if d.ListenPort < 0 || d.ListenPort > 65535 {
		return fmt.Errorf("-wg-port %d: want a UDP port from 0 to 65535", d.ListenPort)
	}
	for _, a := range d.Addresses {
		if !a.IsValid() {
			return fmt.Errorf("-wg-address %v: not a valid CIDR", a)
		}
	}
	for _, p := range d.ManagedPrefixes {
		if !p.IsValid() || p.Masked() != p {
			return fmt.Errorf("-wg-managed-prefix %v: want a network prefix without host bits, such as 198.51.100.0/24", p)
		}
	}
	if d.Backend == "attach" && len(d.Addresses) > 0 {
		return fmt.Errorf("-wg-address %v: not used with -wg-backend attach, which leaves the interface's addresses alone; drop it", d.Addresses[0])
	}
	if d.MTU != 0 && (d.MTU < 576 || d.MTU > 65535) {
		return fmt.Errorf("MTU %d: want 576 to 65535, or 0 for the default", d.MTU)
	}
	if c.StateDir == "" {
		return fmt.Errorf("-state-dir %q: a directory is needed to keep the device's private key", c.StateDir)
	}
	return nil
}

func validateListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-listen %q: want host:port such as 127.0.0.1:41194: %v", addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("-listen %q: port %q is not a number from 0 to 65535", addr, port)
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil && strings.ContainsAny(host, " /") {
			return fmt.Errorf("-listen %q: host %q is neither an IP address nor a host name", addr, host)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
