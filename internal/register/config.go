// Package register is the device side of zero-touch registration (`wirefleet register`,
// the autowg-client equivalent, specs/autowg.md): when the tunnel has had no handshake for
// 135 s it generates a fresh WireGuard key, registers it with the device's TLS client
// certificate, validates the answer, and only then configures the interface (key, MTU
// 1280, address /128, the one peer, the route). Any transport, HTTP or parse error fails
// loudly and leaves the interface as it was (upstream's client flushes its peers first).
//
// Two ways to run, because a userspace device lives only as long as its process:
//   - one-shot (default): kernel WireGuard; the interface survives the process, so a
//     systemd timer or cron job runs `wirefleet register` every minute;
//   - --foreground: the process owns the device (kernel or embedded userspace wireguard-go)
//     and re-checks every --interval, registering again when the handshake is stale. The
//     first registration must succeed (non-zero exit otherwise); later failures are logged
//     and retried with the tunnel left as it was.
package register

import (
	"bufio"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"
)

// Upstream's drop-in defaults.
const (
	DefaultConfFile  = "/etc/autowg.conf"
	DefaultCert      = "/factory/device.crt"
	DefaultKey       = "/factory/device.key"
	DefaultInterface = "autowg"
	// HandshakeWindow: a handshake this recent means the tunnel works.
	HandshakeWindow = 135 * time.Second
	// Timeout of the registration request (upstream's curl -m 3).
	Timeout = 3 * time.Second
	// MTU of the device's interface.
	MTU = 1280
)

// Config configures a registration run.
type Config struct {
	URL       string // base URL (…/ or …/v1/register)
	Cert, Key string // TLS client certificate and key (PEM)
	CA        string // PEM CA bundle for the server; "" = the system store
	Interface string
	Backend   string // one-shot: kernel; --foreground: auto, kernel or userspace
	// Foreground keeps the process running and owning the device.
	Foreground bool
	// Interval between checks in foreground mode (default 60 s).
	Interval time.Duration
	// Force registers even when the handshake is recent.
	Force  bool
	Logger *slog.Logger
}

// Validate checks the configuration; errors name the flag.
func (c Config) Validate() error {
	if c.URL == "" {
		return fmt.Errorf("--url is missing (or api_endpoint in %s): the registration server's base URL", DefaultConfFile)
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("--url %q is not an http(s) URL like https://vpn.example.com/vpn/", c.URL)
	}
	if c.Cert == "" || c.Key == "" {
		return fmt.Errorf("--cert and --key are needed: the device's TLS client certificate identifies it")
	}
	if c.Interface == "" || len(c.Interface) > 15 {
		return fmt.Errorf("--interface %q must be 1-15 characters", c.Interface)
	}
	switch c.Backend {
	case "", "kernel":
	case "auto", "userspace":
		if !c.Foreground {
			return fmt.Errorf("--backend %s needs --foreground: a userspace device lives only as long as its process (one-shot runs use kernel WireGuard)", c.Backend)
		}
	default:
		return fmt.Errorf("--backend %q is invalid: use kernel, or auto/userspace with --foreground", c.Backend)
	}
	if c.Interval < 0 {
		return fmt.Errorf("--interval %v is negative", c.Interval)
	}
	return nil
}

// RegisterURL returns the URL to POST to: the base URL with v1/register appended, unless
// it already ends with it.
func (c Config) RegisterURL() string {
	u := c.URL
	if strings.HasSuffix(strings.TrimSuffix(u, "/"), "/v1/register") {
		return strings.TrimSuffix(u, "/")
	}
	if !strings.HasSuffix(u, "/") {
		u += "/"
	}
	return u + "v1/register"
}

// ReadConfFile reads upstream's /etc/autowg.conf: shell-style key=value lines (quotes
// optional, # comments); it returns ifname and api_endpoint. A missing file is not an error.
func ReadConfFile(path string) (ifname, endpoint string, err error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return "", "", nil
	}
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		switch strings.TrimSpace(k) {
		case "ifname":
			ifname = v
		case "api_endpoint":
			endpoint = v
		}
	}
	return ifname, endpoint, sc.Err()
}
