package register

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/wgdev"
	"github.com/wirefleet/wirefleet/internal/wgdev/auto"
)

// Client posts registrations with the device certificate.
type Client struct {
	url  string
	http *http.Client
}

// NewClient loads the certificate and CA and returns a client with the 3 s timeout.
func NewClient(c Config) (*Client, error) {
	cert, err := tls.LoadX509KeyPair(c.Cert, c.Key)
	if err != nil {
		return nil, fmt.Errorf("load the device certificate (--cert %s, --key %s): %w", c.Cert, c.Key, err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.CA != "" {
		b, err := os.ReadFile(c.CA)
		if err != nil {
			return nil, fmt.Errorf("read --ca: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--ca %s holds no PEM certificate", c.CA)
		}
	}
	tr := &http.Transport{TLSClientConfig: tc, Proxy: http.ProxyFromEnvironment, DisableKeepAlives: true}
	return &Client{url: c.RegisterURL(), http: &http.Client{Transport: tr, Timeout: Timeout}}, nil
}

// maxAnswer bounds the answer read from the server.
const maxAnswer = 4096

// Register posts pub and returns the validated answer. Any status but 200, or an answer
// that does not validate, is an error carrying the server's one-line message.
func (c *Client) Register(ctx context.Context, pub wirefleet.Key) (Answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, strings.NewReader(pub.String()+"\n"))
	if err != nil {
		return Answer{}, fmt.Errorf("build the request: %w", err)
	}
	req.Header.Set("Content-Type", "text/plain")
	res, err := c.http.Do(req)
	if err != nil {
		return Answer{}, fmt.Errorf("register at %s: %w", c.url, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxAnswer+1))
	if err != nil {
		return Answer{}, fmt.Errorf("read the answer of %s: %w", c.url, err)
	}
	if len(body) > maxAnswer {
		return Answer{}, fmt.Errorf("the answer of %s is larger than %d bytes", c.url, maxAnswer)
	}
	if res.StatusCode != http.StatusOK {
		return Answer{}, fmt.Errorf("register at %s: %s: %s", c.url, res.Status, trunc(strings.TrimSpace(string(body))))
	}
	a, err := ParseAnswer(string(body))
	if err != nil {
		return Answer{}, fmt.Errorf("invalid answer from %s: %w", c.url, err)
	}
	return a, nil
}

// Run performs one registration (one-shot) or keeps the device registered (foreground).
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	cl, err := NewClient(cfg)
	if err != nil {
		return err
	}
	if !cfg.Foreground {
		return oneShot(ctx, cfg, cl, log)
	}
	return foreground(ctx, cfg, cl, log)
}

// oneShot: kernel device, which outlives the process.
func oneShot(ctx context.Context, cfg Config, cl *Client, log *slog.Logger) error {
	if !cfg.Force {
		if fresh, err := kernelHandshakeFresh(cfg.Interface); err == nil && fresh {
			log.Info("tunnel is up (handshake within 135 s): nothing to do", "interface", cfg.Interface)
			return nil
		}
	}
	priv, err := wirefleet.GeneratePrivateKey()
	if err != nil {
		return err
	}
	ans, err := cl.Register(ctx, priv.PublicKey())
	if err != nil {
		return err // the interface is untouched
	}
	dev, err := auto.Open(ctx, auto.Config{Backend: "kernel", Name: cfg.Interface, PrivateKey: priv, MTU: MTU, Logger: log})
	if err != nil {
		return fmt.Errorf("open WireGuard interface %s: %w", cfg.Interface, err)
	}
	defer dev.Close()
	return apply(ctx, dev, priv, ans, log)
}

// foreground owns the device for the life of the process.
func foreground(ctx context.Context, cfg Config, cl *Client, log *slog.Logger) error {
	priv, err := wirefleet.GeneratePrivateKey()
	if err != nil {
		return err
	}
	// Register first: nothing is created when the server refuses.
	ans, err := cl.Register(ctx, priv.PublicKey())
	if err != nil {
		return err
	}
	backend := cfg.Backend
	if backend == "" {
		backend = "auto"
	}
	dev, err := auto.Open(ctx, auto.Config{Backend: backend, Name: cfg.Interface, PrivateKey: priv, MTU: MTU, Logger: log})
	if err != nil {
		return fmt.Errorf("open WireGuard interface %s: %w", cfg.Interface, err)
	}
	defer dev.Close()
	if err := apply(ctx, dev, priv, ans, log); err != nil {
		return err
	}
	every := cfg.Interval
	if every == 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if fresh, err := handshakeFresh(ctx, dev); err != nil {
			log.Error("read the device", "err", err)
			continue
		} else if fresh {
			continue
		}
		log.Info("no handshake within 135 s: registering again with a fresh key", "interface", cfg.Interface)
		next, err := wirefleet.GeneratePrivateKey()
		if err != nil {
			return err
		}
		rctx, cancel := context.WithTimeout(ctx, 2*Timeout)
		ans, err := cl.Register(rctx, next.PublicKey())
		cancel()
		if err != nil {
			log.Error("registration failed; the tunnel is left as it was", "err", err)
			continue
		}
		if err := apply(ctx, dev, next, ans, log); err != nil {
			log.Error("applying the registration failed", "err", err)
		}
	}
}

