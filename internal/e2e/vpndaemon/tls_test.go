package vpndaemon

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet/internal/testenv"
)

// TestMutualTLS runs the binary with CREDENTIALS_DIRECTORY (certificates generated here)
// and checks who gets in: only a client certificate from ca.crt that is valid now.
func TestMutualTLS(t *testing.T) {
	testenv.Privileged(t, "wg")
	ns := testenv.NewNetNS(t, "gwt")
	ca, other := testenv.NewCA(t, "portal CA"), testenv.NewCA(t, "another CA")
	creds := ca.WriteCredentials(t, net.ParseIP("127.0.0.1"))
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.PEM)
	now := time.Now()
	valid := ca.Issue(t, testenv.Leaf{CN: "portal", NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}).TLS

	clientWith := func(certs []tls.Certificate, h2 bool) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			DialContext:       dialer(ns.Name),
			TLSClientConfig:   &tls.Config{RootCAs: roots, Certificates: certs},
			ForceAttemptHTTP2: h2,
		}}
	}
	g := newGateway(t, ns, []string{"CREDENTIALS_DIRECTORY=" + creds}, clientWith([]tls.Certificate{valid}, false), "https")
	// The default backend: kernel where the module exists, else userspace (logged).
	g.args = []string{"-wg-backend", "auto", "-wg-port", "51820"}
	g.start()
	if !strings.Contains(g.proc.Output(), "WireGuard backend chosen") {
		t.Errorf("the auto backend did not log its choice:\n%s", g.proc.Output())
	}

	tests := []struct {
		name  string
		certs []tls.Certificate
		h2    bool
		ok    bool
	}{
		{"valid certificate", []tls.Certificate{valid}, false, true},
		{"valid certificate over HTTP/2", []tls.Certificate{valid}, true, true},
		{"certificate without EKU", []tls.Certificate{ca.Issue(t, testenv.Leaf{CN: "", NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), EKU: nil}).TLS}, false, true},
		{"no client certificate", nil, false, false},
		{"certificate from another CA", []tls.Certificate{other.Issue(t, testenv.Leaf{CN: "portal", NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), EKU: nil}).TLS}, false, false},
		{"expired certificate", []tls.Certificate{ca.Issue(t, testenv.Leaf{CN: "portal", NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour), EKU: nil}).TLS}, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := clientWith(tc.certs, tc.h2)
			defer c.CloseIdleConnections()
			resp, err := c.Get("https://" + apiAddr + "/i/node")
			if !tc.ok {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("status %d, want the connection refused", resp.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("status %d %s, want 200 application/json", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if tc.h2 && resp.ProtoMajor != 2 {
				t.Errorf("protocol %s, want HTTP/2", resp.Proto)
			}
		})
	}
}
