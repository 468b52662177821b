// Package mesh is Wirefleet's self-organising mesh node (wg_netmanager mode): nodes that
// share one network file exchange WireGuard keys and routes over an encrypted UDP admin
// channel, use the LAN when two nodes share one, punch through NATs, and relay through a
// gateway node when nothing else works. No server is needed.
//
// Safer than the reference: every node has a persistent Ed25519 identity that signs its
// WireGuard key and wg IP; a wg IP is bound to the first identity that claims it (trust on
// first use), so holding the shared key is not enough to hijack another node's address.
package mesh

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// NetworkFile is wg_netmanager's network.yaml, read unchanged.
type NetworkFile struct {
	Network struct {
		SharedKey string `yaml:"sharedKey"`
		Subnet    string `yaml:"subnet"`
	} `yaml:"network"`
	Peers []struct {
		EndPoint  string `yaml:"endPoint"`
		AdminPort int    `yaml:"adminPort"`
		WgIP      string `yaml:"wgIp"`
	} `yaml:"peers"`
}

// PeerFile is wg_netmanager's peer.yaml, read unchanged.
type PeerFile struct {
	Name              string `yaml:"name"`
	WgIP              string `yaml:"wgIp"`
	WgInterface       string `yaml:"wgInterface"`
	ExistingInterface bool   `yaml:"existingInterface"`
}

// StaticPeer is a node with a fixed public endpoint from network.yaml.
type StaticPeer struct {
	EndPoint  string // host:port of its WireGuard port; the host may be a DNS name
	AdminPort int
	WgIP      netip.Addr
}

// Config is everything a node needs. Load fills it from the files and the overrides;
// Validate checks it.
type Config struct {
	SharedKey []byte
	Subnet    netip.Prefix
	Static    []StaticPeer

	Name      string
	WgIP      netip.Addr
	Interface string
	Existing  bool // attach to an existing WireGuard interface
	Backend   string
	WgPort    int
	AdminPort int
	StateDir  string
	// MetricsListen, when set, serves Prometheus metrics on this address.
	MetricsListen string

	// Timers. Zero means the default; see docs/mesh.md for how they bound dead-peer
	// detection.
	HelloInterval time.Duration
	DeadAfter     time.Duration
}

// Defaults of the timers.
const (
	DefaultHelloInterval = 5 * time.Second
	DefaultDeadAfter     = 15 * time.Second
	DefaultStateDir      = "/var/lib/wirefleet/mesh"
	DefaultInterface     = "wfmesh0"
)

// Overrides are the command-line values; empty/zero ones leave the file's values.
type Overrides struct {
	Interface string
	WgIP      string
	Name      string
	Existing  bool
	WgPort    int
	AdminPort int
}

