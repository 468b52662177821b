package server

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wirefleet/wirefleet/internal/testenv"
)

// TestPinnedClient: the local gateway trusts exactly the server's own certificate, issued
// for whatever name (here not 127.0.0.1), and nothing else.
func TestPinnedClient(t *testing.T) {
	// Both certificates name the same host and chain to the same CA: only the exact pin
	// tells them apart.
	ca := testenv.NewCA(t, "pinned test CA")
	leaf := testenv.Leaf{CN: "control.example.org", DNSNames: []string{"control.example.org"}}
	own, other := ca.Issue(t, leaf), ca.Issue(t, leaf)
	certFile, _ := own.WriteFiles(t, t.TempDir(), "server")
	for _, tc := range []struct {
		name string
		cert tls.Certificate
		ok   bool
	}{{"own certificate", own.TLS, true}, {"another certificate", other.TLS, false}} {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{tc.cert}}
		srv.StartTLS()
		resp, err := pinnedClient(certFile).Get(srv.URL)
		if err == nil {
			resp.Body.Close()
		}
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.name, err, tc.ok)
		}
		srv.Close()
	}
}
