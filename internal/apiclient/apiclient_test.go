package apiclient

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/api"
	"github.com/wirefleet/wirefleet/internal/api/wire"
	"github.com/wirefleet/wirefleet/internal/control"
	"github.com/wirefleet/wirefleet/internal/store/sqlite"
)

func newClient(t *testing.T) *Client {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := control.New(st, control.Options{Logger: log})
	srv, err := api.New(api.Config{Service: svc, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	_, secret, err := svc.CreateToken(ctx, control.TokenInput{Roles: []wirefleet.Role{wirefleet.RoleAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(hs.URL+"/", Options{Token: secret})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// keyWith returns a public key whose base64 form contains both '/' and '+', the characters
// that must survive as one path segment.
func keyWith(t *testing.T) wirefleet.Key {
	for range 10000 {
		k, _ := wirefleet.GeneratePrivateKey()
		if s := k.PublicKey().String(); strings.Contains(s, "/") && strings.Contains(s, "+") {
			return k.PublicKey()
		}
	}
	t.Fatal("no key with / and +")
	return wirefleet.Key{}
}

func TestRoundTrip(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	if _, err := c.CreateNetwork(ctx, wire.NetworkCreate{Name: "office", IPv4: "198.51.100.1/24"}); err != nil {
		t.Fatal(err)
	}
	k := keyWith(t)
	if _, err := c.CreatePeer(ctx, "office", wire.PeerCreate{PublicKey: k, Name: "slashy"}); err != nil {
		t.Fatal(err)
	}
	p, err := c.GetPeer(ctx, "office", k)
	if err != nil || p.PublicKey != k {
		t.Fatalf("GetPeer(%s) = %v, %v", k, p.PublicKey, err)
	}
	if p, err = c.SetPeerEnabled(ctx, "office", k, false); err != nil || p.Enabled {
		t.Fatalf("disable: %v %v", p.Enabled, err)
	}
	name := "renamed"
	if p, err = c.UpdatePeer(ctx, "office", k, wire.PeerUpdate{Name: &name}); err != nil || p.Name != name {
		t.Fatalf("update: %v %v", p.Name, err)
	}
	for range 5 {
		if _, err := c.CreateClient(ctx, "office", wire.ClientCreate{Name: "c"}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := c.ListAllPeers(ctx, "office", PeerQuery{Limit: 2})
	if err != nil || len(all) != 6 {
		t.Fatalf("ListAllPeers: %d peers, %v", len(all), err)
	}
	if err := c.DeletePeer(ctx, "office", k); err != nil {
		t.Fatal(err)
	}
	var calls int
	var last, total int64
	conf := "[Interface]\nAddress = 203.0.113.1/24\n[Peer]\nPublicKey = " + k.String() + "\nAllowedIPs = 203.0.113.2/32\n"
	out, err := c.ImportNetworkProgress(ctx, wire.NetworkImport{Name: "imp", Config: conf}, func(s, tot int64) { calls++; last, total = s, tot })
	if err != nil || out.Peers != 1 {
		t.Fatalf("import: %+v %v", out, err)
	}
	if calls == 0 || last != total || total == 0 {
		t.Errorf("progress: %d calls, last %d of %d", calls, last, total)
	}
}

func TestErrors(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	_, err := c.GetNetwork(ctx, "nosuch")
	var e *Error
	if !asError(err, &e) || e.Status != 404 || wirefleet.KindOf(err) != wirefleet.KindNotFound {
		t.Fatalf("GetNetwork(nosuch) = %v", err)
	}
	if !strings.Contains(err.Error(), `"nosuch"`) || !strings.HasSuffix(err.Error(), "(HTTP 404)") || strings.Contains(err.Error(), "\n") {
		t.Errorf("error text %q is not one clear line", err)
	}
	dead, _ := New("http://127.0.0.1:1", Options{})
	if _, err := dead.ListNetworks(ctx); wirefleet.KindOf(err) != wirefleet.KindUnavailable || !strings.Contains(err.Error(), "cannot reach") {
		t.Errorf("unreachable server: %v", err)
	}
	for _, bad := range []string{"", "ftp://x", "http://"} {
		if _, err := New(bad, Options{}); err == nil {
			t.Errorf("New(%q) succeeded", bad)
		}
	}
}

func asError(err error, target **Error) bool {
	e, ok := err.(*Error)
	if ok {
		*target = e
	}
	return ok
}
