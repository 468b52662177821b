package autowg

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"time"
)

// SubjectHeader is the header a trusted reverse proxy fills with the client certificate's
// subject (Caddy: {http.request.tls.client.subject}).
const SubjectHeader = "X-Client-Subject"

// identity returns the CN of the client and how it was learnt ("mtls" or "proxy").
//
// A client certificate on our own TLS listener wins, and must verify against the site's
// CAs (a certificate that does not is refused outright, not downgraded to the header).
// Otherwise the header counts only from a trusted proxy address.
func (h *Handler) identity(r *http.Request, s *site) (string, string, error) {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		if s.roots == nil {
			return "", "", errors.New("this endpoint does not accept client certificates directly")
		}
		leaf := r.TLS.PeerCertificates[0]
		inter := x509.NewCertPool()
		for _, c := range r.TLS.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		chains, err := leaf.Verify(x509.VerifyOptions{Roots: s.roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		if err != nil {
			return "", "", errors.New("the client certificate is not signed by a CA of this endpoint")
		}
		if h.crl != nil {
			if err := h.crl.check(chains); err != nil {
				return "", "", err
			}
		}
		if leaf.Subject.CommonName == "" {
			return "", "", errors.New("the client certificate has no CN")
		}
		return leaf.Subject.CommonName, "mtls", nil
	}
	subj, present := r.Header[SubjectHeader]
	if !present {
		return "", "", errors.New("no client certificate")
	}
	if !h.trusted(r.RemoteAddr) {
		// Anyone can send the header: it counts only from our reverse proxy.
		h.log.Warn("autowg: ignoring "+SubjectHeader+" from an untrusted address", "remote", r.RemoteAddr)
		return "", "", errors.New("no client certificate")
	}
	if len(subj) != 1 {
		return "", "", errors.New("more than one " + SubjectHeader + " header")
	}
	cn, err := SubjectCN(subj[0])
	if err != nil {
		return "", "", fmt.Errorf("client subject: %w", err)
	}
	if cn == "" {
		return "", "", errors.New("the client certificate has an empty CN")
	}
	return cn, "proxy", nil
}

func (h *Handler) trusted(remote string) bool {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap().WithZone("")
	for _, p := range h.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// crlRecheck is how often the CRL file is checked for changes.
const crlRecheck = 5 * time.Second

// crlCache holds a revocation list, re-read when its file changes.
type crlCache struct {
	path string
	cas  []*x509.Certificate

	mu      sync.Mutex // guards the fields below
	checked time.Time
	mtime   time.Time
	issuer  *x509.Certificate
	revoked map[string]bool // serial numbers (big.Int.String)
}

func newCRLCache(path string, cas []*x509.Certificate) (*crlCache, error) {
	if len(cas) == 0 {
		return nil, fmt.Errorf("a CRL file (%s) needs the client CA that signs it", path)
	}
	c := &crlCache{path: path, cas: cas}
	if err := c.load(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *crlCache) load() error {
	st, err := os.Stat(c.path)
	if err != nil {
		return fmt.Errorf("read the CRL: %w", err)
	}
	b, err := os.ReadFile(c.path)
	if err != nil {
		return fmt.Errorf("read the CRL: %w", err)
	}
	if blk, _ := pem.Decode(b); blk != nil {
		b = blk.Bytes
	}
	rl, err := x509.ParseRevocationList(b)
	if err != nil {
		return fmt.Errorf("CRL %s is not a PEM or DER revocation list: %w", c.path, err)
	}
	var issuer *x509.Certificate
	for _, ca := range c.cas {
		if rl.CheckSignatureFrom(ca) == nil {
			issuer = ca
			break
		}
	}
	if issuer == nil {
		return fmt.Errorf("CRL %s is not signed by a configured client CA", c.path)
	}
	revoked := make(map[string]bool, len(rl.RevokedCertificateEntries))
	for _, e := range rl.RevokedCertificateEntries {
		revoked[e.SerialNumber.String()] = true
	}
	c.issuer, c.revoked, c.mtime = issuer, revoked, st.ModTime()
	return nil
}

// check refuses a chain whose leaf is revoked. A CRL that cannot be re-read keeps the last
// good one (logged by the caller through the error of the next start).
func (c *crlCache) check(chains [][]*x509.Certificate) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.checked) > crlRecheck {
		c.checked = time.Now()
		if st, err := os.Stat(c.path); err == nil && !st.ModTime().Equal(c.mtime) {
			_ = c.load() // keep the previous list if the new file is broken
		}
	}
	for _, chain := range chains {
		if len(chain) < 2 {
			continue
		}
		if chain[1].Equal(c.issuer) && c.revoked[serial(chain[0].SerialNumber)] {
			return errors.New("the client certificate is revoked")
		}
	}
	return nil
}

func serial(n *big.Int) string {
	if n == nil {
		return ""
	}
	return n.String()
}
