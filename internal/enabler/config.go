// Package enabler is the composition root of `wirefleet enabler`: the ASSIST-IoT VPN
// enabler replacement as one process, like upstream's container. It opens the control
// plane's SQLite store in the data directory, creates or updates the one network described
// by the enabler's environment variables (so that existing Helm values map 1:1), opens
// the WireGuard device, restores every enabled client on it, and serves the enabler API
// (internal/compat/enabler) with a local gateway that keeps the device in step with the
// store.
package enabler

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/wgdev/auto"
)

// Config is the enabler's configuration. The upper-case names are upstream's environment
// variables; cmd/wirefleet maps them (and the flags) onto these fields.
type Config struct {
	DataDir    string // -data: directory of the SQLite store
	ListenHost string // -listen-host: "" = every interface, as upstream
	APIPort    string // API_PORT
	ServerIP   string // SERVER_IP: required, echoed verbatim to clients
	Subnet     string // WG_SUBNET: the interface address with its mask
	WGPort     string // WG_PORT
	PrivateKey string // WG_PRIVATE_KEY: "" = generated on first start and kept in the store
	AllowedIPs string // PEER_ALLOWED_IPS: echoed verbatim to clients
	Device     string // -wg-device
	Backend    string // -wg-backend
	// Network is the Wirefleet network name ("" = the device name).
	Network string
	// APITokens turn bearer-token auth on (off by default, as upstream has none). When on,
	// the control plane's admin/operator tokens scoped to the network are accepted too.
	APITokens []string
	// RESTListen, when set, also serves the Wirefleet REST API (/api/v1) on this host:port,
	// on the same store: the enabler's clients are ordinary peers there. On the first start
	// with it (no token in the store yet) an admin token is created and printed once.
	RESTListen string
	// MetricsListen, when set, serves /metrics, /healthz and /readyz on this host:port
	// (also served with the REST API on RESTListen). Never on API_PORT: the enabler's
	// contract answers 404 for any path it does not define.
	MetricsListen string
	// StatsInterval is the period of the device read that feeds sessions (default 30 s).
	StatsInterval time.Duration
	// Stdout receives the one-time admin token.
	Stdout io.Writer
	// IgnoredEnv lists upstream variables that were set but mean nothing here (MongoDB,
	// LTSE): logged once so that an operator knows.
	IgnoredEnv []string
	Logger     *slog.Logger
}

// Defaults are upstream's (config/index.js), except SERVER_IP, which has none: upstream's
// LAN default silently breaks every client.
const (
	DefaultDataDir    = "/var/lib/wirefleet"
	DefaultAPIPort    = "3000"
	DefaultSubnet     = "192.168.2.1/24"
	DefaultWGPort     = "51820"
	DefaultAllowedIPs = "0.0.0.0/0,::/0"
	DefaultDevice     = "wg0"
	DefaultBackend    = "auto"
	// Keepalive is what upstream gives every peer (persistent-keepalive 25).
	Keepalive = 25
)

// Default returns the defaults.
func Default() Config {
	return Config{DataDir: DefaultDataDir, APIPort: DefaultAPIPort, Subnet: DefaultSubnet, WGPort: DefaultWGPort,
		AllowedIPs: DefaultAllowedIPs, Device: DefaultDevice, Backend: DefaultBackend}
}

// settings is the validated, parsed form of Config.
type settings struct {
	listen     string
	subnet     netip.Prefix
	wgPort     uint16
	privateKey *wirefleet.Key
	routes     []netip.Prefix // PEER_ALLOWED_IPS when it parses as prefixes, else nil
	network    string
}

// Validate checks the configuration; errors name the variable and the bad value.
func (c Config) Validate() error {
	_, err := c.parse()
	return err
}

