package api

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/wirefleet/wirefleet"
)

// Authenticator checks a bearer token secret. The service layer implements it: it looks the
// token up by the id embedded in the secret, compares SHA-256 hashes in constant time and
// rejects expired and revoked tokens with KindUnauthorized.
type Authenticator interface {
	Authenticate(ctx context.Context, secret string) (wirefleet.Token, error)
}

// CNRoles maps the Common Name of a verified client certificate to its roles (mTLS).
type CNRoles map[string][]wirefleet.Role

// LoadCNRoles reads a CN→roles file, YAML of the form
//
//	gw1.example.org: [gateway]
//	ops-laptop: [admin]
func LoadCNRoles(path string) (CNRoles, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CN→roles file: %w", err)
	}
	return ParseCNRoles(b)
}

// ParseCNRoles parses the CN→roles YAML; errors name the CN and the bad role.
func ParseCNRoles(b []byte) (CNRoles, error) {
	var raw map[string][]string
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, wirefleet.Errorf(wirefleet.KindInvalid, "CN→roles file is not a YAML map of CN to a list of roles: %v", err)
	}
	out := make(CNRoles, len(raw))
	for cn, names := range raw {
		if cn == "" {
			return nil, wirefleet.Errorf(wirefleet.KindInvalid, "CN→roles file has an empty CN")
		}
		if len(names) == 0 {
			return nil, wirefleet.Errorf(wirefleet.KindInvalid, "CN %q has no roles", cn)
		}
		for _, n := range names {
			r, err := wirefleet.ParseRole(n)
			if err != nil {
				return nil, wirefleet.Errorf(wirefleet.KindInvalid, "CN %q: %v", cn, err)
			}
			out[cn] = append(out[cn], r)
		}
	}
	return out, nil
}

// authenticate identifies the caller. A bearer token wins over a client certificate (an
// explicit credential says what the caller wants to act as); a request with neither is
// anonymous. Secrets are never logged or echoed.
func (s *Server) authenticate(r *http.Request) (Principal, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, secret, _ := strings.Cut(h, " ")
		secret = strings.TrimSpace(secret)
		if !strings.EqualFold(scheme, "Bearer") || secret == "" {
			return Principal{}, wirefleet.Errorf(wirefleet.KindUnauthorized, "the Authorization header must be \"Bearer <token>\"")
		}
		tok, err := s.auth.Authenticate(r.Context(), secret)
		if err != nil {
			switch wirefleet.KindOf(err) {
			case wirefleet.KindUnavailable:
				return Principal{}, err
			case wirefleet.KindInternal:
				return Principal{}, fmt.Errorf("authenticate token: %w", err)
			}
			return Principal{}, wirefleet.Errorf(wirefleet.KindUnauthorized, "the bearer token is invalid, expired or revoked")
		}
		return Principal{Name: "token:" + tok.ID, Roles: tok.Roles, Networks: tok.Networks}, nil
	}
	if cert := verifiedClientCert(r); cert != nil {
		cn := cert.Subject.CommonName
		roles, ok := s.cnRoles[cn]
		if !ok {
			return Principal{}, wirefleet.Errorf(wirefleet.KindForbidden, "client certificate CN %q has no roles: add it to the server's CN→roles file", cn)
		}
		return Principal{Name: "cert:" + cn, Roles: roles}, nil
	}
	return Principal{Anonymous: true, Name: "anonymous"}, nil
}

// verifiedClientCert returns the leaf of a client certificate chain the TLS layer verified
// against the client CA, or nil.
func verifiedClientCert(r *http.Request) *x509.Certificate {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil
	}
	return r.TLS.VerifiedChains[0][0]
}

// authorize checks p against a route's perm.
func authorize(p Principal, x perm) error {
	if x == permPublic {
		return nil
	}
	if p.Anonymous {
		return wirefleet.Errorf(wirefleet.KindUnauthorized, "this endpoint needs a bearer token (Authorization: Bearer wft_...) or a client certificate")
	}
	if !p.can(x) {
		return wirefleet.Errorf(wirefleet.KindForbidden, "%s (roles %v) may not do this: it needs the %s permission", p.Name, p.Roles, x)
	}
	return nil
}
