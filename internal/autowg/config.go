// Package autowg is the composition root of `wirefleet autowg`: a drop-in for the autowg
// server (specs/autowg.md). It attaches to an existing WireGuard interface (wg-quick's),
// keeps the registrations of one network in the control plane's SQLite store (a temporary
// one unless -data is given, so that, like upstream, nothing survives a restart), removes
// the pool's stale peers at start, serves the registration endpoint
// (internal/compat/autowg) and keeps the interface in step with the store with a local
// gateway that only ever touches peers inside the pool.
package autowg

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/compat/autowg"
	"github.com/wirefleet/wirefleet/internal/ipam"
)

// Config is the command line of `wirefleet autowg` (upstream's, plus TLS and proxy trust).
type Config struct {
	Interface      string
	Pool           string // --pool
	Route          string // --route
	Endpoint       string // --endpoint
	HTTPHost       string // --http-host ("" = every address, as upstream)
	HTTPPort       int    // --http-port (3000)
	HTTPPrefix     string // --http-prefix ("/")
	CNPattern      string // --cn-pattern
	Converter      string // --converter (direct-bcd)
	MetansTemplate string // --metans-template

	// TrustedProxies may send X-Client-Subject (CIDRs); loopback is added unless
	// NoTrustLoopback.
	TrustedProxies  []string
	NoTrustLoopback bool

	// TLSCert/TLSKey serve HTTPS with direct mTLS against ClientCAFiles (optional CRLFile).
	TLSCert, TLSKey string
	ClientCAFiles   []string
	CRLFile         string

	// HTTPAuth ("user:pass", env HTTP_AUTH) enables GET v1/peers.json.
	HTTPAuth string
	// DataDir keeps the registrations across restarts; "" uses a temporary store.
	DataDir string
	// Network is the Wirefleet network name ("" = derived from the interface name).
	Network string
	// RESTListen, when set, also serves the Wirefleet REST API (/api/v1) on this
	// host:port, on the same store (registered devices are peers named after their CN).
	RESTListen string
	Logger     *slog.Logger
	// Ready, when set, receives the listener's address once serving (tests).
	Ready func(addr net.Addr)
	// Stdout is for the one line announcing the listener.
	Stdout io.Writer
}

// Default returns upstream's defaults.
func Default() Config {
	return Config{HTTPPort: 3000, HTTPPrefix: "/", CNPattern: autowg.DefaultPattern, Converter: ipam.ConvDirectBCD}
}

// settings is a checked Config.
type settings struct {
	pool, route netip.Prefix
	proxies     []netip.Prefix
	cas         []*x509.Certificate
	listen      string
	network     string
}

// Validate checks the configuration; errors name the flag and the value.
func (c Config) Validate() error {
	_, err := c.parse()
	return err
}

func (c Config) parse() (settings, error) {
	var s settings
	if c.Interface == "" {
		return s, fmt.Errorf("the WireGuard interface to manage is missing (wirefleet autowg [flags] INTERFACE)")
	}
	var err error
	if s.pool, err = netip.ParsePrefix(strings.TrimSpace(c.Pool)); err != nil {
		return s, fmt.Errorf("--pool %q is not an IPv6 prefix like fde3:25fb:7f6c:1::/64", c.Pool)
	}
	if err := ipam.ValidatePool(s.pool); err != nil {
		return s, fmt.Errorf("--pool: %w", err)
	}
	if s.route, err = netip.ParsePrefix(strings.TrimSpace(c.Route)); err != nil || !s.route.Addr().Is6() || s.route.Addr().Is4In6() {
		return s, fmt.Errorf("--route %q is not one IPv6 prefix like fde3:25fb:7f6c::/48", c.Route)
	}
	if s.route.Masked() != s.route {
		return s, fmt.Errorf("--route %q has host bits set; did you mean %s?", c.Route, s.route.Masked())
	}
	if c.Endpoint == "" {
		return s, fmt.Errorf("--endpoint is missing: the host devices dial (the port is the interface's)")
	}
	if err := wirefleet.ValidateEndpointHost(c.Endpoint); err != nil {
		return s, fmt.Errorf("--endpoint: %w", err)
	}
	if _, err := autowg.CompilePattern(c.CNPattern); err != nil {
		return s, fmt.Errorf("--cn-pattern: %w", err)
	}
	if _, err := ipam.NewConverter(c.Converter, s.pool, c.MetansTemplate); err != nil {
		return s, fmt.Errorf("--converter %s: %w", c.Converter, err)
	}
	if c.HTTPPort < 0 || c.HTTPPort > 65535 {
		return s, fmt.Errorf("--http-port %d is out of range: use 1-65535 (0 picks a free port)", c.HTTPPort)
	}
	s.listen = net.JoinHostPort(c.HTTPHost, strconv.Itoa(c.HTTPPort))
	if !c.NoTrustLoopback {
		s.proxies = append(s.proxies, netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"))
	}
	for _, p := range c.TrustedProxies {
		pp, err := netip.ParsePrefix(strings.TrimSpace(p))
		if err != nil {
			a, aerr := netip.ParseAddr(strings.TrimSpace(p))
			if aerr != nil {
				return s, fmt.Errorf("--trusted-proxy %q is not an address or CIDR", p)
			}
			pp = netip.PrefixFrom(a, a.BitLen())
		}
		s.proxies = append(s.proxies, pp.Masked())
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return s, fmt.Errorf("--tls-cert and --tls-key go together")
	}
	if len(c.ClientCAFiles) > 0 && c.TLSCert == "" {
		return s, fmt.Errorf("--client-ca needs --tls-cert/--tls-key: direct mTLS is only possible on a TLS listener (behind a reverse proxy, use --trusted-proxy instead)")
	}
	if c.CRLFile != "" && len(c.ClientCAFiles) == 0 {
		return s, fmt.Errorf("--crl needs --client-ca (the CA that signs it)")
	}
	for _, f := range c.ClientCAFiles {
		cas, err := readCerts(f)
		if err != nil {
			return s, fmt.Errorf("--client-ca: %w", err)
		}
		s.cas = append(s.cas, cas...)
	}
	s.network = c.Network
	if s.network == "" {
		s.network = strings.ToLower(c.Interface)
		if wirefleet.ValidateNetworkName(s.network) != nil {
			s.network = "autowg"
		}
	}
	if err := wirefleet.ValidateNetworkName(s.network); err != nil {
		return s, fmt.Errorf("--network: %w", err)
	}
	return s, nil
}

// readCerts reads every PEM certificate of a file.
func readCerts(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return out, nil
}
