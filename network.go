package wirefleet

import (
	"net/netip"
	"regexp"
	"strings"
	"time"
)

// AllocationMode selects how IPAM picks addresses for peers without static addresses.
type AllocationMode string

// The allocation modes. Later modes (direct-bcd, metans) are added here and in internal/ipam.
const (
	AllocSequential AllocationMode = "sequential" // first free address after the network's own
	AllocRandom     AllocationMode = "random"     // a random free address (harder to guess)
)

// Defaults applied when a network is created without them.
const (
	DefaultListenPort = 51820
	DefaultMTU        = 1420
	DefaultKeepalive  = 25 // seconds, pushed to clients (NAT keepalive)
)

// Network is one WireGuard network (one interface on every gateway serving it).
//
// The private key is in PrivateKey, a SecretKey: it never appears in JSON (`json:"-"`), in
// fmt output or in logs. The API shows only PublicKey. The op log carries the private key in
// NetworkValue.PrivateKey, a field the replication layer must redact by role.
type Network struct {
	// Name is the identifier (and the default interface name on gateways): 1–15 characters,
	// lower-case letters, digits, '-' and '_', starting with a letter or digit.
	Name       string `json:"name"`
	ListenPort uint16 `json:"listen_port"`
	// IPv4 and IPv6 are the network's own host address with the prefix length, as wg-quick
	// writes them: 198.51.100.1/24, 2001:db8:1::1/64. At least one is set.
	IPv4 netip.Prefix `json:"ipv4,omitzero"`
	IPv6 netip.Prefix `json:"ipv6,omitzero"`
	// Endpoint is the host name or IP address clients dial (the port is ListenPort).
	Endpoint string `json:"endpoint,omitempty"`
	// Routes are the AllowedIPs pushed to clients; empty means the network prefixes.
	Routes []netip.Prefix `json:"routes,omitempty"`
	// DNS servers pushed to clients.
	DNS []netip.Addr `json:"dns,omitempty"`
	// MTU of the interface and of clients; 0 is replaced by DefaultMTU on create.
	MTU int `json:"mtu"`
	// Keepalive is the PersistentKeepalive (seconds) pushed to clients; 0 disables it.
	Keepalive  int            `json:"persistent_keepalive"`
	Allocation AllocationMode `json:"allocation"`
	PublicKey  Key            `json:"public_key"`
	PrivateKey SecretKey      `json:"-"`
	CreatedAt  time.Time      `json:"created_at"`
	UpdatedAt  time.Time      `json:"updated_at"`
}

// Prefixes returns the network's prefixes (host bits cleared), IPv4 first.
func (n Network) Prefixes() []netip.Prefix {
	var ps []netip.Prefix
	if n.IPv4.IsValid() {
		ps = append(ps, n.IPv4.Masked())
	}
	if n.IPv6.IsValid() {
		ps = append(ps, n.IPv6.Masked())
	}
	return ps
}

// ClientRoutes returns Routes, or the network prefixes when no routes are configured.
func (n Network) ClientRoutes() []netip.Prefix {
	if len(n.Routes) > 0 {
		return n.Routes
	}
	return n.Prefixes()
}

// Contains reports whether a lies in one of the network's prefixes.
func (n Network) Contains(a netip.Addr) bool {
	return (n.IPv4.IsValid() && n.IPv4.Contains(a)) || (n.IPv6.IsValid() && n.IPv6.Contains(a))
}

var networkNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,14}$`)

// ValidateNetworkName checks a network name (outside input: URL paths, CLI, import files).
func ValidateNetworkName(name string) error {
	if !networkNameRE.MatchString(name) {
		return Errorf(KindInvalid, "network name %q is invalid: use 1-15 lower-case letters, digits, '-' or '_', starting with a letter or digit", name)
	}
	return nil
}

// ParseHostPrefix parses an interface address with its prefix length ("198.51.100.1/24").
// The host bits are kept: they are the network's own address. field names the input in
// errors.
func ParseHostPrefix(field, s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		return netip.Prefix{}, Errorf(KindInvalid, "%s %q is not an address with a prefix length like 198.51.100.1/24 or 2001:db8::1/64", field, s)
	}
	if p.Addr().Zone() != "" || p.Addr().Is4In6() {
		return netip.Prefix{}, Errorf(KindInvalid, "%s %q must be a plain IPv4 or IPv6 address without zone", field, s)
	}
	return p, nil
}

// ParsePrefix parses a route prefix ("0.0.0.0/0", "2001:db8::/32"); host bits must be zero.
func ParsePrefix(field, s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		return netip.Prefix{}, Errorf(KindInvalid, "%s %q is not a prefix like 198.51.100.0/24", field, s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, Errorf(KindInvalid, "%s %q has host bits set; did you mean %s?", field, s, p.Masked())
	}
	return p, nil
}

// ParseAddr parses a single IP address; field names the input in errors.
func ParseAddr(field, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, Errorf(KindInvalid, "%s %q is not an IP address", field, s)
	}
	return a.Unmap(), nil
}

var hostnameRE = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$`)