// Load reads network.yaml (and peer.yaml when peerPath is set), applies the overrides and
// the reference's defaults, and validates the result. Errors are one line naming the file
// or field and what to do.
func Load(networkPath, peerPath string, o Overrides) (Config, error) {
	var c Config
	var nf NetworkFile
	if err := readYAML(networkPath, &nf); err != nil {
		return c, err
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(nf.Network.SharedKey))
	if err != nil || len(key) != 32 {
		return c, fmt.Errorf("%s: network.sharedKey must be 32 bytes in base64 (make one with 'wg genkey')", networkPath)
	}
	c.SharedKey = key
	sub, err := netip.ParsePrefix(strings.TrimSpace(nf.Network.Subnet))
	if err != nil {
		return c, fmt.Errorf("%s: network.subnet %q is not a prefix like 198.51.100.0/24", networkPath, nf.Network.Subnet)
	}
	c.Subnet = sub.Masked()
	for i, p := range nf.Peers {
		ip, err := netip.ParseAddr(strings.TrimSpace(p.WgIP))
		if err != nil {
			return c, fmt.Errorf("%s: peers[%d].wgIp %q is not an IP address", networkPath, i, p.WgIP)
		}
		if _, _, err := net.SplitHostPort(p.EndPoint); err != nil {
			return c, fmt.Errorf("%s: peers[%d].endPoint %q is not host:port", networkPath, i, p.EndPoint)
		}
		if p.AdminPort <= 0 || p.AdminPort > 65535 {
			return c, fmt.Errorf("%s: peers[%d].adminPort %d is not a port", networkPath, i, p.AdminPort)
		}
		c.Static = append(c.Static, StaticPeer{EndPoint: p.EndPoint, AdminPort: p.AdminPort, WgIP: ip})
	}
	var pf PeerFile
	if peerPath != "" {
		if err := readYAML(peerPath, &pf); err != nil {
			return c, err
		}
	}
	c.Name, c.Interface, c.Existing = pf.Name, pf.WgInterface, pf.ExistingInterface
	wgip := pf.WgIP
	if o.WgIP != "" {
		wgip = o.WgIP
	}
	if o.Name != "" {
		c.Name = o.Name
	}
	if o.Interface != "" {
		c.Interface = o.Interface
	}
	c.Existing = c.Existing || o.Existing
	if wgip == "" {
		return c, fmt.Errorf("no wg IP: give -a WGIP or wgIp in peer.yaml")
	}
	if c.WgIP, err = netip.ParseAddr(wgip); err != nil {
		return c, fmt.Errorf("wg IP %q is not an IP address", wgip)
	}
	if c.Interface == "" {
		c.Interface = DefaultInterface
	}
	if c.Name == "" {
		c.Name, _ = os.Hostname()
	}
	c.WgPort, c.AdminPort = DefaultPorts(c.WgIP)
	for _, s := range c.Static {
		if s.WgIP == c.WgIP {
			_, port, _ := net.SplitHostPort(s.EndPoint)
			if p, err := strconv.Atoi(port); err == nil {
				c.WgPort = p
			}
			c.AdminPort = s.AdminPort
		}
	}
	if o.WgPort != 0 {
		c.WgPort = o.WgPort
	}
	if o.AdminPort != 0 {
		c.AdminPort = o.AdminPort
	}
	return c, c.Validate()
}

// DefaultPorts are the reference's: WireGuard 50000 + last octet, admin 50500 + last octet.
func DefaultPorts(ip netip.Addr) (wg, admin int) {
	b := ip.AsSlice()
	last := int(b[len(b)-1])
	return 50000 + last, 50500 + last
}

// Validate checks the config; errors name the field and the bad value.
func (c *Config) Validate() error {
	if len(c.SharedKey) != 32 {
		return fmt.Errorf("shared key must be 32 bytes")
	}
	if !c.Subnet.IsValid() {
		return fmt.Errorf("no subnet")
	}
	if !c.Subnet.Contains(c.WgIP) {
		return fmt.Errorf("wg IP %s is outside the network's subnet %s: pick an address inside it", c.WgIP, c.Subnet)
	}
	if c.WgIP == c.Subnet.Addr() {
		return fmt.Errorf("wg IP %s is the subnet's network address", c.WgIP)
	}
	for _, s := range c.Static {
		if !c.Subnet.Contains(s.WgIP) {
			return fmt.Errorf("static peer wgIp %s is outside the subnet %s", s.WgIP, c.Subnet)
		}
	}
	if len(c.Interface) > 15 {
		return fmt.Errorf("interface name %q is longer than 15 characters", c.Interface)
	}
	if c.WgPort <= 0 || c.WgPort > 65535 || c.AdminPort <= 0 || c.AdminPort > 65535 {
		return fmt.Errorf("ports out of range: WireGuard %d, admin %d", c.WgPort, c.AdminPort)
	}
	if c.WgPort == c.AdminPort {
		return fmt.Errorf("WireGuard and admin ports are both %d", c.WgPort)
	}
	return nil
}

func (c *Config) hello() time.Duration {
	if c.HelloInterval > 0 {
		return c.HelloInterval
	}
	return DefaultHelloInterval
}

func (c *Config) dead() time.Duration {
	if c.DeadAfter > 0 {
		return c.DeadAfter
	}
	return DefaultDeadAfter
}

func readYAML(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", path, err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s is not valid YAML: %w", path, err)
	}
	return nil
}
