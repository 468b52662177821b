package autowg_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/compat/autowg"
	"github.com/wirefleet/wirefleet/internal/control"
	"github.com/wirefleet/wirefleet/internal/store/sqlite"
	"github.com/wirefleet/wirefleet/internal/wgdev"
	"github.com/wirefleet/wirefleet/internal/wgdev/wgdevtest"
)

var (
	pool  = netip.MustParsePrefix("fde3:25fb:7f6c:1::/64")
	route = netip.MustParsePrefix("fde3:25fb:7f6c::/48")
)

// applier puts registrations on the memory device (internal/autowg wires the same on the
// attached interface).
type applier struct {
	svc *control.Service
	dev *wgdevtest.Memory
}

func (a applier) ApplyRegistration(ctx context.Context, p wirefleet.Peer, removed []wirefleet.Key) error {
	return a.dev.ApplyPeers(ctx, []wgdev.Peer{{PublicKey: p.PublicKey, AllowedIPs: p.AllowedIPs()}}, removed)
}

type env struct {
	svc    *control.Service
	dev    *wgdevtest.Memory
	h      *autowg.Handler
	ifPub  wirefleet.Key
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
}

func newEnv(t testing.TB, mod func(*autowg.SiteConfig, *autowg.Config)) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "w.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := control.New(st, control.Options{})
	zero := 0
	if _, err := svc.CreateNetwork(ctx, control.NetworkInput{Name: "autowg", IPv6: netip.MustParsePrefix("fde3:25fb:7f6c:1:ffff:ffff:ffff:ffff/64"), Keepalive: &zero}); err != nil {
		t.Fatal(err)
	}
	dev := wgdevtest.NewMemory("wgtest")
	priv, _ := wirefleet.GeneratePrivateKey()
	port := 51820
	if err := dev.Configure(ctx, wgdev.Interface{PrivateKey: &priv, ListenPort: &port}); err != nil {
		t.Fatal(err)
	}
	e := &env{svc: svc, dev: dev, ifPub: priv.PublicKey()}
	e.caCert, e.caKey = newCA(t, "Device CA")
	sc := autowg.SiteConfig{Network: "autowg", Pool: pool, Route: route, Endpoint: "vpn.example.com", Device: dev, Apply: applier{svc, dev}, HTTPAuth: "mon:secret"}
	cfg := autowg.Config{Service: svc, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}, ClientCAs: []*x509.Certificate{e.caCert}}
	if mod != nil {
		mod(&sc, &cfg)
	}
	cfg.Sites = []autowg.SiteConfig{sc}
	e.h, err = autowg.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

type resp struct {
	code int
	body string
	hdr  http.Header
}

