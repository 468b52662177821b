package register

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wirefleet/wirefleet"
)

var serverKey = wirefleet.MustParseKey("aqIUKESXUZSIXgqF9v7kSaEtwtu95jkVlFWrW0y7rUw=")

const goodAnswer = "endpoint=vpn.example.com:53092\npubkey=aqIUKESXUZSIXgqF9v7kSaEtwtu95jkVlFWrW0y7rUw=\nroute=fde3:25fb:7f6c::/48\nip=fde3:25fb:7f6c:1::1\nkeepalive=25\n"

func TestParseAnswer(t *testing.T) {
	got, err := ParseAnswer(goodAnswer)
	if err != nil {
		t.Fatal(err)
	}
	want := Answer{Host: "vpn.example.com", Port: 53092, PublicKey: serverKey, Route: netip.MustParsePrefix("fde3:25fb:7f6c::/48"),
		IP: netip.MustParseAddr("fde3:25fb:7f6c:1::1"), Keepalive: 25 * time.Second}
	if d := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	// No keepalive line: 25 s; an IPv6 endpoint; CRLF; unknown keys ignored.
	a, err := ParseAnswer("endpoint=[2001:db8::1]:51820\r\npubkey=aqIUKESXUZSIXgqF9v7kSaEtwtu95jkVlFWrW0y7rUw=\r\nroute=fd00::/48\r\nip=fd00:1::12\r\nmtu=1280\r\n")
	if err != nil || a.Keepalive != DefaultKeepalive || a.Host != "2001:db8::1" || a.Port != 51820 {
		t.Errorf("%+v %v", a, err)
	}
	bad := map[string]string{
		"empty":           "",
		"upstream's None": strings.Replace(goodAnswer, "ip=fde3:25fb:7f6c:1::1", "ip=None", 1),
		"ipv4 ip":         strings.Replace(goodAnswer, "ip=fde3:25fb:7f6c:1::1", "ip=198.51.100.1", 1),
		"ipv4 route":      strings.Replace(goodAnswer, "route=fde3:25fb:7f6c::/48", "route=198.51.100.0/24", 1),
		"two routes":      strings.Replace(goodAnswer, "route=fde3:25fb:7f6c::/48", "route=fd00::/48,fd01::/48", 1),
		"no port":         strings.Replace(goodAnswer, "vpn.example.com:53092", "vpn.example.com", 1),
		"port 0":          strings.Replace(goodAnswer, ":53092", ":0", 1),
		"bad key":         strings.Replace(goodAnswer, "aqIUKESX", "!!", 1),
		"missing pubkey":  strings.Replace(goodAnswer, "pubkey=aqIUKESXUZSIXgqF9v7kSaEtwtu95jkVlFWrW0y7rUw=\n", "", 1),
		"repeated ip":     goodAnswer + "ip=fd00::2\n",
		"not key=value":   goodAnswer + "garbage\n",
		"bad keepalive":   strings.Replace(goodAnswer, "keepalive=25", "keepalive=-1", 1),
		"html error page": "<html><body>502 Bad Gateway</body></html>",
	}
	for name, body := range bad {
		if a, err := ParseAnswer(body); err == nil {
			t.Errorf("%s: accepted %+v", name, a)
		}
	}
}

func FuzzParseAnswer(f *testing.F) {
	f.Add(goodAnswer)
	f.Add("endpoint=[::1]:1\npubkey=aqIUKESXUZSIXgqF9v7kSaEtwtu95jkVlFWrW0y7rUw=\nroute=::/0\nip=::2\n")
	f.Add("a=b\n=\n")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAnswer(s)
		if err != nil {
			return
		}
		if !a.IP.Is6() || !a.Route.Addr().Is6() || a.Port == 0 || a.PublicKey.IsZero() || a.Route.Masked() != a.Route {
			t.Fatalf("accepted an invalid answer: %+v", a)
		}
	})
}

