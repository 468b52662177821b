package autowg

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/control"
	"github.com/wirefleet/wirefleet/internal/store/sqlite"
)

func controlPlane(t *testing.T) *control.Service {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "w.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := control.New(st, control.Options{})
	if _, err := svc.CreateNetwork(context.Background(), control.NetworkInput{Name: "devices", ListenPort: 51999,
		IPv6: netip.MustParsePrefix("fde3:25fb:7f6c:1::ffff/64"), Endpoint: "vpn.example.com"}); err != nil {
		t.Fatal(err)
	}
	return svc
}

func writeFile(t *testing.T, body string) string {
	p := filepath.Join(t.TempDir(), "register.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const siteYAML = `sites:
  - network: devices
    prefix: /vpn
    pool: fde3:25fb:7f6c:1::/64
    route: fde3:25fb:7f6c::/48
    endpoint: vpn.example.com
    converter: direct-bcd
`

func TestServeRegistration(t *testing.T) {
	svc := controlPlane(t)
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- ServeRegistration(ctx, svc, RegistrationConfig{Listen: "127.0.0.1:0", File: writeFile(t, siteYAML),
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Ready: func(a net.Addr) { addrc <- a }})
	}()
	var addr net.Addr
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("not ready")
	}
	k, _ := wirefleet.GeneratePrivateKey()
	req, _ := http.NewRequest("POST", "http://"+addr.String()+"/vpn/v1/register", strings.NewReader(k.PublicKey().String()))
	req.Header.Set("X-Client-Subject", "CN=42,O=Org")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	n, _ := svc.GetNetwork(context.Background(), "devices")
	want := "endpoint=vpn.example.com:51999\npubkey=" + n.PublicKey.String() + "\nroute=fde3:25fb:7f6c::/48\nip=fde3:25fb:7f6c:1::42\nkeepalive=25\n"
	if res.StatusCode != 200 || string(b) != want {
		t.Errorf("got %d %q, want %q", res.StatusCode, b, want)
	}
	p, err := svc.GetPeer(context.Background(), "devices", k.PublicKey())
	if err != nil || p.Name != "42" {
		t.Errorf("stored peer %+v %v", p, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

func TestRegistrationFileErrors(t *testing.T) {
	svc := controlPlane(t)
	for name, body := range map[string]string{
		"no sites":         "sites: []\n",
		"unknown key":      siteYAML + "bogus: 1\n",
		"unknown network":  strings.Replace(siteYAML, "network: devices", "network: nope", 1),
		"pool outside":     strings.Replace(siteYAML, "pool: fde3:25fb:7f6c:1::/64", "pool: fde3:25fb:7f6c:2::/64", 1),
		"bad converter":    strings.Replace(siteYAML, "direct-bcd", "magic", 1),
		"ca without tls":   "client_ca: [/nonexistent]\n" + siteYAML,
		"missing ca file":  "tls_cert: x\ntls_key: y\nclient_ca: [/nonexistent]\n" + siteYAML,
		"not yaml":         "{{{",
		"ipv4 route":       strings.Replace(siteYAML, "route: fde3:25fb:7f6c::/48", "route: 198.51.100.0/24", 1),
		"duplicate prefix": siteYAML + strings.TrimPrefix(siteYAML, "sites:\n"),
	} {
		err := ServeRegistration(context.Background(), svc, RegistrationConfig{Listen: "127.0.0.1:0", File: writeFile(t, body)})
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
