package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet/internal/testenv"
)

// TestRunMTLS: with -tls-cert/-tls-key/-client-ca/-cn-roles the server really serves TLS
// and authenticates client certificates by CN (wig configured TLS but never served it).
func TestRunMTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testenv.NewCA(t, "test CA")
	creds := ca.WriteCredentials(t, net.ParseIP("127.0.0.1"))
	caFile, srvCert, srvKey := filepath.Join(creds, "ca.crt"), filepath.Join(creds, "server.crt"), filepath.Join(creds, "server.key")
	clientCert := func(cn string) *tls.Certificate {
		return &ca.Issue(t, testenv.Leaf{CN: cn, EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}).TLS
	}
	ops, view, gw, stranger := clientCert("ops"), clientCert("dashboard"), clientCert("gw1.example.org"), clientCert("stranger")
	roles := filepath.Join(dir, "roles.yaml")
	if err := os.WriteFile(roles, []byte("ops: [admin]\ndashboard: [viewer]\ngw1.example.org: [gateway]\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	logs := &testenv.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{DataDir: filepath.Join(dir, "data"), Listen: "127.0.0.1:0", NoGateway: true,
			TLSCert: srvCert, TLSKey: srvKey, ClientCA: caFile, CNRolesFile: roles,
			Logger: slog.New(slog.NewTextHandler(logs, nil))})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	re := regexp.MustCompile(`url=(https://\S+)`)
	var url string
	for deadline := time.Now().Add(10 * time.Second); url == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(logs.String()); m != nil {
			url = m[1]
		}
	}
	if url == "" {
		t.Fatalf("no https URL in %q", logs.String())
	}
	client := func(cert *tls.Certificate) *http.Client {
		tc := &tls.Config{RootCAs: ca.Pool()}
		if cert != nil {
			tc.Certificates = []tls.Certificate{*cert}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 10 * time.Second}
	}
	// The replication, stats and sessions routes are API routes: certificates reach them
	// with their CN's roles like any other (the stats report names no network: valid, empty).
	const stats = `{"gateway":"gw1","peers":[]}`
	for _, tc := range []struct {
		name               string
		cert               *tls.Certificate
		method, path, body string
		want               int
	}{
		{"admin cert lists tokens", ops, "GET", "/api/v1/tokens", "", 200},
		{"viewer cert reads networks", view, "GET", "/api/v1/networks", "", 200},
		{"viewer cert may not list tokens", view, "GET", "/api/v1/tokens", "", 403},
		{"no cert", nil, "GET", "/api/v1/networks", "", 401},
		{"no cert, health", nil, "GET", "/healthz", "", 200},
		{"gateway cert reads the snapshot", gw, "GET", "/api/v1/replication/snapshot", "", 200},
		{"gateway cert pushes stats", gw, "POST", "/api/v1/stats", stats, 204},
		{"gateway cert may not read sessions", gw, "GET", "/api/v1/sessions", "", 403},
		{"viewer cert reads sessions", view, "GET", "/api/v1/sessions", "", 200},
		{"viewer cert may not push stats", view, "POST", "/api/v1/stats", stats, 403},
		{"viewer cert may not replicate", view, "GET", "/api/v1/replication/log", "", 403},
		{"unmapped cert may not push stats", stranger, "POST", "/api/v1/stats", stats, 403},
		{"no cert, stats", nil, "POST", "/api/v1/stats", stats, 401},
	} {
		req, _ := http.NewRequest(tc.method, url+tc.path, strings.NewReader(tc.body))
		resp, err := client(tc.cert).Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
	if resp, err := http.Get("http" + url[len("https"):] + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP answered on the TLS port")
		}
	}
}
