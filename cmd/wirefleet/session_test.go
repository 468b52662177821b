package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/api"
	"github.com/wirefleet/wirefleet/internal/api/mount"
	"github.com/wirefleet/wirefleet/internal/api/wire"
	"github.com/wirefleet/wirefleet/internal/control"
	"github.com/wirefleet/wirefleet/internal/sessions"
	"github.com/wirefleet/wirefleet/internal/store/sqlite"
	"github.com/wirefleet/wirefleet/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var (
	keyA = wirefleet.MustParseKey("xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=")
	keyB = wirefleet.MustParseKey("HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=")
	keyC = wirefleet.MustParseKey("TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=")
)

// testAPI is the REST API on a real SQLite store with the real session tracker behind
// its stats and sessions routes, served by httptest.
type testAPI struct {
	svc     *control.Service
	clock   *testenv.Clock
	tracker *sessions.Tracker
	hs      *httptest.Server
}

func newTestAPI(t *testing.T) *testAPI {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "wirefleet.db"), sqlite.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := control.New(st, control.Options{Logger: log})
	clock := testenv.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	tracker := sessions.New(sessions.Config{Inactivity: 10 * time.Minute, Now: clock.Now, Logger: log})
	srv, err := api.New(api.Config{Service: svc, Logger: log, Sessions: mount.Sessions(sessions.Handler{T: tracker})})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	for i, name := range []string{"office", "lab"} {
		if _, err := svc.CreateNetwork(ctx, control.NetworkInput{Name: name, IPv4: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, 100 + byte(i), 1}), 24)}); err != nil {
			t.Fatal(err)
		}
	}
	return &testAPI{svc: svc, clock: clock, tracker: tracker, hs: hs}
}

// TestSessionList runs `wirefleet session list` against the real API (real SQLite store,
// real session tracker fed through POST /api/v1/stats by a gateway token).
func TestSessionList(t *testing.T) {
	ctx := context.Background()
	a := newTestAPI(t)
	svc, clock, tracker, hs := a.svc, a.clock, a.tracker, a.hs
	token := func(roles []wirefleet.Role, networks ...string) string {
		_, s, err := svc.CreateToken(ctx, control.TokenInput{Roles: roles, Networks: networks})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	admin, gw := token([]wirefleet.Role{wirefleet.RoleAdmin}), token([]wirefleet.Role{wirefleet.RoleGateway})
	labViewer := token([]wirefleet.Role{wirefleet.RoleViewer}, "lab")
	push := func(network string, k wirefleet.Key, handshake time.Time, rx, tx int64) {
		body, _ := json.Marshal(map[string]any{"gateway": "gw1", "peers": []any{map[string]any{
			"network": network, "public_key": k, "last_handshake": handshake, "rx_bytes": rx, "tx_bytes": tx}}})
		req, _ := http.NewRequest("POST", hs.URL+"/api/v1/stats", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+gw)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 204 {
			t.Fatalf("push stats: %d", resp.StatusCode)
		}
	}
	// A connects and goes quiet (closed by the inactivity sweep); then B and C connect.
	// A gateway's first report of a peer is the counters' baseline: sessions count the
	// bytes of later reports.
	t0 := clock.Now()
	push("office", keyA, t0.Add(-5*time.Minute), 1000, 1000)
	push("office", keyA, t0.Add(-5*time.Minute), 3048, 5096)
	clock.Advance(11 * time.Minute)
	if n := tracker.Sweep(); n != 1 {
		t.Fatalf("sweep closed %d sessions, want 1", n)
	}
	push("lab", keyC, t0.Add(9*time.Minute), 0, 0)
	push("lab", keyC, t0.Add(9*time.Minute), 3<<19, 5<<30)
	push("office", keyB, t0.Add(10*time.Minute), 0, 0)
	push("office", keyB, t0.Add(10*time.Minute), 100, 200)

	run := func(secret string, args ...string) (string, error) {
		var out, errb strings.Builder
		err := runSessionList(ctx, append([]string{"-server", hs.URL, "-token", secret}, args...), &out, &errb)
		return out.String(), err
	}
	out, err := run(admin)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/session_list.golden", out)

	out, err = run(admin, "office", "--open")
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.Contains(lines[1], keyB.String()) {
		t.Errorf("office --open:\n%s", out)
	}

	out, err = run(admin, "-peer", keyA.String(), "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var got []wire.Session
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("json output %q: %v", out, err)
	}
	end := t0.Add(11 * time.Minute)
	want := []wire.Session{{Protocol: "wireguard", Network: "office", PublicKey: keyA, Gateway: "gw1",
		Start: t0.Add(-5 * time.Minute), LastSeen: t0.Add(-5 * time.Minute), End: &end, RxBytes: 2048, TxBytes: 4096}}
	if diff := cmp.Diff(want, got, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".ID" }, cmp.Ignore())); diff != "" {
		t.Errorf("-peer A -o json (-want +got):\n%s", diff)
	}

	// A viewer scoped to lab sees lab only, and is refused office with the server's reason.
	if out, err = run(labViewer); err != nil || strings.Contains(out, "office") || !strings.Contains(out, keyC.String()) {
		t.Errorf("scoped viewer: %v\n%s", err, out)
	}
	if _, err = run(labViewer, "office"); wirefleet.KindOf(err) != wirefleet.KindForbidden || !strings.Contains(err.Error(), "office") {
		t.Errorf("scoped viewer asking for office: %v", err)
	}
	if out, err = run(admin, "-peer", keyA.String(), "-open"); err != nil || strings.Count(out, "\n") != 1 {
		t.Errorf("closed peer with -open: %v\n%s", err, out)
	}

	for _, args := range [][]string{{"a", "b"}, {"-peer", "nope"}, {"-o", "yaml"}} {
		if _, err := run(admin, args...); !errors.Is(err, errUsage) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	testenv.Golden(t, path, []byte(got), *update)
}

func TestFmtBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 3 << 19: "1.5 MiB", 5 << 30: "5.0 GiB"} {
		if got := fmtBytes(n); got != want {
			t.Errorf("fmtBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