func TestConfig(t *testing.T) {
	ok := Config{URL: "https://vpn.example.com/vpn", Cert: "c", Key: "k", Interface: "autowg"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ base, want string }{
		{"https://vpn.example.com/vpn", "https://vpn.example.com/vpn/v1/register"},
		{"https://vpn.example.com/vpn/", "https://vpn.example.com/vpn/v1/register"},
		{"https://vpn.example.com", "https://vpn.example.com/v1/register"},
		{"https://vpn.example.com/v1/register", "https://vpn.example.com/v1/register"},
	} {
		c := ok
		c.URL = tt.base
		if got := c.RegisterURL(); got != tt.want {
			t.Errorf("RegisterURL(%q) = %q, want %q", tt.base, got, tt.want)
		}
	}
	for name, mod := range map[string]func(*Config){
		"no url":                  func(c *Config) { c.URL = "" },
		"ftp url":                 func(c *Config) { c.URL = "ftp://x/" },
		"no cert":                 func(c *Config) { c.Cert = "" },
		"long name":               func(c *Config) { c.Interface = "abcdefghijklmnop" },
		"userspace one-shot":      func(c *Config) { c.Backend = "userspace" },
		"unknown backend":         func(c *Config) { c.Backend = "magic" },
		"auto without foreground": func(c *Config) { c.Backend = "auto" },
	} {
		c := ok
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestReadConfFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "autowg.conf")
	os.WriteFile(p, []byte("# upstream client config\nifname=wgdev\nexport api_endpoint=\"https://vpn.example.com/vpn/\"\nother=1\n"), 0o600)
	ifn, ep, err := ReadConfFile(p)
	if err != nil || ifn != "wgdev" || ep != "https://vpn.example.com/vpn/" {
		t.Errorf("%q %q %v", ifn, ep, err)
	}
	if ifn, ep, err := ReadConfFile(filepath.Join(t.TempDir(), "missing")); err != nil || ifn != "" || ep != "" {
		t.Errorf("missing file: %q %q %v", ifn, ep, err)
	}
}

// pki writes a CA, a server certificate for 127.0.0.1 and a device certificate.
func pki(t *testing.T) (dir string, serverCert tls.Certificate, caPool *x509.CertPool) {
	t.Helper()
	dir = t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTpl, caTpl, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	caPool = x509.NewCertPool()
	caPool.AddCert(ca)
	write := func(name string, der []byte, key *ecdsa.PrivateKey) {
		os.WriteFile(filepath.Join(dir, name+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
		if key != nil {
			kb, _ := x509.MarshalECPrivateKey(key)
			os.WriteFile(filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
		}
	}
	write("ca", caDER, nil)
	issue := func(name string, tpl *x509.Certificate) tls.Certificate {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, err := x509.CreateCertificate(rand.Reader, tpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		write(name, der, k)
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	serverCert = issue("server", &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "server"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{{127, 0, 0, 1}}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	issue("device", &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "1234"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return dir, serverCert, caPool
}

func TestClientRegister(t *testing.T) {
	dir, srvCert, pool := pki(t)
	var gotCN, gotBody string
	answer, status := goodAnswer, 200
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/vpn/v1/register" || r.Method != "POST" {
			http.NotFound(w, r)
			return
		}
		if len(r.TLS.PeerCertificates) > 0 {
			gotCN = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	defer srv.Close()

	cfg := Config{URL: srv.URL + "/vpn", Cert: filepath.Join(dir, "device.crt"), Key: filepath.Join(dir, "device.key"), CA: filepath.Join(dir, "ca.crt"), Interface: "autowg"}
	cl, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := wirefleet.GeneratePrivateKey()
	a, err := cl.Register(context.Background(), k.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if gotCN != "1234" || gotBody != k.PublicKey().String()+"\n" || a.IP.String() != "fde3:25fb:7f6c:1::1" {
		t.Errorf("cn %q body %q answer %+v", gotCN, gotBody, a)
	}
	// Every failure is an error: an HTTP error status, upstream's 500-then-ip=None, a bad answer.
	for _, tc := range []struct {
		status int
		body   string
	}{{403, "forbidden: no client certificate\n"}, {500, "ip=None\n"}, {200, "ip=None\n"}, {200, ""}} {
		status, answer = tc.status, tc.body
		if _, err := cl.Register(context.Background(), k.PublicKey()); err == nil {
			t.Errorf("status %d body %q: no error", tc.status, tc.body)
		}
	}
	// The server certificate is checked: without --ca the test CA is unknown.
	cfg.CA = ""
	cl, _ = NewClient(cfg)
	status, answer = 200, goodAnswer
	if _, err := cl.Register(context.Background(), k.PublicKey()); err == nil {
		t.Error("an unknown server CA was accepted")
	}
}
