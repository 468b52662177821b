package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/api"
	"github.com/wirefleet/wirefleet/internal/control"
	"github.com/wirefleet/wirefleet/internal/replication"
	"github.com/wirefleet/wirefleet/internal/sessions"
)

// TestManagedRoutesAuth: tokens and verified client certificates reach the replication and
// sessions routes with their roles; others are refused with 401/403.
func TestManagedRoutesAuth(t *testing.T) {
	ctx := context.Background()
	st, closeStore, err := OpenStore(ctx, t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closeStore() })
	svc := control.New(st, control.Options{})
	token := func(r wirefleet.Role) string {
		_, s, err := svc.CreateToken(ctx, control.TokenInput{Roles: []wirefleet.Role{r}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a := authenticator{svc: svc, cnRoles: api.CNRoles{"gw1.example.org": {wirefleet.RoleGateway}}}
	repl := a.replication(func(w http.ResponseWriter, r *http.Request, c replication.Caller) { w.WriteHeader(299) })
	stats := a.sessions(func(w http.ResponseWriter, r *http.Request, c sessions.Caller) error {
		w.Header().Set("X-Caller", c.Name)
		w.WriteHeader(299)
		return nil
	}, wirefleet.RoleGateway, wirefleet.RoleAdmin)
	cert := func(cn string) *tls.ConnectionState {
		return &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{{Subject: pkix.Name{CommonName: cn}}}}}
	}
	gw, viewer := token(wirefleet.RoleGateway), token(wirefleet.RoleViewer)
	tests := []struct {
		name   string
		h      http.Handler
		auth   string
		tls    *tls.ConnectionState
		status int
		caller string
	}{
		{"replication, gateway token", repl, "Bearer " + gw, nil, 299, ""},
		{"replication, no credentials", repl, "", nil, 401, ""},
		{"replication, wrong token", repl, "Bearer wft_abcd_nope", nil, 401, ""},
		{"replication, basic auth", repl, "Basic eDp5", nil, 401, ""},
		{"stats, gateway token", stats, "Bearer " + gw, nil, 299, "token:"},
		{"stats, viewer token", stats, "Bearer " + viewer, nil, 403, ""},
		{"stats, gateway certificate", stats, "", cert("gw1.example.org"), 299, "cert:gw1.example.org"},
		{"stats, unknown certificate", stats, "", cert("stranger"), 403, ""},
		{"stats, token wins over certificate", stats, "Bearer " + viewer, cert("gw1.example.org"), 403, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/x", nil)
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			r.TLS = tc.tls
			w := httptest.NewRecorder()
			tc.h.ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if got := w.Header().Get("X-Caller"); tc.caller != "" && (len(got) < len(tc.caller) || got[:len(tc.caller)] != tc.caller) {
				t.Errorf("caller %q, want prefix %q", got, tc.caller)
			}
		})
	}
}
