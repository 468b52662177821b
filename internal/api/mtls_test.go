package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
)

// testCA issues client certificates for the mTLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key}
}

func (ca *testCA) client(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestMTLS: a verified client certificate authenticates with the roles of its CN, for every
// route and role; an unmapped CN is forbidden; a token still wins over a certificate.
func TestMTLS(t *testing.T) {
	ca := newTestCA(t, "wirefleet test client CA")
	cnRoles := CNRoles{}
	for _, r := range wirefleet.Roles {
		cnRoles["cn-"+string(r)] = []wirefleet.Role{r}
	}
	e := newEnv(t, Config{CNRoles: cnRoles})
	e.endStreams()
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	hs := httptest.NewUnstartedServer(e.srv)
	hs.TLS = &tls.Config{ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven}
	hs.StartTLS()
	t.Cleanup(hs.Close)
	clientFor := func(cert *tls.Certificate) *http.Client {
		c := hs.Client()
		tr := c.Transport.(*http.Transport).Clone()
		if cert != nil {
			tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
		}
		return &http.Client{Transport: tr}
	}
	e.http = hs // e.do now goes through TLS

	for _, role := range wirefleet.Roles {
		cert := ca.client(t, "cn-"+string(role))
		client := clientFor(&cert)
		for _, rt := range e.srv.routes {
			if rt.perm == permPublic {
				continue
			}
			allowed := Principal{Roles: []wirefleet.Role{role}}.can(rt.perm)
			path, body, want := placeholder(rt.pattern), any(nil), 403
			if allowed {
				path, body, want = fixtures[rt.method+" "+rt.pattern](e)
			}
			r := doWith(t, client, e, rt.method, path, "", body)
			if r.status != want {
				t.Errorf("%s %s as cert %s: %d, want %d: %s", rt.method, path, role, r.status, want, r.body)
			}
		}
	}
	stranger := ca.client(t, "stranger")
	if r := doWith(t, clientFor(&stranger), e, "GET", "/api/v1/networks", "", nil); r.status != 403 {
		t.Errorf("unmapped CN: %d, want 403", r.status)
	}
	if r := doWith(t, clientFor(nil), e, "GET", "/api/v1/networks", "", nil); r.status != 401 {
		t.Errorf("no certificate: %d, want 401", r.status)
	}
	viewer := ca.client(t, "cn-viewer")
	if r := doWith(t, clientFor(&viewer), e, "GET", "/api/v1/tokens", e.admin, nil); r.status != 200 {
		t.Errorf("admin token with viewer cert: %d, want 200 (token wins)", r.status)
	}
	// A certificate from another CA never authenticates (Go's client does not even offer it
	// to a server that names its CAs; others fail the handshake).
	other := newTestCA(t, "other").client(t, "cn-admin")
	if resp, err := clientFor(&other).Get(hs.URL + "/api/v1/networks"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("certificate from an unknown CA: %d, want 401", resp.StatusCode)
		}
	}
}

// doWith is env.do with another HTTP client.
func doWith(t *testing.T, c *http.Client, e *env, method, path, secret string, body any) response {
	t.Helper()
	req := e.request(method, path, secret, body)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return readResponse(t, resp)
}

func TestParseCNRoles(t *testing.T) {
	got, err := ParseCNRoles([]byte("gw1.example.org: [gateway]\nops: [admin, viewer]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["ops"][1] != wirefleet.RoleViewer {
		t.Errorf("got %v", got)
	}
	for _, bad := range []string{"a: [root]\n", "a: []\n", "- a\n", "a: b: c"} {
		if _, err := ParseCNRoles([]byte(bad)); err == nil {
			t.Errorf("ParseCNRoles(%q) succeeded", bad)
		}
	}
}
