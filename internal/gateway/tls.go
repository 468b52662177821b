package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// tlsConfig builds the server's TLS configuration from a systemd credentials directory, as
// vpn-daemon does: ca.crt verifies clients, server.crt (leaf first, intermediates appended)
// and server.key identify the server.
//
// Clients must present a certificate that chains to ca.crt and is valid now. Unlike Go's
// RequireAndVerifyClientCert, no extended key usage is required: the portal's certificates
// carry no particular CN or EKU, so the chain is verified here with ExtKeyUsageAny. TLS 1.3
// is the minimum (the portal forces it); no SNI is required (the portal sends none for IP
// URLs); HTTP/2 is offered through ALPN as net/http does.
func tlsConfig(dir string, now func() time.Time) (*tls.Config, error) {
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("CREDENTIALS_DIRECTORY %q: %w", dir, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("CREDENTIALS_DIRECTORY %q: ca.crt holds no PEM certificate", dir)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"))
	if err != nil {
		return nil, fmt.Errorf("CREDENTIALS_DIRECTORY %q: server.crt/server.key: %w", dir, err)
	}
	if now == nil {
		now = time.Now
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		// Require a certificate, verify it ourselves (below); ClientCAs is still set so the
		// CertificateRequest names the acceptable CAs.
		ClientAuth: tls.RequireAnyClientCert,
		ClientCAs:  pool,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verifyClient(raw, pool, now())
		},
	}, nil
}

// verifyClient verifies a client chain (leaf first) against roots at time now.
func verifyClient(raw [][]byte, roots *x509.CertPool, now time.Time) error {
	if len(raw) == 0 {
		return errors.New("tls: client certificate required")
	}
	certs := make([]*x509.Certificate, 0, len(raw))
	for _, r := range raw {
		c, err := x509.ParseCertificate(r)
		if err != nil {
			return fmt.Errorf("tls: bad client certificate: %w", err)
		}
		certs = append(certs, c)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return fmt.Errorf("tls: client certificate %q refused: %w", certs[0].Subject.CommonName, err)
	}
	return nil
}
