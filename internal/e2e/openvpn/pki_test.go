package openvpn

import (
	"crypto/x509"
	"path/filepath"
	"testing"

	"github.com/wirefleet/wirefleet/internal/testenv"
)

// pki is a CA made for one test (testenv's: EC keys, so no DH parameters to generate: the
// servers run with --dh none, ECDHE only) and the directory of its files: ca.crt,
// server.crt and server.key (a serverAuth certificate, what --remote-cert-tls server
// checks) and one pair per client.
type pki struct {
	ca  *testenv.CA
	dir string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	ca := testenv.NewCA(t, "Wirefleet e2e CA")
	return &pki{ca: ca, dir: ca.WriteCredentials(t)}
}

func (p *pki) path(name string) string { return filepath.Join(p.dir, name) }

// client makes a clientAuth certificate for cn and returns the paths of its certificate
// (dir/file.crt) and key. The CN goes into the certificate as is: base64 with '+', '/', '='.
func (p *pki) client(t *testing.T, file, cn string) (certPath, keyPath string) {
	t.Helper()
	is := p.ca.Issue(t, testenv.Leaf{CN: cn, EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return is.WriteFiles(t, p.dir, file)
}