// do sends a request from remote with an optional subject header.
func (e *env) do(method, path, remote, subject, body string) resp {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.RemoteAddr = remote
	if method == "POST" {
		r.Header.Set("Content-Length", fmt.Sprint(len(body)))
	}
	if subject != "" {
		r.Header.Set(autowg.SubjectHeader, subject)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return resp{w.Code, w.Body.String(), w.Header()}
}

const local = "127.0.0.1:40000"

func pubKey(t *testing.T) wirefleet.Key {
	t.Helper()
	k, err := wirefleet.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k.PublicKey()
}

func (e *env) devicePeers(t *testing.T) map[string]string {
	t.Helper()
	ps, err := e.dev.Peers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range ps {
		out[p.PublicKey.String()] = fmt.Sprint(p.AllowedIPs)
	}
	return out
}

func (e *env) head(t *testing.T) uint64 {
	seq, _, err := e.svc.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

func TestRegisterThroughProxy(t *testing.T) {
	e := newEnv(t, nil)
	k1 := pubKey(t)
	r := e.do("POST", "/v1/register", local, "CN=1234,O=Org", k1.String()+"\n")
	want := "endpoint=vpn.example.com:51820\npubkey=" + e.ifPub.String() + "\nroute=fde3:25fb:7f6c::/48\nip=fde3:25fb:7f6c:1::1234\nkeepalive=25\n"
	if r.code != 200 || r.body != want {
		t.Fatalf("got %d %q, want 200 %q", r.code, r.body, want)
	}
	if ct := r.hdr.Get("Content-Type"); ct != "text/plain; charset=UTF-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if d := cmp.Diff(map[string]string{k1.String(): "[fde3:25fb:7f6c:1::1234/128]"}, e.devicePeers(t)); d != "" {
		t.Errorf("device (-want +got):\n%s", d)
	}

	// Same key again: same answer; a peer removed out of band is put back.
	if err := e.dev.ApplyPeers(context.Background(), nil, []wirefleet.Key{k1}); err != nil {
		t.Fatal(err)
	}
	seq := e.head(t)
	r = e.do("POST", "/v1/register?x=1", local, "CN=1234,O=Org", k1.String())
	if r.code != 200 || r.body != want {
		t.Fatalf("again: %d %q", r.code, r.body)
	}
	if len(e.devicePeers(t)) != 1 || e.head(t) != seq {
		t.Errorf("same key: device %v, ops %d→%d", e.devicePeers(t), seq, e.head(t))
	}

	// New key (a reboot): same address, the old key is gone from the device.
	k2 := pubKey(t)
	r = e.do("POST", "/v1/register", local, "CN=1234,O=Org", k2.String())
	if r.code != 200 || !strings.Contains(r.body, "ip=fde3:25fb:7f6c:1::1234\n") {
		t.Fatalf("new key: %d %q", r.code, r.body)
	}
	if d := cmp.Diff(map[string]string{k2.String(): "[fde3:25fb:7f6c:1::1234/128]"}, e.devicePeers(t)); d != "" {
		t.Errorf("device after a new key (-want +got):\n%s", d)
	}
	// The registered peer shows in the API under its certificate name.
	page, _ := e.svc.ListPeers(context.Background(), control.PeerFilter{Network: "autowg"})
	if len(page.Peers) != 1 || page.Peers[0].Name != "1234" {
		t.Errorf("stored peers: %+v", page.Peers)
	}

	// Leading zeros are the same device, so k2 under "01234" is a re-registration.
	if r := e.do("POST", "/v1/register", local, "CN=01234", k2.String()); r.code != 200 {
		t.Errorf("leading zeros: %d %q", r.code, r.body)
	}
	// k2 under another name: 409, nothing changes.
	seq = e.head(t)
	if r := e.do("POST", "/v1/register", local, "CN=77", k2.String()); r.code != 409 {
		t.Errorf("stolen key: %d %q", r.code, r.body)
	}
	if e.head(t) != seq || len(e.devicePeers(t)) != 1 {
		t.Error("a refused registration changed something")
	}
}

func TestRegisterErrors(t *testing.T) {
	e := newEnv(t, nil)
	k := pubKey(t).String()
	raw31 := strings.Repeat("A", 40) + "A=" // 31 bytes
	tests := []struct {
		name, method, path, remote, subject, body string
		code                                      int
	}{
		{"unknown path", "POST", "/v1/other", local, "CN=1", k, 404},
		{"prefix concatenation", "POST", "/vpnv1/register", local, "CN=1", k, 404},
		{"GET register", "GET", "/v1/register", local, "CN=1", "", 405},
		{"empty body", "POST", "/v1/register", local, "CN=1", "", 400},
		{"empty body, no identity", "POST", "/v1/register", local, "", "", 403},
		{"not base64", "POST", "/v1/register", local, "CN=1", "not a key at all, sorry", 400},
		{"31 bytes", "POST", "/v1/register", local, "CN=1", raw31, 400},
		{"33 bytes", "POST", "/v1/register", local, "CN=1", strings.Repeat("A", 44) + "==", 400},
		{"non-canonical last char", "POST", "/v1/register", local, "CN=1", k[:42] + "B=", 400},
		{"zero key", "POST", "/v1/register", local, "CN=1", strings.Repeat("A", 43) + "=", 400},
		{"leading space", "POST", "/v1/register", local, "CN=1", " " + k, 400},
		{"two keys", "POST", "/v1/register", local, "CN=1", k + "\n" + k, 400},
		{"huge", "POST", "/v1/register", local, "CN=1", strings.Repeat("A", 5000), 413},
		{"no identity", "POST", "/v1/register", local, "", k, 403},
		{"spoofed subject", "POST", "/v1/register", "198.51.100.7:4000", "CN=1", k, 403},
		{"subject without CN", "POST", "/v1/register", local, "O=Org", k, 403},
		{"empty subject", "POST", "/v1/register", local, " ", k, 403},
		{"CN not matching", "POST", "/v1/register", local, "CN=-x", k, 403},
		{"CN 0", "POST", "/v1/register", local, "CN=0", k, 400},
		{"CN 10000", "POST", "/v1/register", local, "CN=10000", k, 400},
		{"CN letters", "POST", "/v1/register", local, "CN=abc", k, 400},
		{"peers.json no auth", "GET", "/v1/peers.json", local, "", "", 401},
	}
	seq := e.head(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(tt.method, tt.path, tt.remote, tt.subject, tt.body)
			if r.code != tt.code {
				t.Errorf("got %d %q, want %d", r.code, r.body, tt.code)
			}
			if strings.Count(r.body, "\n") != 1 || !strings.HasSuffix(r.body, "\n") {
				t.Errorf("error body is not one line: %q", r.body)
			}
		})
	}
	if e.head(t) != seq || len(e.devicePeers(t)) != 0 {
		t.Errorf("refused requests changed state: ops %d→%d, device %v", seq, e.head(t), e.devicePeers(t))
	}
	if r := e.do("GET", "/v1/register", local, "", ""); r.hdr.Get("Allow") != "POST" {
		t.Errorf("405 without Allow: %v", r.hdr)
	}
	if r := e.do("GET", "/v1/peers.json", local, "", ""); r.hdr.Get("WWW-Authenticate") != "Basic realm=auth" {
		t.Errorf("401 without WWW-Authenticate: %v", r.hdr)
	}
}