// ValidateEndpointHost checks the host clients dial: a DNS name or an IP address, no port.
func ValidateEndpointHost(h string) error {
	if h == "" {
		return nil
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return nil
	}
	if len(h) > 253 || !hostnameRE.MatchString(h) {
		return Errorf(KindInvalid, "endpoint %q is not a host name or IP address (give the host only; the port is listen_port)", h)
	}
	return nil
}

// Validate checks a network as it will be stored. Errors name the field and the bad value.
func (n Network) Validate() error {
	if err := ValidateNetworkName(n.Name); err != nil {
		return err
	}
	if n.ListenPort == 0 {
		return Errorf(KindInvalid, "listen_port 0 is invalid: use 1-65535")
	}
	if !n.IPv4.IsValid() && !n.IPv6.IsValid() {
		return Errorf(KindInvalid, "network %q needs an ipv4 or ipv6 address (like 198.51.100.1/24)", n.Name)
	}
	if n.IPv4.IsValid() {
		a := n.IPv4.Addr()
		if !a.Is4() {
			return Errorf(KindInvalid, "ipv4 %q is not an IPv4 address", n.IPv4)
		}
		if n.IPv4.Bits() > 30 {
			return Errorf(KindInvalid, "ipv4 %q: prefix /%d leaves no room for peers; use /30 or shorter", n.IPv4, n.IPv4.Bits())
		}
		if a == n.IPv4.Masked().Addr() || a == lastAddr(n.IPv4) {
			return Errorf(KindInvalid, "ipv4 %q: the network's own address must not be the network or broadcast address", n.IPv4)
		}
	}
	if n.IPv6.IsValid() {
		a := n.IPv6.Addr()
		if !a.Is6() {
			return Errorf(KindInvalid, "ipv6 %q is not an IPv6 address", n.IPv6)
		}
		if n.IPv6.Bits() > 126 {
			return Errorf(KindInvalid, "ipv6 %q: prefix /%d leaves no room for peers; use /126 or shorter", n.IPv6, n.IPv6.Bits())
		}
		if a == n.IPv6.Masked().Addr() {
			return Errorf(KindInvalid, "ipv6 %q: the network's own address must not be the subnet-router address", n.IPv6)
		}
	}
	if err := ValidateEndpointHost(n.Endpoint); err != nil {
		return err
	}
	for _, r := range n.Routes {
		if !r.IsValid() || r.Masked() != r {
			return Errorf(KindInvalid, "routes: %q is not a prefix with host bits cleared", r)
		}
	}
	for _, d := range n.DNS {
		if !d.IsValid() {
			return Errorf(KindInvalid, "dns: invalid address %q", d)
		}
	}
	if n.MTU < 1280 || n.MTU > 9000 {
		return Errorf(KindInvalid, "mtu %d is out of range: use 1280-9000", n.MTU)
	}
	if n.Keepalive < 0 || n.Keepalive > 65535 {
		return Errorf(KindInvalid, "persistent_keepalive %d is out of range: use 0-65535 seconds", n.Keepalive)
	}
	switch n.Allocation {
	case AllocSequential, AllocRandom:
	default:
		return Errorf(KindInvalid, "allocation %q is invalid: use sequential or random", n.Allocation)
	}
	if n.PublicKey.IsZero() {
		return Errorf(KindInvalid, "network %q has no public key", n.Name)
	}
	if n.PrivateKey.IsSet() && n.PrivateKey.Reveal().PublicKey() != n.PublicKey {
		return Errorf(KindInvalid, "network %q: public key does not match the private key", n.Name)
	}
	return nil
}

// lastAddr returns the highest address of p (the IPv4 broadcast address).
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	host := len(b)*8 - p.Bits()
	for i := len(b) - 1; i >= 0 && host > 0; i-- {
		n := min(host, 8)
		b[i] |= byte(1<<n - 1)
		host -= n
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
