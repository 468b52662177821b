package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/control"
	"github.com/wirefleet/wirefleet/internal/testenv"
)

// TestRunServesRegistration: -register-listen serves autowg registrations into the
// control plane's store; the device shows in the REST API under its certificate name.
func TestRunServesRegistration(t *testing.T) {
	dir := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	st, closeStore, err := OpenStore(ctx, dir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	svc := control.New(st, control.Options{Logger: quiet})
	if _, err := svc.CreateNetwork(ctx, control.NetworkInput{Name: "devices", ListenPort: 51820,
		IPv6: netip.MustParsePrefix("fd00:99:0:1::ffff/64"), Endpoint: "vpn.example.com"}); err != nil {
		t.Fatal(err)
	}
	_, secret, err := svc.CreateToken(ctx, control.TokenInput{Roles: []wirefleet.Role{wirefleet.RoleViewer}})
	if err != nil {
		t.Fatal(err)
	}
	closeStore()

	file := filepath.Join(t.TempDir(), "register.yaml")
	os.WriteFile(file, []byte("sites:\n  - network: devices\n    pool: fd00:99:0:1::/64\n    route: fd00:99::/48\n    endpoint: vpn.example.com\n"), 0o600)
	regAddr := make(chan net.Addr, 1)
	logs := &testenv.Buffer{}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- Run(rctx, Config{DataDir: dir, Listen: "127.0.0.1:0", NoGateway: true, Logger: slog.New(slog.NewTextHandler(logs, nil)),
			Registration: Registration{Listen: "127.0.0.1:0", File: file, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
				Ready: func(a net.Addr) { regAddr <- a }}})
	}()
	var reg net.Addr
	select {
	case reg = <-regAddr:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("registration listener not ready")
	}
	k, _ := wirefleet.GeneratePrivateKey()
	req, _ := http.NewRequest("POST", "http://"+reg.String()+"/v1/register", strings.NewReader(k.PublicKey().String()))
	req.Header.Set("X-Client-Subject", "CN=42")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(b), "ip=fd00:99:0:1::42\n") || !strings.HasPrefix(string(b), "endpoint=vpn.example.com:51820\n") {
		t.Fatalf("register: %d %q", res.StatusCode, b)
	}

	re := regexp.MustCompile(`msg="control plane listening" addr=(\S+)`)
	var api string
	for deadline := time.Now().Add(10 * time.Second); api == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(logs.String()); m != nil {
			api = m[1]
		}
	}
	req, _ = http.NewRequest("GET", "http://"+api+"/api/v1/networks/devices/peers", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(b), `"name":"42"`) {
		t.Errorf("REST peers: %d %s", res.StatusCode, b)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not stop")
	}
}

// A bad registration file stops the server at start, before it serves anything.
func TestRunRefusesBadRegistration(t *testing.T) {
	file := filepath.Join(t.TempDir(), "register.yaml")
	os.WriteFile(file, []byte("sites:\n  - network: nope\n    pool: fd00:99:0:1::/64\n    route: fd00:99::/48\n    endpoint: e\n"), 0o600)
	err := Run(context.Background(), Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", NoGateway: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registration: Registration{Listen: "127.0.0.1:0", File: file}})
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("Run = %v, want the unknown network named", err)
	}
}