func TestLengthRequired(t *testing.T) {
	e := newEnv(t, nil)
	r := httptest.NewRequest("POST", "/v1/register", nil)
	r.RemoteAddr = local
	r.Header.Set(autowg.SubjectHeader, "CN=1")
	r.ContentLength = 0
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	if w.Code != http.StatusLengthRequired {
		t.Errorf("no Content-Length: %d", w.Code)
	}
}

func TestMetansPatternAndPrefix(t *testing.T) {
	e := newEnv(t, func(sc *autowg.SiteConfig, _ *autowg.Config) {
		sc.Converter, sc.CNPattern, sc.Template, sc.Prefix = "metans", `smart-toilet-(\d+)`, "st%s.0", "vpn"
		sc.Endpoint = "2001:db8::1"
	})
	k := pubKey(t)
	// Caddy's order puts SERIALNUMBER before CN; an escaped comma in O.
	r := e.do("POST", "/vpn/v1/register", local, `SERIALNUMBER=SN0042,CN=smart-toilet-1234abc,O=Flush\, Inc.`, k.String())
	want := "endpoint=[2001:db8::1]:51820\npubkey=" + e.ifPub.String() + "\nroute=fde3:25fb:7f6c::/48\nip=fde3:25fb:7f6c:1:cb0b:5960:3f8c:99ad\nkeepalive=25\n"
	if r.code != 200 || r.body != want {
		t.Fatalf("got %d %q\nwant %q", r.code, r.body, want)
	}
	if r := e.do("POST", "/v1/register", local, "CN=smart-toilet-1", k.String()); r.code != 404 {
		t.Errorf("old prefix: %d", r.code)
	}
	if r := e.do("POST", "/vpn/v1/register", local, "CN=toilet-1", pubKey(t).String()); r.code != 403 {
		t.Errorf("pattern mismatch: %d", r.code)
	}
}

func TestSequentialUppercase(t *testing.T) {
	e := newEnv(t, func(sc *autowg.SiteConfig, _ *autowg.Config) {
		sc.Converter, sc.CNPattern = "sequential", `(.+)`
	})
	r1 := e.do("POST", "/v1/register", local, "CN=Hello-1,O=Org", pubKey(t).String())
	r2 := e.do("POST", "/v1/register", local, "CN=hello-1", pubKey(t).String())
	if r1.code != 200 || r1.body != r2.body || !strings.Contains(r1.body, "ip=fde3:25fb:7f6c:1::1\n") {
		t.Errorf("Hello-1 %d %q, hello-1 %d %q", r1.code, r1.body, r2.code, r2.body)
	}
	if len(e.devicePeers(t)) != 1 {
		t.Errorf("device: %v", e.devicePeers(t))
	}
	if r := e.do("POST", "/v1/register", local, "CN=héllo", pubKey(t).String()); r.code != 400 {
		t.Errorf("non-ASCII name: %d %q", r.code, r.body)
	}
}