func handshakeFresh(ctx context.Context, dev wgdev.Device) (bool, error) {
	ps, err := dev.Peers(ctx)
	if err != nil {
		return false, err
	}
	for _, p := range ps {
		if !p.LastHandshake.IsZero() && time.Since(p.LastHandshake) < HandshakeWindow {
			return true, nil
		}
	}
	return false, nil
}

// kernelHandshakeFresh looks at an existing interface without creating it.
func kernelHandshakeFresh(name string) (bool, error) {
	if _, err := netlink.LinkByName(name); err != nil {
		return false, err
	}
	dev, err := auto.Open(context.Background(), auto.Config{Backend: "kernel", Name: name})
	if err != nil {
		return false, err
	}
	defer dev.Close()
	return handshakeFresh(context.Background(), dev)
}

// apply configures the device for ans: key, address /128, MTU, exactly one peer, route.
func apply(ctx context.Context, dev wgdev.Device, priv wirefleet.Key, ans Answer, log *slog.Logger) error {
	ep, err := resolve(ctx, ans.Host, ans.Port)
	if err != nil {
		return err
	}
	addr := netip.PrefixFrom(ans.IP, 128)
	if err := dev.Configure(ctx, wgdev.Interface{PrivateKey: &priv, Addresses: []netip.Prefix{addr}, MTU: MTU}); err != nil {
		return fmt.Errorf("configure the interface: %w", err)
	}
	old, err := dev.Peers(ctx)
	if err != nil {
		return fmt.Errorf("read the peers: %w", err)
	}
	var remove []wirefleet.Key
	for _, p := range old {
		if p.PublicKey != ans.PublicKey {
			remove = append(remove, p.PublicKey)
		}
	}
	peer := wgdev.Peer{PublicKey: ans.PublicKey, Endpoint: ep, AllowedIPs: []netip.Prefix{ans.Route}, PersistentKeepalive: ans.Keepalive}
	if err := dev.ApplyPeers(ctx, []wgdev.Peer{peer}, remove); err != nil {
		return fmt.Errorf("set the server peer: %w", err)
	}
	info, err := dev.Info(ctx)
	if err != nil {
		return fmt.Errorf("read the interface: %w", err)
	}
	if err := setRoute(info.Name, ans.Route); err != nil {
		return err
	}
	log.Info("registered", "interface", info.Name, "backend", info.Backend, "ip", ans.IP.String(), "route", ans.Route.String(),
		"endpoint", ep.String(), "server_public_key", ans.PublicKey, "public_key", priv.PublicKey())
	return nil
}

func resolve(ctx context.Context, host string, port uint16) (netip.AddrPort, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return netip.AddrPortFrom(a.Unmap(), port), nil
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(rctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return netip.AddrPort{}, fmt.Errorf("resolve the endpoint %s: %w", host, errors.Join(err, errors.New("no address")))
	}
	return netip.AddrPortFrom(addrs[0].Unmap(), port), nil
}

// setRoute routes the pushed prefix through the interface and removes the other IPv6
// routes we (or upstream's client) added there before, as upstream's `ip -6 route flush`
// does; the kernel's own routes are kept.
func setRoute(name string, route netip.Prefix) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find interface %s for the route: %w", name, err)
	}
	dst := &net.IPNet{IP: route.Addr().AsSlice(), Mask: net.CIDRMask(route.Bits(), 128)}
	if err := netlink.RouteReplace(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: dst, Scope: netlink.SCOPE_LINK}); err != nil {
		return fmt.Errorf("route %s via %s: %w", route, name, err)
	}
	rs, err := netlink.RouteList(l, netlink.FAMILY_V6)
	if err != nil {
		return fmt.Errorf("list the routes of %s: %w", name, err)
	}
	for _, r := range rs {
		if r.Dst == nil || r.Protocol == unix.RTPROT_KERNEL || r.Dst.String() == dst.String() {
			continue
		}
		if err := netlink.RouteDel(&r); err != nil {
			return fmt.Errorf("remove the old route %s via %s: %w", r.Dst, name, err)
		}
	}
	return nil
}