func (c Config) parse() (settings, error) {
	var s settings
	if c.DataDir == "" {
		return s, fmt.Errorf("-data is empty: give the directory of the store (default %s)", DefaultDataDir)
	}
	if strings.TrimSpace(c.ServerIP) == "" {
		return s, fmt.Errorf("SERVER_IP is not set: set it to the public IP address or DNS name clients connect to (it is echoed in every client configuration)")
	}
	apiPort, err := strconv.ParseUint(c.APIPort, 10, 16)
	if err != nil {
		return s, fmt.Errorf("API_PORT %q is not a TCP port: use 0-65535 (default %s)", c.APIPort, DefaultAPIPort)
	}
	s.listen = net.JoinHostPort(c.ListenHost, strconv.FormatUint(apiPort, 10))
	if c.StatsInterval < 0 {
		return s, fmt.Errorf("-stats-interval %s is negative: give a period such as 30s (0: the default, %s)", c.StatsInterval, DefaultStatsInterval)
	}
	wgPort, err := strconv.ParseUint(c.WGPort, 10, 16)
	if err != nil || wgPort == 0 {
		return s, fmt.Errorf("WG_PORT %q is not a UDP port: use 1-65535 (default %s)", c.WGPort, DefaultWGPort)
	}
	s.wgPort = uint16(wgPort)
	if s.subnet, err = ParseSubnet(c.Subnet); err != nil {
		return s, err
	}
	if c.PrivateKey != "" {
		k, err := wirefleet.ParseKey(c.PrivateKey)
		if err != nil {
			return s, fmt.Errorf("WG_PRIVATE_KEY is not a WireGuard private key (44 characters of base64, as printed by wg genkey): %v", keyReason(err))
		}
		s.privateKey = &k
	}
	for _, part := range strings.Split(c.AllowedIPs, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(part))
		if err != nil {
			s.routes = nil // echoed verbatim anyway; only the REST API's client configs lose it
			break
		}
		s.routes = append(s.routes, p.Masked())
	}
	if c.Device == "" || len(c.Device) > 15 {
		return s, fmt.Errorf("-wg-device %q: an interface name is 1 to 15 bytes", c.Device)
	}
	s.network = c.Network
	if s.network == "" {
		s.network = c.Device
	}
	if err := wirefleet.ValidateNetworkName(s.network); err != nil {
		return s, fmt.Errorf("network name (from -network or -wg-device): %w", err)
	}
	if c.Backend == "attach" {
		return s, fmt.Errorf("-wg-backend attach is not supported by the enabler: it owns its interface; use auto, kernel or userspace")
	}
	if err := (auto.Config{Backend: c.Backend, Name: c.Device}).Validate(); err != nil {
		return s, fmt.Errorf("-wg-backend: %w", err)
	}
	if c.RESTListen != "" {
		if _, _, err := net.SplitHostPort(c.RESTListen); err != nil {
			return s, fmt.Errorf("-rest-listen %q is not host:port (like 127.0.0.1:8080): %v", c.RESTListen, err)
		}
	}
	for _, t := range c.APITokens {
		if len(t) < 16 {
			return s, fmt.Errorf("an API token is %d characters long: use at least 16 random characters", len(t))
		}
	}
	return s, nil
}

// keyReason drops the echoed value from a key parse error: WG_PRIVATE_KEY is a secret.
func keyReason(err error) string {
	msg := err.Error()
	for _, r := range []string{"has leading or trailing whitespace", "is not valid base64", "decodes to", "is empty"} {
		if i := strings.Index(msg, r); i >= 0 {
			return "it " + msg[i:]
		}
	}
	return "it is malformed"
}

// ParseSubnet parses WG_SUBNET: an IPv4 interface address with its mask, neither the
// network nor the broadcast address, with room for clients (/30 or larger).
func ParseSubnet(v string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(v))
	hint := "use the interface address with its mask, like 192.0.2.1/24 (the first host of the subnet)"
	switch {
	case err != nil:
		return p, fmt.Errorf("WG_SUBNET %q is not an address with a mask: %s", v, hint)
	case !p.Addr().Is4():
		return p, fmt.Errorf("WG_SUBNET %q is not IPv4: the enabler's clients get IPv4 addresses; %s", v, hint)
	case p.Bits() > 30:
		return p, fmt.Errorf("WG_SUBNET %q leaves no address for clients (/%d): use /30 or shorter; %s", v, p.Bits(), hint)
	case p.Addr() == p.Masked().Addr():
		return p, fmt.Errorf("WG_SUBNET %q is the network address, not an interface address: %s", v, hint)
	}
	if p.Addr() == broadcast(p) {
		return p, fmt.Errorf("WG_SUBNET %q is the broadcast address, not an interface address: %s", v, hint)
	}
	return p, nil
}

func broadcast(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
