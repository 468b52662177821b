package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"github.com/wirefleet/wirefleet/internal/testenv"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/compat/vpndaemon"
	"github.com/wirefleet/wirefleet/internal/wgdev"
	"github.com/wirefleet/wirefleet/internal/wgdev/wgdevtest"
)

// closeCounter is the in-memory device, counting Close calls.
type closeCounter struct {
	*wgdevtest.Memory
	closed atomic.Int32
}

func (c *closeCounter) Close() error { c.closed.Add(1); return nil }

// startGateway runs Run over an in-memory device on a free loopback port and returns the
// base URL, the device and a stop function that cancels Run and returns its error.
func startGateway(t *testing.T, mod func(*Config)) (string, *closeCounter, func() error) {
	t.Helper()
	dev := &closeCounter{Memory: wgdevtest.NewMemory("wgtest")}
	cfg := Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.StateDir = filepath.Join(t.TempDir(), "state")
	cfg.MaintenanceFile = filepath.Join(t.TempDir(), "maintenance")
	cfg.OpenVPNSocketDir = filepath.Join(t.TempDir(), "openvpn-server") // none running
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	var gotKey *wirefleet.Key
	cfg.OpenDevice = func(ctx context.Context, dc DeviceConfig, key *wirefleet.Key, _ *slog.Logger) (wgdev.Device, error) {
		gotKey = key
		if key != nil {
			if err := dev.Configure(ctx, wgdev.Interface{PrivateKey: key}); err != nil {
				return nil, err
			}
		}
		return dev, nil
	}
	addrc := make(chan net.Addr, 1)
	cfg.Ready = func(a net.Addr) { addrc <- a }
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, cfg) }()
	var addr net.Addr
	select {
	case addr = <-addrc:
	case err := <-errc:
		cancel()
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("gateway did not start listening")
	}
	if cfg.Device.Backend != "attach" && gotKey == nil {
		t.Error("device opened without the state directory's key")
	}
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-errc:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after cancel")
			return nil
		}
	}
	t.Cleanup(func() { _ = stop() })
	return addr.String(), dev, stop
}

