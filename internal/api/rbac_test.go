package api

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/api/wire"
	"github.com/wirefleet/wirefleet/internal/control"
)

// fixture prepares a request that succeeds for an authorised caller: it may create the
// resources the route acts on (through the service, not the API under test).
type fixture func(e *env) (path string, body any, status int)

// fixtures has one entry per protected route, keyed "METHOD pattern". The matrix test fails
// for a route without one, so every new route is covered by construction.
var fixtures = map[string]fixture{
	"GET /api/v1/networks": func(e *env) (string, any, int) { return "/api/v1/networks", nil, 200 },
	"POST /api/v1/networks": func(e *env) (string, any, int) {
		e.seq++
		return "/api/v1/networks", wire.NetworkCreate{Name: "c" + itoa(e.seq), IPv4: "198.51.100.1/24"}, 201
	},
	"POST /api/v1/networks/import": func(e *env) (string, any, int) {
		e.seq++
		return "/api/v1/networks/import", wire.NetworkImport{Name: "i" + itoa(e.seq), Config: "[Interface]\nAddress = 198.51.100.1/24\n"}, 201
	},
	"GET /api/v1/networks/{network}": func(e *env) (string, any, int) {
		return "/api/v1/networks/" + e.network().Name, nil, 200
	},
	"PATCH /api/v1/networks/{network}": func(e *env) (string, any, int) {
		return "/api/v1/networks/" + e.network().Name, `{"mtu":1400}`, 200
	},
	"DELETE /api/v1/networks/{network}": func(e *env) (string, any, int) {
		return "/api/v1/networks/" + e.network().Name, nil, 204
	},
	"GET /api/v1/networks/{network}/peers": func(e *env) (string, any, int) {
		return "/api/v1/networks/" + e.network().Name + "/peers", nil, 200
	},
	"POST /api/v1/networks/{network}/peers": func(e *env) (string, any, int) {
		k, _ := wirefleet.GeneratePrivateKey()
		return "/api/v1/networks/" + e.network().Name + "/peers", wire.PeerCreate{PublicKey: k.PublicKey()}, 201
	},
	"GET /api/v1/networks/{network}/peers/{key}": func(e *env) (string, any, int) {
		return peerURL(e), nil, 200
	},
	"PATCH /api/v1/networks/{network}/peers/{key}": func(e *env) (string, any, int) {
		return peerURL(e), `{"name":"renamed"}`, 200
	},
	"DELETE /api/v1/networks/{network}/peers/{key}": func(e *env) (string, any, int) {
		return peerURL(e), nil, 204
	},
	"POST /api/v1/networks/{network}/peers/{key}/enable": func(e *env) (string, any, int) {
		return peerURL(e) + "/enable", nil, 200
	},
	"POST /api/v1/networks/{network}/peers/{key}/disable": func(e *env) (string, any, int) {
		return peerURL(e) + "/disable", nil, 200
	},
	"POST /api/v1/networks/{network}/clients": func(e *env) (string, any, int) {
		return "/api/v1/networks/" + e.network().Name + "/clients", wire.ClientCreate{Name: "c"}, 201
	},
	"GET /api/v1/tokens": func(e *env) (string, any, int) { return "/api/v1/tokens", nil, 200 },
	"POST /api/v1/tokens": func(e *env) (string, any, int) {
		return "/api/v1/tokens", wire.TokenCreate{Roles: []wirefleet.Role{wirefleet.RoleViewer}}, 201
	},
	"DELETE /api/v1/tokens/{id}": func(e *env) (string, any, int) {
		id, _ := wirefleet.TokenIDFromSecret(e.token(control.TokenInput{Roles: []wirefleet.Role{wirefleet.RoleViewer}}))
		return "/api/v1/tokens/" + id, nil, 204
	},

	// The log stream of an authorised caller starts (200) and ends at once: the matrix and
	// mTLS tests call e.endStreams first. Streaming itself: TestReplicationLogStreams.
	"GET /api/v1/replication/snapshot": func(e *env) (string, any, int) { return "/api/v1/replication/snapshot", nil, 200 },
	"GET /api/v1/replication/log":      func(e *env) (string, any, int) { return "/api/v1/replication/log?after=0", nil, 200 },
	"POST /api/v1/stats": func(e *env) (string, any, int) {
		p := e.peer(e.network().Name)
		return "/api/v1/stats", map[string]any{"gateway": "gw1", "peers": []any{map[string]any{
			"network": p.Network, "public_key": p.PublicKey, "last_handshake": e.clock.Now(), "rx_bytes": 1, "tx_bytes": 2}}}, 204
	},
	"GET /api/v1/sessions":        func(e *env) (string, any, int) { return "/api/v1/sessions", nil, 200 },
	"GET /api/v1/sessions/events": func(e *env) (string, any, int) { return "/api/v1/sessions/events", nil, 200 },
	"GET /api/v1/sessions/peers":  func(e *env) (string, any, int) { return "/api/v1/sessions/peers", nil, 200 },
}

