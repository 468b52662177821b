package controlplane

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/e2e"
	"github.com/wirefleet/wirefleet/internal/testenv"
)

// call sends one request with an Authorization header (verbatim) and returns the status
// and body.
func call(t *testing.T, method, url, auth string, body any) (int, []byte) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	var req *http.Request
	var err error
	if rd != nil {
		req, err = http.NewRequest(method, url, rd)
		req.Header.Set("Content-Type", "application/json")
	} else {
		req, err = http.NewRequest(method, url, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	if _, err := out.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out.Bytes()
}

// assertLogClean fails if out holds any of the secrets, their random parts or an
// Authorization value.
func assertLogClean(t *testing.T, out string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s == "" {
			t.Fatal("empty secret: the test lost track of one")
		}
		if strings.Contains(out, s) {
			t.Errorf("the server's output contains the secret %q", s)
		}
		// "wft_<id>_<random>": the id (no "_") is not secret; the random part is.
		rest, isToken := strings.CutPrefix(s, wirefleet.TokenSecretPrefix)
		if _, rnd, ok := strings.Cut(rest, "_"); isToken && ok && len(rnd) >= 8 && strings.Contains(out, rnd) {
			t.Errorf("the server's output contains the random part of %q", s)
		}
	}
	for _, banned := range []string{"Bearer", "Authorization", "authorization"} {
		if strings.Contains(out, banned) {
			t.Errorf("the server's output contains %q", banned)
		}
	}
}

// TestServerLogsCarryNoSecrets: `wirefleet server -debug` (every request logged) from
// startup to shutdown, with requests carrying valid, wrong, garbage and revoked tokens and
// a token creation whose answer carries a secret: no secret and no Authorization value
// reaches its output.
func TestServerLogsCarryNoSecrets(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level test; runs in the full pass")
	}
	bin := e2e.Binary(t)
	dataDir := t.TempDir()
	admin := bootstrapToken(t, bin, dataDir)
	p := e2e.Start(t, nil, nil, bin, "server", "-data", dataDir, "-listen", "127.0.0.1:0", "-no-gateway", "-debug")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.WaitOutput(ctx, "control plane listening"); err != nil {
		t.Fatal(err)
	}
	m := addrRE.FindStringSubmatch(p.Output())
	if m == nil {
		t.Fatalf("no listen address in the output:\n%s", p.Output())
	}
	api := "http://" + m[1] + "/api/v1"

	expect := func(method, path, auth string, body any, want int) []byte {
		t.Helper()
		got, b := call(t, method, api+path, auth, body)
		if got != want {
			t.Fatalf("%s %s: status %d, want %d: %s", method, path, got, want, b)
		}
		return b
	}
	expect("GET", "/networks", "Bearer "+admin, nil, 200)
	var created struct {
		Token  struct{ ID string }
		Secret string
	}
	if err := json.Unmarshal(expect("POST", "/tokens", "Bearer "+admin, map[string]any{"name": "ci", "roles": []string{"viewer"}}, 201), &created); err != nil {
		t.Fatal(err)
	}
	id, _ := wirefleet.TokenIDFromSecret(created.Secret)
	wrong := wirefleet.TokenSecretPrefix + id + "_Qz7wrongwrongwrongwrongwrongK2"
	garbage := "garbage-token-Vb8nTq"
	expect("GET", "/networks", "Bearer "+created.Secret, nil, 200)
	expect("GET", "/networks", "Bearer "+wrong, nil, 401)
	expect("GET", "/networks", "Bearer "+garbage, nil, 401)
	expect("GET", "/networks", "Basic "+admin, nil, 401)
	expect("DELETE", "/tokens/"+created.Token.ID, "Bearer "+admin, nil, 204)
	expect("GET", "/networks", "Bearer "+created.Secret, nil, 401)
	if err := p.Stop(10 * time.Second); err != nil {
		t.Fatalf("server exit: %v", err)
	}

	out := p.Output()
	if n := strings.Count(out, "msg=request"); n != 8 {
		t.Fatalf("%d request lines in the -debug output, want 8:\n%s", n, out)
	}
	assertLogClean(t, out, admin, created.Secret, wrong, garbage)
}

// TestFirstRunLogsCarryNoSecrets: the all-in-one first run prints the admin token once,
// on stdout, as documented, and nowhere else; the local gateway's token (which it sends
// on every request to the API, logged with -debug) never appears; neither do tokens
// created through the API.
func TestFirstRunLogsCarryNoSecrets(t *testing.T) {
	testenv.Privileged(t)
	bin := e2e.Binary(t)
	ns := testenv.NewNetNS(t, "fls")
	ns.Exec(t, "ip", "link", "set", "lo", "up")
	data := t.TempDir()
	network := testenv.UniqueName("fl")
	p := e2e.Start(t, ns, nil, bin, "server", "-data", data, "-listen", "127.0.0.1:8080", "-debug", "-default-network", network,
		"-default-ipv4", "198.18.61.1/24", "-default-ipv6", "fd00:61::1/64", "-default-endpoint", "vpn.example.org",
		"-wg-backend", "userspace", "-drift-interval", "1s", "-stats-interval", "1s")
	tokenRE := regexp.MustCompile(`Admin token \(shown once, keep it\): (wft_\S+)`)
	var admin string
	e2e.Eventually(t, 20*time.Second, func() error {
		m := tokenRE.FindStringSubmatch(p.Output())
		if m == nil {
			return fmt.Errorf("no admin token printed yet")
		}
		admin = m[1]
		return nil
	})
	// The local gateway follows the API with its own token: wait for its requests.
	e2e.Eventually(t, 20*time.Second, func() error {
		if !strings.Contains(p.Output(), "path=/api/v1/stats") {
			return fmt.Errorf("no statistics push from the local gateway logged yet")
		}
		return nil
	})
	gw, err := os.ReadFile(filepath.Join(data, "local-gateway.token"))
	if err != nil {
		t.Fatal(err)
	}
	// Requests through the CLI inside the namespace: a token creation and a wrong token.
	run := func(token string, args ...string) (string, error) {
		cmd := ns.Command(bin, args...)
		cmd.Env = append(os.Environ(), "WIREFLEET_SERVER=http://127.0.0.1:8080", "WIREFLEET_TOKEN="+token)
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}
	viewer, err := run(admin, "token", "create", "-role", "viewer", "-name", "dash")
	if err != nil || !strings.HasPrefix(viewer, wirefleet.TokenSecretPrefix) {
		t.Fatalf("token create: %q, %v", viewer, err)
	}
	if _, err := run(viewer, "network", "list"); err != nil {
		t.Fatalf("network list with the new token: %v", err)
	}
	wrong := admin[:len(admin)-6] + "Zz9Qx7"
	if _, err := run(wrong, "network", "list"); err == nil {
		t.Fatal("a wrong token was accepted")
	}
	if err := p.Stop(10 * time.Second); err != nil {
		t.Fatalf("server exit: %v", err)
	}

	out := p.Output()
	if n := strings.Count(out, admin); n != 1 || len(tokenRE.FindAllString(out, -1)) != 1 {
		t.Errorf("the admin token appears %d times, want once (the first-run line)", n)
	}
	// Everything but that one line: the logs.
	logs := tokenRE.ReplaceAllString(out, "Admin token (shown once, keep it): <elided>")
	assertLogClean(t, logs, admin, strings.TrimSpace(string(gw)), viewer, wrong)
	if !strings.Contains(logs, "msg=request") {
		t.Fatalf("no request lines in the -debug output:\n%s", logs)
	}
}