func TestRunServesAndShutsDown(t *testing.T) {
	addr, dev, stop := startGateway(t, nil)
	base := "http://" + addr
	resp, err := http.Get(base + "//i/node")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"node_uptime":`) {
		t.Fatalf("/i/node: %d %s", resp.StatusCode, body)
	}
	priv, _ := wirefleet.GeneratePrivateKey()
	form := url.Values{"public_key": {priv.PublicKey().String()}, "ip_net": {"198.51.100.2/32"}}
	resp, err = http.PostForm(base+"/w/add_peer", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("add_peer: %d", resp.StatusCode)
	}
	if !dev.HasAddr(mustPrefix("198.51.100.2/32")) {
		t.Error("add_peer did not reach the device")
	}
	if err := stop(); err != nil {
		t.Fatalf("Run returned %v after cancel, want nil", err)
	}
	if n := dev.closed.Load(); n != 1 {
		t.Errorf("device closed %d times, want 1", n)
	}
	if _, err := http.Get(base + "/i/node"); err == nil {
		t.Error("API still answers after shutdown")
	}
}

func TestRunKeepsKeyAcrossRestarts(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	var pubs []wirefleet.Key
	for range 2 {
		_, dev, stop := startGateway(t, func(c *Config) { c.StateDir = state })
		info, _ := dev.Info(context.Background())
		pubs = append(pubs, info.PublicKey)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
	if pubs[0].IsZero() || pubs[0] != pubs[1] {
		t.Errorf("public keys across a restart: %v, want the same non-zero key", pubs)
	}
}

func TestMutualTLS(t *testing.T) {
	ca, other := testenv.NewCA(t, "portal CA"), testenv.NewCA(t, "someone else")
	creds := ca.WriteCredentials(t, net.ParseIP("127.0.0.1"))
	addr, _, _ := startGateway(t, func(c *Config) { c.CredentialsDir = creds })
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.PEM)
	now := time.Now()
	valid := ca.Issue(t, testenv.Leaf{CN: "portal", NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}).TLS

	tests := []struct {
		name   string
		certs  []tls.Certificate
		maxVer uint16
		h2     bool
		ok     bool
	}{
		{"valid", []tls.Certificate{valid}, 0, false, true},
		{"valid over HTTP/2", []tls.Certificate{valid}, 0, true, true},
		{"no EKU required (server-auth only)", []tls.Certificate{ca.Issue(t, testenv.Leaf{CN: "", NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}).TLS}, 0, false, true},
		{"no EKU at all", []tls.Certificate{ca.Issue(t, testenv.Leaf{CN: "x", NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), EKU: nil}).TLS}, 0, false, true},
		{"no client certificate", nil, 0, false, false},
		{"other CA", []tls.Certificate{other.Issue(t, testenv.Leaf{CN: "portal", NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), EKU: nil}).TLS}, 0, false, false},
		{"expired", []tls.Certificate{ca.Issue(t, testenv.Leaf{CN: "portal", NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour), EKU: nil}).TLS}, 0, false, false},
		{"not yet valid", []tls.Certificate{ca.Issue(t, testenv.Leaf{CN: "portal", NotBefore: now.Add(time.Hour), NotAfter: now.Add(48 * time.Hour), EKU: nil}).TLS}, 0, false, false},
		{"TLS 1.2", []tls.Certificate{valid}, tls.VersionTLS12, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := &http.Transport{
				TLSClientConfig:   &tls.Config{RootCAs: roots, Certificates: tc.certs, MaxVersion: tc.maxVer},
				ForceAttemptHTTP2: tc.h2,
			}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			resp, err := client.Get("https://" + addr + "/i/node")
			if !tc.ok {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("request succeeded with status %d, want the TLS handshake refused", resp.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d, want 200", resp.StatusCode)
			}
			if want := map[bool]int{true: 2, false: 1}[tc.h2]; resp.ProtoMajor != want {
				t.Errorf("protocol %s, want HTTP/%d", resp.Proto, want)
			}
		})
	}
	// Plain HTTP to the TLS port is refused too.
	if resp, err := http.Get("http://" + addr + "/i/node"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP answered 200 on the TLS port")
		}
	}
}

func TestRunRefusesBadCredentials(t *testing.T) {
	cfg := Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.StateDir = t.TempDir()
	cfg.CredentialsDir = t.TempDir()
	cfg.OpenDevice = func(context.Context, DeviceConfig, *wirefleet.Key, *slog.Logger) (wgdev.Device, error) {
		t.Fatal("device opened despite missing credentials")
		return nil, nil
	}
	err := Run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "ca.crt") {
		t.Errorf("Run with an empty credentials directory: %v, want an error naming ca.crt", err)
	}
}

// hungOpenVPN never answers within its context (a stuck management socket).
type hungOpenVPN struct{}

func (hungOpenVPN) Connections(ctx context.Context) ([]vpndaemon.OpenVPNConnection, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (hungOpenVPN) Disconnect(ctx context.Context, _ string) error { <-ctx.Done(); return ctx.Err() }

// TestShutdownLetsRequestsFinish: SIGTERM (ctx cancel) during a request that takes the
// OpenVPN budget still answers it, then Run returns.
func TestShutdownLetsRequestsFinish(t *testing.T) {
	addr, _, stop := startGateway(t, func(c *Config) { c.OpenVPN = hungOpenVPN{} })
	type result struct {
		status int
		body   string
		err    error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/o/connection_list")
		if err != nil {
			res <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{status: resp.StatusCode, body: string(b)}
	}()
	time.Sleep(300 * time.Millisecond) // the request is in the handler, waiting for OpenVPN
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	r := <-res
	if r.err != nil || r.status != 200 || strings.TrimSpace(r.body) != `{"connection_list":[]}` {
		t.Errorf("in-flight request at shutdown: %d %q %v, want 200 with an empty list", r.status, r.body, r.err)
	}
}
