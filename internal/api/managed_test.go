package api

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/control"
	"github.com/wirefleet/wirefleet/internal/sessions"
)

// TestManagedRoutesByRole states, independently of rolePerms, which roles reach the
// replication, stats and sessions routes: follower only replication, gateway replication
// and stats, viewer and operator the session reads, registrar nothing, admin everything.
func TestManagedRoutesByRole(t *testing.T) {
	e := newEnv(t, Config{})
	e.endStreams()
	const (
		snap   = "GET /api/v1/replication/snapshot"
		log    = "GET /api/v1/replication/log"
		stats  = "POST /api/v1/stats"
		list   = "GET /api/v1/sessions"
		events = "GET /api/v1/sessions/events"
		peers  = "GET /api/v1/sessions/peers"
	)
	routes := []string{snap, log, stats, list, events, peers}
	allowed := map[wirefleet.Role][]string{
		wirefleet.RoleAdmin:     routes,
		wirefleet.RoleOperator:  {list, events, peers},
		wirefleet.RoleViewer:    {list, events, peers},
		wirefleet.RoleGateway:   {snap, log, stats},
		wirefleet.RoleFollower:  {snap, log},
		wirefleet.RoleRegistrar: nil,
	}
	for _, role := range wirefleet.Roles {
		secret := e.token(control.TokenInput{Roles: []wirefleet.Role{role}})
		got := map[string]int{}
		want := map[string]int{}
		for _, key := range routes {
			method, pattern, _ := strings.Cut(key, " ")
			path, body, ok := fixtures[key](e)
			want[key] = 403
			for _, a := range allowed[role] {
				if a == key {
					want[key] = ok
				}
			}
			if want[key] == 403 {
				path, body = pattern, nil
			}
			got[key] = e.do(method, path, secret, body).status
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("role %s (-want +got):\n%s", role, diff)
		}
	}
}

// TestReplicationLogStreams: the log stream goes through the API's wrapper and still
// flushes each op and heartbeat as it happens (the wrapper unwraps to the connection).
// Unflushed, the lines would wait in the connection's 4 KiB buffer: about 27 heartbeats of
// 200 ms, beyond the deadline.
func TestReplicationLogStreams(t *testing.T) {
	e := newEnv(t, Config{})
	gw := e.token(control.TokenInput{Roles: []wirefleet.Role{wirefleet.RoleGateway}})
	n := e.network()
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Second)
	defer cancel()
	req := e.request("GET", "/api/v1/replication/log?after=0", gw, nil).WithContext(ctx)
	resp, err := e.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := bufio.NewScanner(resp.Body)
	next := func() map[string]any {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("stream ended: %v", lines.Err())
		}
		var m map[string]any
		if err := json.Unmarshal(lines.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", lines.Text(), err)
		}
		return m
	}
	// Ops already in the log, then (while the stream stays open) one made afterwards.
	var sawNetwork bool
	for !sawNetwork {
		op := next()
		sawNetwork = op["type"] == string(wirefleet.OpNetworkPut) && op["key"] == "network/"+n.Name
	}
	p := e.peer(n.Name)
	for {
		if op := next(); op["type"] == string(wirefleet.OpPeerPut) && op["key"] == wirefleet.PeerKey(n.Name, p.PublicKey) {
			break
		}
	}
	for {
		if op := next(); op["type"] == "heartbeat" {
			break
		}
	}
}

// TestStatusWriterUnwraps: http.ResponseController reaches the connection through the
// status-recording writer (Flush and write deadlines of streams).
func TestStatusWriterUnwraps(t *testing.T) {
	rec := httptest.NewRecorder()
	w := &statusWriter{ResponseWriter: rec}
	if err := http.NewResponseController(w).Flush(); err != nil {
		t.Fatalf("Flush through statusWriter: %v", err)
	}
	if !rec.Flushed || w.status != http.StatusOK {
		t.Errorf("flushed %v, status %d", rec.Flushed, w.status)
	}
}