func TestPeersJSON(t *testing.T) {
	e := newEnv(t, nil)
	k := pubKey(t)
	if r := e.do("POST", "/v1/register", local, "CN=23", k.String()); r.code != 200 {
		t.Fatal(r.body)
	}
	e.dev.SetStats(k, time.Unix(1735776000, 0), 1234567, 654321)
	r := httptest.NewRequest("GET", "/v1/peers.json", nil)
	r.SetBasicAuth("mon", "secret")
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	page, _ := e.svc.ListPeers(context.Background(), control.PeerFilter{Network: "autowg"})
	want := `{
    "23": {
        "created": ` + itoa(page.Peers[0].CreatedAt.Unix()) + `,
        "ip": "fde3:25fb:7f6c:1::23",
        "last_handshake": 1735776000,
        "pubkey": "` + k.String() + `",
        "rx_bytes": 1234567,
        "tx_bytes": 654321
    }
}
`
	if d := cmp.Diff(want, w.Body.String()); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	r.SetBasicAuth("mon", "wrong")
	w = httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	if w.Code != 401 {
		t.Errorf("wrong password: %d", w.Code)
	}
	// Without HTTP_AUTH the endpoint does not exist.
	e2 := newEnv(t, func(sc *autowg.SiteConfig, _ *autowg.Config) { sc.HTTPAuth = "" })
	if r := e2.do("GET", "/v1/peers.json", local, "", ""); r.code != 404 {
		t.Errorf("unset HTTP_AUTH: %d", r.code)
	}
}

func itoa(n int64) string { return big.NewInt(n).String() }

func TestConfigErrors(t *testing.T) {
	for name, mod := range map[string]func(*autowg.SiteConfig, *autowg.Config){
		"ipv4 pool":       func(sc *autowg.SiteConfig, _ *autowg.Config) { sc.Pool = netip.MustParsePrefix("198.51.100.0/24") },
		"host bits":       func(sc *autowg.SiteConfig, _ *autowg.Config) { sc.Pool = netip.MustParsePrefix("fd00::1/64") },
		"/128 pool":       func(sc *autowg.SiteConfig, _ *autowg.Config) { sc.Pool = netip.MustParsePrefix("fd00::/128") },
		"ipv4 route":      func(sc *autowg.SiteConfig, _ *autowg.Config) { sc.Route = netip.MustParsePrefix("198.51.100.0/24") },
		"bad pattern":     func(sc *autowg.SiteConfig, _ *autowg.Config) { sc.CNPattern = "(" },
		"no group":        func(sc *autowg.SiteConfig, _ *autowg.Config) { sc.CNPattern = `\d+` },
		"bad template":    func(sc *autowg.SiteConfig, _ *autowg.Config) { sc.Converter, sc.Template = "metans", "%s%s" },
		"bcd pool /120":   func(sc *autowg.SiteConfig, _ *autowg.Config) { sc.Pool = netip.MustParsePrefix("fd00::/120") },
		"no endpoint":     func(sc *autowg.SiteConfig, _ *autowg.Config) { sc.Endpoint = "" },
		"unknown conv":    func(sc *autowg.SiteConfig, _ *autowg.Config) { sc.Converter = "magic" },
		"missing CRL":     func(_ *autowg.SiteConfig, c *autowg.Config) { c.CRLFile = "/nonexistent/crl.pem" },
		"bad network":     func(sc *autowg.SiteConfig, _ *autowg.Config) { sc.Network = "Bad Name" },
		"endpoint w/port": func(sc *autowg.SiteConfig, _ *autowg.Config) { sc.Endpoint = "vpn.example.com:51820" },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("panic: %v", r)
				}
			}()
			_, err := autowg.New(autowg.Config{Service: (*control.Service)(nil), Sites: []autowg.SiteConfig{modded(mod)}, CRLFile: crlOf(mod)})
			if err == nil {
				t.Error("accepted")
			}
		})
	}
}

