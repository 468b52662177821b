package autowg

// Registration on the control plane (`wirefleet server -register-listen`): the same endpoint
// as autowg mode, for any number of networks, each with its own settings, read from a
// YAML file. No local device: the answer's key and port are the network's, and the
// network's gateways apply the registered peers like any other (replication).

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	compat "github.com/wirefleet/wirefleet/internal/compat/autowg"
	"github.com/wirefleet/wirefleet/internal/control"
)

// RegistrationFile is the -register-config file:
//
//	tls_cert: /etc/wirefleet/register.crt   # HTTPS for direct mTLS (optional)
//	tls_key: /etc/wirefleet/register.key
//	client_ca: [/etc/wirefleet/device-ca.pem]   # global device CAs
//	crl: /etc/wirefleet/device-ca.crl           # optional
//	sites:
//	  - network: devices
//	    prefix: /vpn/
//	    pool: fde3:25fb:7f6c:1::/64
//	    route: fde3:25fb:7f6c::/48
//	    endpoint: vpn.example.com
//	    cn_pattern: '([0-9a-zA-Z]+)'
//	    converter: direct-bcd          # direct-bcd | metans | sequential
//	    metans_template: ''
//	    client_ca: []                  # this network's CAs (default: the global ones)
//	    http_auth_env: DEVICES_HTTP_AUTH   # env var holding user:pass for peers.json
type RegistrationFile struct {
	TLSCert  string     `yaml:"tls_cert"`
	TLSKey   string     `yaml:"tls_key"`
	ClientCA []string   `yaml:"client_ca"`
	CRL      string     `yaml:"crl"`
	Sites    []SiteFile `yaml:"sites"`
}

// SiteFile is one network's registration settings.
type SiteFile struct {
	Network        string   `yaml:"network"`
	Prefix         string   `yaml:"prefix"`
	Pool           string   `yaml:"pool"`
	Route          string   `yaml:"route"`
	Endpoint       string   `yaml:"endpoint"`
	CNPattern      string   `yaml:"cn_pattern"`
	Converter      string   `yaml:"converter"`
	MetansTemplate string   `yaml:"metans_template"`
	ClientCA       []string `yaml:"client_ca"`
	HTTPAuthEnv    string   `yaml:"http_auth_env"`
}

// RegistrationConfig configures the control plane's registration listener.
type RegistrationConfig struct {
	Listen string
	// TrustedProxies may send X-Client-Subject; nothing is trusted by default.
	TrustedProxies []netip.Prefix
	// File is the path of the RegistrationFile.
	File   string
	Logger *slog.Logger
	// Ready, when set, receives the listener's address once serving (tests).
	Ready func(net.Addr)
}

// LoadRegistrationFile reads and decodes the settings (unknown keys are errors).
func LoadRegistrationFile(path string) (RegistrationFile, error) {
	var f RegistrationFile
	b, err := os.ReadFile(path)
	if err != nil {
		return f, fmt.Errorf("read -register-config: %w", err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return f, fmt.Errorf("-register-config %s: %w", path, err)
	}
	if len(f.Sites) == 0 {
		return f, fmt.Errorf("-register-config %s has no sites: add one per network that accepts registrations", path)
	}
	return f, nil
}

// handlerFor checks the file against the stored networks and builds the handler.
func handlerFor(ctx context.Context, svc *control.Service, cfg RegistrationConfig, f RegistrationFile, log *slog.Logger) (*compat.Handler, error) {
	var global []*x509.Certificate
	for _, p := range f.ClientCA {
		cs, err := readCerts(p)
		if err != nil {
			return nil, fmt.Errorf("-register-config client_ca: %w", err)
		}
		global = append(global, cs...)
	}
	if len(f.ClientCA) > 0 && f.TLSCert == "" {
		return nil, errors.New("-register-config: client_ca needs tls_cert and tls_key (direct mTLS happens on a TLS listener)")
	}
	hc := compat.Config{Service: svc, ClientCAs: global, CRLFile: f.CRL, TrustedProxies: cfg.TrustedProxies, Logger: log}
	for i, s := range f.Sites {
		where := fmt.Sprintf("-register-config site #%d (network %q)", i+1, s.Network)
		pool, err := netip.ParsePrefix(strings.TrimSpace(s.Pool))
		if err != nil {
			return nil, fmt.Errorf("%s: pool %q is not an IPv6 prefix", where, s.Pool)
		}
		route, err := netip.ParsePrefix(strings.TrimSpace(s.Route))
		if err != nil {
			return nil, fmt.Errorf("%s: route %q is not an IPv6 prefix", where, s.Route)
		}
		n, err := svc.GetNetwork(ctx, s.Network)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		// IPAM reserves addresses within the lowest 64 bits of the network's IPv6 prefix.
		if !n.IPv6.IsValid() || n.IPv6.Bits() > pool.Bits() || !n.IPv6.Contains(pool.Addr()) || n.IPv6.Bits() < 64 {
			return nil, fmt.Errorf("%s: pool %s must lie inside the network's IPv6 prefix (%v), which must be a /64 or longer", where, pool, n.IPv6)
		}
		var cas []*x509.Certificate
		for _, p := range s.ClientCA {
			cs, err := readCerts(p)
			if err != nil {
				return nil, fmt.Errorf("%s: client_ca: %w", where, err)
			}
			cas = append(cas, cs...)
		}
		auth := ""
		if s.HTTPAuthEnv != "" {
			auth = os.Getenv(s.HTTPAuthEnv)
		}
		hc.Sites = append(hc.Sites, compat.SiteConfig{Prefix: s.Prefix, Network: s.Network, Pool: pool, Route: route,
			Endpoint: s.Endpoint, CNPattern: s.CNPattern, Converter: s.Converter, Template: s.MetansTemplate, ClientCAs: cas, HTTPAuth: auth})
	}
	h, err := compat.New(hc)
	if err != nil {
		return nil, fmt.Errorf("-register-config: %w", err)
	}
	return h, nil
}

// ServeRegistration serves the registration endpoint of the control plane until ctx ends.
// Configuration errors are returned before anything is served.
func ServeRegistration(ctx context.Context, svc *control.Service, cfg RegistrationConfig) error {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	f, err := LoadRegistrationFile(cfg.File)
	if err != nil {
		return err
	}
	h, err := handlerFor(ctx, svc, cfg, f, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s (-register-listen): %w", cfg.Listen, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 16 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	if f.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(f.TLSCert, f.TLSKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("-register-config tls_cert/tls_key: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	log.Info("registration listening", "addr", ln.Addr().String(), "sites", len(f.Sites), "tls", f.TLSCert != "", "trusted_proxies", fmt.Sprint(cfg.TrustedProxies))
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-errc
		return nil
	case err := <-errc:
		return fmt.Errorf("serve registrations: %w", err)
	}
}