// TestManagedRoutesScope: a token scoped to one network sees and reports only that
// network, on every managed route.
func TestManagedRoutesScope(t *testing.T) {
	e := newEnv(t, Config{})
	e.endStreams()
	a, b := e.network(), e.network()
	pa, pb := e.peer(a.Name), e.peer(b.Name)
	at := e.clock.Now()
	report := func(ps ...wirefleet.Peer) map[string]any {
		var list []any
		for _, p := range ps {
			list = append(list, map[string]any{"network": p.Network, "public_key": p.PublicKey, "last_handshake": at, "rx_bytes": 10, "tx_bytes": 20})
		}
		return map[string]any{"gateway": "gw1", "peers": list}
	}
	e.do("POST", "/api/v1/stats", e.admin, report(pa, pb)).want(t, 204, nil)

	scoped := []wirefleet.Role{wirefleet.RoleGateway}
	gwA := e.token(control.TokenInput{Roles: scoped, Networks: []string{a.Name}})
	if r := e.do("POST", "/api/v1/stats", gwA, report(pb)); r.status != 403 {
		t.Errorf("scoped gateway reporting another network: %d %s", r.status, r.body)
	}
	e.do("POST", "/api/v1/stats", gwA, report(pa)).want(t, 204, nil)
	var snap wirefleet.Snapshot
	e.do("GET", "/api/v1/replication/snapshot", gwA, nil).want(t, 200, &snap)
	if len(snap.Networks) != 1 || snap.Networks[0].Name != a.Name || len(snap.Peers) != 1 || len(snap.Tokens) != 0 {
		t.Errorf("scoped snapshot: %d networks, %d peers, %d tokens", len(snap.Networks), len(snap.Peers), len(snap.Tokens))
	}

	viewA := e.token(control.TokenInput{Roles: []wirefleet.Role{wirefleet.RoleViewer}, Networks: []string{a.Name}})
	var list struct{ Sessions []sessions.Session }
	e.do("GET", "/api/v1/sessions", viewA, nil).want(t, 200, &list)
	if len(list.Sessions) != 1 || list.Sessions[0].Network != a.Name || list.Sessions[0].PublicKey != pa.PublicKey {
		t.Errorf("scoped viewer's sessions: %+v", list.Sessions)
	}
	if r := e.do("GET", "/api/v1/sessions?network="+b.Name, viewA, nil); r.status != 403 {
		t.Errorf("scoped viewer asking for another network: %d", r.status)
	} else {
		r.problem(t)
	}
	e.do("GET", "/api/v1/sessions", e.admin, nil).want(t, 200, &list)
	if len(list.Sessions) != 2 {
		t.Errorf("admin sees %d sessions, want 2", len(list.Sessions))
	}
	var seen struct{ Peers []sessions.LastSeen }
	e.do("GET", "/api/v1/sessions/peers", viewA, nil).want(t, 200, &seen)
	if len(seen.Peers) != 1 || seen.Peers[0].PublicKey != pa.PublicKey {
		t.Errorf("scoped viewer's last-seen: %+v", seen.Peers)
	}
	r := e.do("GET", "/api/v1/sessions/events?since="+url.QueryEscape(at.Add(-time.Hour).Format(time.RFC3339)), viewA, nil)
	r.want(t, 200, nil)
	if got := strings.Count(string(r.body), "\n"); got != 1 || !strings.Contains(string(r.body), a.Name) {
		t.Errorf("scoped viewer's events (%d lines): %s", got, r.body)
	}
}

// TestManagedRoutesNotServed: an API built without the replication and sessions handlers
// still authenticates and authorises those routes, then answers 404 problem+json.
func TestManagedRoutesNotServed(t *testing.T) {
	e := newEnv(t, Config{})
	srv, err := New(Config{Service: e.svc, Logger: discard(), Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/v1/replication/snapshot", "/api/v1/sessions"} {
		for _, tc := range []struct {
			secret string
			want   int
		}{{"", http.StatusUnauthorized}, {e.admin, http.StatusNotFound}} {
			w := httptest.NewRecorder()
			r := httptest.NewRequest("GET", path, nil)
			if tc.secret != "" {
				r.Header.Set("Authorization", "Bearer "+tc.secret)
			}
			srv.ServeHTTP(w, r)
			if w.Code != tc.want || w.Header().Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s: %d %s, want %d problem+json", path, w.Code, w.Body, tc.want)
			}
		}
	}
}

// TestOpenAPIManagedSchemas: what the snapshot and session routes serve uses only
// documented properties and has every required one (optional members depend on the
// protocol and the caller, so a served object may have fewer).
func TestOpenAPIManagedSchemas(t *testing.T) {
	doc := openAPISchemas(t)
	e := newEnv(t, Config{})
	p := e.peer(e.network().Name)
	stats := func(rx int) map[string]any {
		return map[string]any{"gateway": "gw1", "peers": []any{map[string]any{"network": p.Network, "public_key": p.PublicKey, "last_handshake": e.clock.Now(), "rx_bytes": rx, "tx_bytes": rx}}}
	}
	e.do("POST", "/api/v1/stats", e.admin, stats(1)).want(t, 204, nil)
	e.do("POST", "/api/v1/stats", e.admin, stats(2)).want(t, 204, nil)
	var snap, list map[string]any
	e.do("GET", "/api/v1/replication/snapshot", e.admin, nil).want(t, 200, &snap)
	e.do("GET", "/api/v1/sessions", e.admin, nil).want(t, 200, &list)
	sessions, _ := list["sessions"].([]any)
	if len(sessions) != 1 {
		t.Fatalf("sessions: %v", list)
	}
	for name, obj := range map[string]map[string]any{"Snapshot": snap, "Session": sessions[0].(map[string]any)} {
		s := doc.Components.Schemas[name]
		for k := range obj {
			if _, ok := s.Properties[k]; !ok {
				t.Errorf("%s: served %q is not documented", name, k)
			}
		}
		for _, r := range s.Required {
			if _, ok := obj[r]; !ok {
				t.Errorf("%s: required %q not served", name, r)
			}
		}
	}
}