func modded(mod func(*autowg.SiteConfig, *autowg.Config)) autowg.SiteConfig {
	sc := autowg.SiteConfig{Network: "autowg", Pool: pool, Route: route, Endpoint: "vpn.example.com"}
	mod(&sc, &autowg.Config{})
	return sc
}

func crlOf(mod func(*autowg.SiteConfig, *autowg.Config)) string {
	var c autowg.Config
	mod(&autowg.SiteConfig{}, &c)
	return c.CRLFile
}

// --- direct mTLS ---

func newCA(t testing.TB, cn string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, k
}

func issue(t testing.TB, ca *x509.Certificate, caKey *ecdsa.PrivateKey, serial int64, subject pkix.Name) tls.Certificate {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: subject, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tpl, ca, &k.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}

func tlsServer(t *testing.T, h http.Handler) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func post(t *testing.T, srv *httptest.Server, cert *tls.Certificate, subject, body string) (int, string) {
	t.Helper()
	tr := srv.Client().Transport.(*http.Transport).Clone()
	if cert != nil {
		tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
	}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("POST", srv.URL+"/v1/register", strings.NewReader(body))
	if subject != "" {
		req.Header.Set(autowg.SubjectHeader, subject)
	}
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestDirectMTLS(t *testing.T) {
	e := newEnv(t, func(_ *autowg.SiteConfig, c *autowg.Config) {
		c.TrustedProxies = nil // nothing trusted: the header must never count
	})
	srv := tlsServer(t, e.h)
	good := issue(t, e.caCert, e.caKey, 10, pkix.Name{CommonName: "42", SerialNumber: "SN0042"})
	if code, body := post(t, srv, &good, "", pubKey(t).String()); code != 200 || !strings.Contains(body, "ip=fde3:25fb:7f6c:1::42\n") {
		t.Fatalf("good cert: %d %q", code, body)
	}
	otherCA, otherKey := newCA(t, "Other CA")
	bad := issue(t, otherCA, otherKey, 11, pkix.Name{CommonName: "43"})
	if code, body := post(t, srv, &bad, "", pubKey(t).String()); code != 403 {
		t.Errorf("cert of another CA: %d %q", code, body)
	}
	// No certificate, a subject header from an untrusted address: refused.
	if code, body := post(t, srv, nil, "CN=44", pubKey(t).String()); code != 403 {
		t.Errorf("spoofed header: %d %q", code, body)
	}
	// A certificate wins over a header (the header cannot rename a device).
	if code, body := post(t, srv, &good, "CN=45", pubKey(t).String()); code != 200 || !strings.Contains(body, "::42\n") {
		t.Errorf("cert + header: %d %q", code, body)
	}

	// A revoked certificate (CRL signed by the CA).
	crlPath := filepath.Join(t.TempDir(), "crl.pem")
	tpl := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: big.NewInt(10), RevocationTime: time.Now()}}}
	der, err := x509.CreateRevocationList(rand.Reader, tpl, e.caCert, e.caKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(crlPath, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	e2 := newEnv(t, nil)
	h2, err := autowg.New(autowg.Config{Service: e2.svc, ClientCAs: []*x509.Certificate{e.caCert}, CRLFile: crlPath,
		Sites: []autowg.SiteConfig{{Network: "autowg", Pool: pool, Route: route, Endpoint: "vpn.example.com", Device: e2.dev}}})
	if err != nil {
		t.Fatal(err)
	}
	srv2 := tlsServer(t, h2)
	if code, body := post(t, srv2, &good, "", pubKey(t).String()); code != 403 || !strings.Contains(body, "revoked") {
		t.Errorf("revoked cert: %d %q", code, body)
	}
	fine := issue(t, e.caCert, e.caKey, 12, pkix.Name{CommonName: "46"})
	if code, body := post(t, srv2, &fine, "", pubKey(t).String()); code != 200 {
		t.Errorf("unrevoked cert: %d %q", code, body)
	}
}

// BenchmarkRegisterHandler: the handler on the real SQLite store (durable commits) and the
// in-memory device, 64 concurrent new devices through the trusted-proxy path (no TLS):
// the ceiling of the registration path itself.
func BenchmarkRegisterHandler(b *testing.B) {
	e := newEnv(b, func(sc *autowg.SiteConfig, _ *autowg.Config) { sc.Converter, sc.CNPattern = "metans", "(.+)" })
	keys := make([]string, b.N)
	for i := range keys {
		k, _ := wirefleet.GeneratePrivateKey()
		keys[i] = k.PublicKey().String()
	}
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				if r := e.do("POST", "/v1/register", local, "CN=dev"+itoa(int64(i)), keys[i]); r.code != 200 {
					b.Error(r.code, r.body)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "registrations/s")
}

// BenchmarkRegisterMTLS: as BenchmarkRegisterHandler, over TLS with a fresh connection and
// a full mTLS handshake per registration (client and server in this process).
func BenchmarkRegisterMTLS(b *testing.B) {
	e := newEnv(b, func(sc *autowg.SiteConfig, _ *autowg.Config) { sc.Converter, sc.CNPattern = "metans", "(.+)" })
	// An ECDSA P-256 server certificate, as deployed (httptest's default is RSA-2048, whose
	// signature alone would dominate the handshake).
	sk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	stpl := &x509.Certificate{SerialNumber: big.NewInt(99), Subject: pkix.Name{CommonName: "server"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	sder, err := x509.CreateCertificate(rand.Reader, stpl, e.caCert, &sk.PublicKey, e.caKey)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(e.h)
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert, Certificates: []tls.Certificate{{Certificate: [][]byte{sder}, PrivateKey: sk}}}
	srv.StartTLS()
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(e.caCert)
	certs := make([]tls.Certificate, b.N)
	keys := make([]string, b.N)
	for i := range certs {
		certs[i] = issue(b, e.caCert, e.caKey, int64(100+i), pkix.Name{CommonName: "dev" + itoa(int64(i))})
		k, _ := wirefleet.GeneratePrivateKey()
		keys[i] = k.PublicKey().String()
	}
	base := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				tr := base.Clone()
				tr.DisableKeepAlives = true
				tr.TLSClientConfig.Certificates = []tls.Certificate{certs[i]}
				res, err := (&http.Client{Transport: tr}).Post(srv.URL+"/v1/register", "text/plain", strings.NewReader(keys[i]))
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					b.Error(res.StatusCode)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "registrations/s")
}

func TestChunkedBody(t *testing.T) {
	e := newEnv(t, nil)
	k := pubKey(t)
	r := httptest.NewRequest("POST", "/v1/register", io.NopCloser(strings.NewReader(k.String()+"\n")))
	r.ContentLength, r.TransferEncoding = -1, []string{"chunked"}
	r.RemoteAddr = local
	r.Header.Set(autowg.SubjectHeader, "CN=5")
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "ip=fde3:25fb:7f6c:1::5\n") {
		t.Errorf("chunked body: %d %q", w.Code, w.Body)
	}
}

