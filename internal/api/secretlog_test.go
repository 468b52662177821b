package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/api/wire"
	"github.com/wirefleet/wirefleet/internal/control"
	"github.com/wirefleet/wirefleet/internal/store/sqlite"
	"github.com/wirefleet/wirefleet/internal/testenv"
	"github.com/wirefleet/wirefleet/internal/wgquick"
)

// newLoggedEnv is newEnv with the store, the service and the API all logging at debug
// level (what `wirefleet server -debug` does) into one buffer.
func newLoggedEnv(t *testing.T, logs *testenv.Buffer) *env {
	t.Helper()
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "wirefleet.db"), sqlite.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clock := testenv.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	svc := control.New(st, control.Options{Now: clock.Now, Logger: log})
	srv, err := New(Config{Service: svc, Now: clock.Now, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	e := &env{t: t, svc: svc, srv: srv, http: hs, clock: clock}
	e.admin = e.token(control.TokenInput{Name: "admin", Roles: []wirefleet.Role{wirefleet.RoleAdmin}})
	return e
}

// TestSecretsNeverLogged: with request logging at debug level, authenticated requests with
// valid, wrong, malformed, expired and revoked tokens, token creation (whose answer carries
// a secret), client configs (a private key) and an import (a network private key) leave
// no secret and no Authorization value in the log.
func TestSecretsNeverLogged(t *testing.T) {
	logs := &testenv.Buffer{}
	e := newLoggedEnv(t, logs)
	n := e.network()
	secrets := []string{e.admin}

	// A token created through the API: its secret is in the response.
	var created wire.TokenCreated
	e.do("POST", "/api/v1/tokens", e.admin, wire.TokenCreate{Name: "ci", Roles: []wirefleet.Role{wirefleet.RoleOperator}}).want(t, 201, &created)
	secrets = append(secrets, created.Secret)
	e.do("GET", "/api/v1/networks", created.Secret, nil).want(t, 200, nil)
	e.do("GET", "/api/v1/tokens", created.Secret, nil).want(t, 403, nil) // operator: not tokens

	// Wrong secrets: a known token id with the wrong random part, and garbage.
	id, _ := wirefleet.TokenIDFromSecret(created.Secret)
	wrong := wirefleet.TokenSecretPrefix + id + "_Xq9ZwrongwrongwrongwrongwrongQ7"
	garbage := "not-a-wirefleet-token-Zk3pQ"
	secrets = append(secrets, wrong, garbage)
	e.do("GET", "/api/v1/networks", wrong, nil).want(t, 401, nil)
	e.do("GET", "/api/v1/networks", garbage, nil).want(t, 401, nil)

	// Expired and revoked tokens.
	expiring := e.token(control.TokenInput{Name: "short", Roles: []wirefleet.Role{wirefleet.RoleViewer}, ExpiresAt: ptr(e.clock.Now().Add(time.Minute))})
	secrets = append(secrets, expiring)
	e.do("GET", "/api/v1/networks", expiring, nil).want(t, 200, nil)
	e.clock.Advance(2 * time.Minute)
	e.do("GET", "/api/v1/networks", expiring, nil).want(t, 401, nil)
	e.do("DELETE", "/api/v1/tokens/"+created.Token.ID, e.admin, nil).want(t, 204, nil)
	e.do("GET", "/api/v1/networks", created.Secret, nil).want(t, 401, nil)

	// Another scheme carrying a secret.
	req := e.request("GET", "/api/v1/networks", "", nil)
	req.Header.Set("Authorization", "Basic "+e.admin)
	if r := e.send(req); r.status != http.StatusUnauthorized {
		t.Errorf("Basic auth: status %d, want 401", r.status)
	}

	// A client config carries the client's private and preshared keys.
	var c wire.Client
	e.do("POST", "/api/v1/networks/"+n.Name+"/clients", e.admin, wire.ClientCreate{Name: "phone"}).want(t, 201, &c)
	cfg, err := wgquick.Parse(strings.NewReader(c.Config))
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, cfg.Interface.PrivateKey.String(), cfg.Peers[0].PresharedKey.String())

	// An import carries the network's private key and peers' preshared keys; a failing one
	// (duplicate name) must not echo the file either.
	const netKey, psk = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=", "FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE="
	conf := "[Interface]\nAddress = 198.51.100.1/24\nPrivateKey = " + netKey + "\n[Peer]\nPublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\nPresharedKey = " + psk + "\nAllowedIPs = 198.51.100.2/32\n"
	secrets = append(secrets, netKey, psk)
	e.do("POST", "/api/v1/networks/import", e.admin, wire.NetworkImport{Name: "estate", Config: conf}).want(t, 201, nil)
	e.do("POST", "/api/v1/networks/import", e.admin, wire.NetworkImport{Name: "estate", Config: conf}).want(t, 409, nil)
	e.do("POST", "/api/v1/networks/import", e.admin, wire.NetworkImport{Name: "broken", Config: conf + "PrivateKey = " + netKey + "\nnonsense\n"}).want(t, 400, nil)

	out := logs.String()
	// The log is really on: one debug line for each of the 14 requests above.
	if got := strings.Count(out, "msg=request"); got != 14 {
		t.Fatalf("%d request lines in the debug log, want 14 (is request logging on?):\n%s", got, out)
	}
	if !strings.Contains(out, "caller=token:"+id) {
		t.Errorf("the request log does not name the caller by token id:\n%s", out)
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("the log contains the secret %q:\n%s", s, out)
		}
		// The random part alone is as good as the secret.
		// "wft_<id>_<random>": the id (no "_") is not secret; the random part is.
		rest, isToken := strings.CutPrefix(s, wirefleet.TokenSecretPrefix)
		if _, rnd, ok := strings.Cut(rest, "_"); isToken && ok && len(rnd) >= 8 && strings.Contains(out, rnd) {
			t.Errorf("the log contains the random part of the secret %q", s)
		}
	}
	for _, banned := range []string{"Bearer", "Basic", "Authorization", "authorization"} {
		if strings.Contains(out, banned) {
			t.Errorf("the log contains %q:\n%s", banned, out)
		}
	}
}

func ptr[T any](v T) *T { return &v }