func peerURL(e *env) string {
	n := e.network()
	p := e.peer(n.Name)
	return "/api/v1/networks/" + n.Name + "/peers/" + url.PathEscape(p.PublicKey.String())
}

// placeholder turns a pattern into a concrete path for requests that must be refused before
// any resource is looked up.
func placeholder(pattern string) string {
	r := strings.NewReplacer("{network}", "nosuch", "{key}", urlKey(wirefleet.MustParseKey("xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=")), "{id}", "nosuchid")
	return r.Replace(pattern)
}

// TestRBACMatrix runs every route × every role × {valid, none, expired, wrong secret,
// revoked} and asserts the exact status.
func TestRBACMatrix(t *testing.T) {
	e := newEnv(t, Config{})
	e.endStreams()
	type creds struct{ valid, expired, wrong, revoked string }
	byRole := map[wirefleet.Role]creds{}
	soon := e.clock.Now().Add(time.Minute)
	for _, r := range wirefleet.Roles {
		c := creds{
			valid:   e.token(control.TokenInput{Name: string(r), Roles: []wirefleet.Role{r}}),
			expired: e.token(control.TokenInput{Roles: []wirefleet.Role{r}, ExpiresAt: &soon}),
			revoked: e.token(control.TokenInput{Roles: []wirefleet.Role{r}}),
		}
		id, _ := wirefleet.TokenIDFromSecret(c.valid)
		c.wrong = wirefleet.TokenSecretPrefix + id + "_" + strings.Repeat("a", 52) // right id, wrong secret
		revokedID, _ := wirefleet.TokenIDFromSecret(c.revoked)
		if err := e.svc.RevokeToken(t.Context(), revokedID); err != nil {
			t.Fatal(err)
		}
		byRole[r] = c
	}
	e.clock.Advance(2 * time.Minute) // the "expired" tokens are now past their expiry

	for _, rt := range e.srv.routes {
		key := rt.method + " " + rt.pattern
		if rt.perm == permPublic {
			continue
		}
		fx, ok := fixtures[key]
		if !ok {
			t.Errorf("route %s has no fixture in rbac_test.go: add one", key)
			continue
		}
		for _, role := range wirefleet.Roles {
			c := byRole[role]
			allowed := Principal{Roles: []wirefleet.Role{role}}.can(rt.perm)
			cases := []struct {
				cred   string
				secret string
				want   int
			}{
				{"none", "", 401},
				{"expired", c.expired, 401},
				{"wrong", c.wrong, 401},
				{"revoked", c.revoked, 401},
				{"valid", c.valid, 403},
			}
			for _, tc := range cases {
				t.Run(fmt.Sprintf("%s/%s/%s", key, role, tc.cred), func(t *testing.T) {
					path, body, want := placeholder(rt.pattern), any(nil), tc.want
					if tc.cred == "valid" && allowed {
						path, body, want = fx(e)
					}
					r := e.do(rt.method, path, tc.secret, body)
					if r.status != want {
						t.Fatalf("%s %s as %s with %s token: status %d, want %d; body %s", rt.method, path, role, tc.cred, r.status, want, r.body)
					}
					if want >= 400 {
						r.problem(t)
					}
				})
			}
		}
	}
	for _, rt := range e.srv.routes {
		if rt.perm == permPublic {
			for _, secret := range []string{"", byRole[wirefleet.RoleViewer].wrong} {
				if r := e.do(rt.method, rt.pattern, secret, nil); r.status != 200 {
					t.Errorf("public %s %s: %d", rt.method, rt.pattern, r.status)
				}
			}
		}
	}
}

// TestRolePermsCoverRoles keeps the RBAC table in step with the domain's role list.
func TestRolePermsCoverRoles(t *testing.T) {
	for _, r := range wirefleet.Roles {
		if _, ok := rolePerms[r]; !ok {
			t.Errorf("role %s has no entry in rolePerms", r)
		}
	}
	if len(rolePerms) != len(wirefleet.Roles) {
		t.Errorf("rolePerms has %d roles, the domain %d", len(rolePerms), len(wirefleet.Roles))
	}
}
