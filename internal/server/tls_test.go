package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// issue creates a key pair and a certificate signed by parent (self-signed when nil) and
// writes them as PEM files; it returns the certificate, key and file paths.
func issue(t *testing.T, dir, name string, tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key, certFile, keyFile
}

// TestRunMTLS: with -tls-cert/-tls-key/-client-ca/-cn-roles the server really serves TLS
// and authenticates client certificates by CN (wig configured TLS but never served it).
func TestRunMTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey, caFile, _ := issue(t, dir, "ca", &x509.Certificate{Subject: pkix.Name{CommonName: "test CA"}, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, nil, nil)
	_, _, srvCert, srvKey := issue(t, dir, "server", &x509.Certificate{Subject: pkix.Name{CommonName: "server"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, ca, caKey)
	_, _, opsCert, opsKey := issue(t, dir, "ops", &x509.Certificate{Subject: pkix.Name{CommonName: "ops"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ca, caKey)
	_, _, viewCert, viewKey := issue(t, dir, "dash", &x509.Certificate{Subject: pkix.Name{CommonName: "dashboard"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ca, caKey)
	_, _, gwCert, gwKey := issue(t, dir, "gw1", &x509.Certificate{Subject: pkix.Name{CommonName: "gw1.example.org"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ca, caKey)
	_, _, strangerCert, strangerKey := issue(t, dir, "stranger", &x509.Certificate{Subject: pkix.Name{CommonName: "stranger"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ca, caKey)
	roles := filepath.Join(dir, "roles.yaml")
	if err := os.WriteFile(roles, []byte("ops: [admin]\ndashboard: [viewer]\ngw1.example.org: [gateway]\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	logs := &syncWriter{}
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
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	client := func(certFile, keyFile string) *http.Client {
		tc := &tls.Config{RootCAs: pool}
		if certFile != "" {
			c, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				t.Fatal(err)
			}
			tc.Certificates = []tls.Certificate{c}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 10 * time.Second}
	}
	// The replication, stats and sessions routes are API routes: certificates reach them
	// with their CN's roles like any other (the stats report names no network: valid, empty).
	const stats = `{"gateway":"gw1","peers":[]}`
	for _, tc := range []struct {
		name, cert, key, method, path, body string
		want                                int
	}{
		{"admin cert lists tokens", opsCert, opsKey, "GET", "/api/v1/tokens", "", 200},
		{"viewer cert reads networks", viewCert, viewKey, "GET", "/api/v1/networks", "", 200},
		{"viewer cert may not list tokens", viewCert, viewKey, "GET", "/api/v1/tokens", "", 403},
		{"no cert", "", "", "GET", "/api/v1/networks", "", 401},
		{"no cert, health", "", "", "GET", "/healthz", "", 200},
		{"gateway cert reads the snapshot", gwCert, gwKey, "GET", "/api/v1/replication/snapshot", "", 200},
		{"gateway cert pushes stats", gwCert, gwKey, "POST", "/api/v1/stats", stats, 204},
		{"gateway cert may not read sessions", gwCert, gwKey, "GET", "/api/v1/sessions", "", 403},
		{"viewer cert reads sessions", viewCert, viewKey, "GET", "/api/v1/sessions", "", 200},
		{"viewer cert may not push stats", viewCert, viewKey, "POST", "/api/v1/stats", stats, 403},
		{"viewer cert may not replicate", viewCert, viewKey, "GET", "/api/v1/replication/log", "", 403},
		{"unmapped cert may not push stats", strangerCert, strangerKey, "POST", "/api/v1/stats", stats, 403},
		{"no cert, stats", "", "", "POST", "/api/v1/stats", stats, 401},
	} {
		req, _ := http.NewRequest(tc.method, url+tc.path, strings.NewReader(tc.body))
		resp, err := client(tc.cert, tc.key).Do(req)
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
