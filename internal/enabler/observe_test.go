package enabler

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/api"
	"github.com/wirefleet/wirefleet/internal/control"
	"github.com/wirefleet/wirefleet/internal/store/sqlite"
	"github.com/wirefleet/wirefleet/internal/wgdev"
	"github.com/wirefleet/wirefleet/internal/wgdev/wgdevtest"
)

// TestObserver wires the observer as Run does (real SQLite store, the REST API with the
// replication and sessions routes) over an in-memory device with known counters: the
// per-peer metrics, a session opened from the device's statistics under the gateway
// "local", and a replication snapshot that carries the client.
func TestObserver(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), DBFile), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc := control.New(st, control.Options{})
	log := slog.New(slog.DiscardHandler)
	cfg := Default()
	cfg.ServerIP, cfg.Subnet = "vpn.example.test", "198.51.100.1/29"
	s, err := cfg.parse()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ensureNetwork(ctx, svc, cfg, s, log); err != nil {
		t.Fatal(err)
	}
	priv, _ := wirefleet.GeneratePrivateKey()
	pub := priv.PublicKey()
	if _, err := svc.CreatePeer(ctx, control.PeerInput{Network: "wg0", PublicKey: pub}); err != nil {
		t.Fatal(err)
	}
	_, admin, err := svc.CreateToken(ctx, control.TokenInput{Name: "admin", Roles: []wirefleet.Role{wirefleet.RoleAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	dev := wgdevtest.NewMemory("wg0")
	if err := dev.ApplyPeers(ctx, []wgdev.Peer{{PublicKey: pub}}, nil); err != nil {
		t.Fatal(err)
	}
	hs := time.Now().Add(-5 * time.Second).Truncate(time.Second)
	dev.SetStats(pub, hs, 1234, 5678)

	obs := newObserver(svc, dev, "wg0", time.Hour, log)
	defer obs.stopStreams()
	repl, sess := obs.apiRoutes()
	h, err := api.New(api.Config{Service: svc, Logger: log, Replication: repl, Sessions: sess})
	if err != nil {
		t.Fatal(err)
	}
	rest := httptest.NewServer(obs.restHandler(h))
	defer rest.Close()
	mon := httptest.NewServer(obs.metricsHandler())
	defer mon.Close()

	get := func(base, path, token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	for _, base := range []string{rest.URL, mon.URL} {
		code, body := get(base, "/metrics", "")
		for _, want := range []string{
			`wirefleet_peer_receive_bytes_total{network="wg0",public_key="` + pub.String() + `"} 1234`,
			`wirefleet_peer_transmit_bytes_total{network="wg0",public_key="` + pub.String() + `"} 5678`,
			"go_goroutines",
		} {
			if code != 200 || !strings.Contains(body, want) {
				t.Errorf("GET %s/metrics: %d, lacks %q", base, code, want)
			}
		}
	}
	if code, body := get(mon.URL, "/readyz", ""); code != 200 {
		t.Errorf("GET /readyz: %d %s", code, body)
	}

	// Before the first device read: no session. After it: one open session of "local".
	type session struct {
		Protocol, Network, Gateway string
		PublicKey                  wirefleet.Key `json:"public_key"`
		End                        *time.Time
	}
	list := func() []session {
		t.Helper()
		code, body := get(rest.URL, "/api/v1/sessions", admin)
		var out struct{ Sessions []session }
		if code != 200 || json.Unmarshal([]byte(body), &out) != nil {
			t.Fatalf("GET /api/v1/sessions: %d %s", code, body)
		}
		return out.Sessions
	}
	if got := list(); len(got) != 0 {
		t.Errorf("sessions before any device read: %+v", got)
	}
	obs.collect(ctx)
	want := []session{{Protocol: "wireguard", Network: "wg0", Gateway: LocalGatewayName, PublicKey: pub}}
	if diff := cmp.Diff(want, list()); diff != "" {
		t.Errorf("sessions after a device read (-want +got):\n%s", diff)
	}
	if code, _ := get(rest.URL, "/api/v1/sessions", ""); code != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/sessions without a token: %d, want 401", code)
	}

	// Replication: a snapshot for a gateway token scoped to the network has the client.
	_, gw, err := svc.CreateToken(ctx, control.TokenInput{Name: "gw", Roles: []wirefleet.Role{wirefleet.RoleGateway}, Networks: []string{"wg0"}})
	if err != nil {
		t.Fatal(err)
	}
	if code, body := get(rest.URL, "/api/v1/replication/snapshot", gw); code != 200 || !strings.Contains(body, pub.String()) {
		t.Errorf("GET /api/v1/replication/snapshot: %d %.300s", code, body)
	}
}
