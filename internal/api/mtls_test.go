package api

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/testenv"
)

// clientCert issues a client certificate for cn from ca, in the form tls.Config takes.
func clientCert(t *testing.T, ca *testenv.CA, cn string) tls.Certificate {
	t.Helper()
	return ca.Issue(t, testenv.Leaf{CN: cn, EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}).TLS
}

// TestMTLS: a verified client certificate authenticates with the roles of its CN, for every
// route and role; an unmapped CN is forbidden; a token still wins over a certificate.
func TestMTLS(t *testing.T) {
	ca := testenv.NewCA(t, "wirefleet test client CA")
	cnRoles := CNRoles{}
	for _, r := range wirefleet.Roles {
		cnRoles["cn-"+string(r)] = []wirefleet.Role{r}
	}
	e := newEnv(t, Config{CNRoles: cnRoles})
	e.endStreams()
	hs := httptest.NewUnstartedServer(e.srv)
	hs.TLS = &tls.Config{ClientCAs: ca.Pool(), ClientAuth: tls.VerifyClientCertIfGiven}
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
		cert := clientCert(t, ca, "cn-"+string(role))
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
	stranger := clientCert(t, ca, "stranger")
	if r := doWith(t, clientFor(&stranger), e, "GET", "/api/v1/networks", "", nil); r.status != 403 {
		t.Errorf("unmapped CN: %d, want 403", r.status)
	}
	if r := doWith(t, clientFor(nil), e, "GET", "/api/v1/networks", "", nil); r.status != 401 {
		t.Errorf("no certificate: %d, want 401", r.status)
	}
	viewer := clientCert(t, ca, "cn-viewer")
	if r := doWith(t, clientFor(&viewer), e, "GET", "/api/v1/tokens", e.admin, nil); r.status != 200 {
		t.Errorf("admin token with viewer cert: %d, want 200 (token wins)", r.status)
	}
	// A certificate from another CA never authenticates (Go's client does not even offer it
	// to a server that names its CAs; others fail the handshake).
	other := clientCert(t, testenv.NewCA(t, "other"), "cn-admin")
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
