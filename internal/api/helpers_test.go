package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/control"
	"github.com/wirefleet/wirefleet/internal/replication"
	"github.com/wirefleet/wirefleet/internal/sessions"
	"github.com/wirefleet/wirefleet/internal/store/sqlite"
	"github.com/wirefleet/wirefleet/internal/testenv"
)

// env is an API server on a real SQLite file in t.TempDir().
type env struct {
	t     *testing.T
	svc   *control.Service
	srv   *Server
	http  *httptest.Server
	clock *testenv.Clock
	admin string // secret of an unscoped admin token
	seq   int
	// tracker is the real session tracker behind the sessions routes.
	tracker *sessions.Tracker
	// endStreams ends every replication log stream, now and later (a stream never ends by
	// itself; tests that only need its status call this first).
	endStreams func()
}

// replRoutes and sessionRoutes adapt the real replication and sessions handlers to the
// API's interfaces, as the composition root (internal/server) does.
type replRoutes struct{ h *replication.Handler }

func (x replRoutes) Snapshot(w http.ResponseWriter, r *http.Request, p Principal) {
	x.h.Snapshot(w, r, replication.Caller{Roles: p.Roles, Networks: p.Networks})
}

func (x replRoutes) Log(w http.ResponseWriter, r *http.Request, p Principal) {
	x.h.Log(w, r, replication.Caller{Roles: p.Roles, Networks: p.Networks})
}

type sessionRoutes struct{ h sessions.Handler }

func caller(p Principal) sessions.Caller { return sessions.Caller{Name: p.Name, Networks: p.Networks} }

func (x sessionRoutes) PushStats(w http.ResponseWriter, r *http.Request, p Principal) error {
	return x.h.PushStats(w, r, caller(p))
}
func (x sessionRoutes) List(w http.ResponseWriter, r *http.Request, p Principal) error {
	return x.h.List(w, r, caller(p))
}
func (x sessionRoutes) Events(w http.ResponseWriter, r *http.Request, p Principal) error {
	return x.h.Events(w, r, caller(p))
}
func (x sessionRoutes) LastSeen(w http.ResponseWriter, r *http.Request, p Principal) error {
	return x.h.LastSeen(w, r, caller(p))
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "wirefleet.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clock := testenv.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	svc := control.New(st, control.Options{Now: clock.Now, Logger: discard()})
	cfg.Service = svc
	cfg.Now = clock.Now
	if cfg.Logger == nil {
		cfg.Logger = discard()
	}
	stop := make(chan struct{})
	endStreams := sync.OnceFunc(func() { close(stop) })
	tracker := sessions.New(sessions.Config{Now: clock.Now, Logger: discard()})
	if cfg.Replication == nil {
		cfg.Replication = replRoutes{replication.NewHandler(replication.Options{Source: svc, Heartbeat: 200 * time.Millisecond, Logger: discard(), Stop: stop})}
	}
	if cfg.Sessions == nil {
		cfg.Sessions = sessionRoutes{sessions.Handler{T: tracker}}
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	t.Cleanup(endStreams)
	e := &env{t: t, svc: svc, srv: srv, http: hs, clock: clock, tracker: tracker, endStreams: endStreams}
	e.admin = e.token(control.TokenInput{Name: "admin", Roles: []wirefleet.Role{wirefleet.RoleAdmin}})
	return e
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// token creates a token through the service and returns its secret.
func (e *env) token(in control.TokenInput) string {
	e.t.Helper()
	_, secret, err := e.svc.CreateToken(context.Background(), in)
	if err != nil {
		e.t.Fatal(err)
	}
	return secret
}

// network creates a fresh dual-stack network with a unique name through the service.
func (e *env) network() wirefleet.Network {
	e.t.Helper()
	e.seq++
	n, err := e.svc.CreateNetwork(context.Background(), control.NetworkInput{
		Name:     "n" + itoa(e.seq),
		IPv4:     netip.MustParsePrefix("198.51.100.1/24"),
		IPv6:     netip.MustParsePrefix("2001:db8:1::1/64"),
		Endpoint: "vpn.example.org",
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// peer creates a peer with a fresh key in network.
func (e *env) peer(network string) wirefleet.Peer {
	e.t.Helper()
	k, err := wirefleet.GeneratePrivateKey()
	if err != nil {
		e.t.Fatal(err)
	}
	p, err := e.svc.CreatePeer(context.Background(), control.PeerInput{Network: network, PublicKey: k.PublicKey(), Name: "p"})
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request with an optional bearer secret and JSON body.
func (e *env) do(method, path, secret string, body any) response {
	e.t.Helper()
	return e.send(e.request(method, path, secret, body))
}

func (e *env) request(method, path, secret string, body any) *http.Request {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.http.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	return req
}

func (e *env) send(req *http.Request) response {
	e.t.Helper()
	resp, err := e.http.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	return readResponse(e.t, resp)
}

func readResponse(t *testing.T, resp *http.Response) response {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// want fails unless the response has the status; it decodes the body into v (if non-nil).
func (r response) want(t *testing.T, status int, v any) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body: %s", r.status, status, r.body)
	}
	if v != nil {
		if err := json.Unmarshal(r.body, v); err != nil {
			t.Fatalf("decode %s: %v", r.body, err)
		}
	}
}

// problem decodes a problem+json body, failing if it is not one.
func (r response) problem(t *testing.T) Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json; body %s", ct, r.body)
	}
	var p Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Status != r.status {
		t.Errorf("problem status %d != HTTP status %d", p.Status, r.status)
	}
	return p
}

// urlKey is the URL-safe path form of a key.
func urlKey(k wirefleet.Key) string {
	return strings.NewReplacer("+", "-", "/", "_").Replace(k.String())
}