// refusing is a device that refuses one key (a static peer's, on a shared interface).
type refusing struct {
	applier
	key wirefleet.Key
}

func (r refusing) ApplyRegistration(ctx context.Context, p wirefleet.Peer, removed []wirefleet.Key) error {
	if p.PublicKey == r.key {
		return wirefleet.Errorf(wirefleet.KindConflict, "peer %s exists on the interface outside the managed prefixes", p.PublicKey)
	}
	return r.applier.ApplyRegistration(ctx, p, removed)
}

func TestDeviceRefusesKey(t *testing.T) {
	static := pubKey(t)
	e := newEnv(t, func(sc *autowg.SiteConfig, _ *autowg.Config) {
		sc.Apply = refusing{applier{nil, sc.Device.(*wgdevtest.Memory)}, static}
	})
	if r := e.do("POST", "/v1/register", local, "CN=8", static.String()); r.code != 409 {
		t.Fatalf("static peer's key: %d %q", r.code, r.body)
	}
	if page, _ := e.svc.ListPeers(context.Background(), control.PeerFilter{Network: "autowg"}); len(page.Peers) != 0 {
		t.Errorf("the refused registration stayed in the store: %+v", page.Peers)
	}
	if r := e.do("POST", "/v1/register", local, "CN=8", pubKey(t).String()); r.code != 200 {
		t.Errorf("the same device with its own key: %d %q", r.code, r.body)
	}
}
