package replication

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wirefleet/wirefleet"
)

// kvApplier is a minimal consumer: key → op type, plus what happened to it.
type kvApplier struct {
	mu        sync.Mutex
	seq       uint64
	hash      wirefleet.Hash
	state     map[string]string // key → value JSON
	resets    int
	applied   []uint64
	elided    int
	sawSecret bool
}

func newKV() *kvApplier { return &kvApplier{state: map[string]string{}} }

func (a *kvApplier) Position() (uint64, wirefleet.Hash) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seq, a.hash
}

func (a *kvApplier) Reset(ctx context.Context, snap wirefleet.Snapshot) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.resets++
	a.state = map[string]string{}
	for _, n := range snap.Networks {
		a.state[wirefleet.NetworkKey(n.Name)] = "network"
	}
	for _, p := range snap.Peers {
		a.state[wirefleet.PeerKey(p.Network, p.PublicKey)] = "peer"
	}
	for _, t := range snap.Tokens {
		a.state[wirefleet.TokenKey(t.ID)] = "token"
	}
	a.seq, a.hash = snap.Seq, snap.Hash
	return nil
}

func (a *kvApplier) Apply(ctx context.Context, ops []wirefleet.Op) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, op := range ops {
		switch op.Type {
		case TypeElided:
			a.elided++
		case wirefleet.OpNetworkPut:
			a.state[op.Key] = "network"
		case wirefleet.OpPeerPut:
			a.state[op.Key] = "peer"
		case wirefleet.OpTokenPut:
			a.state[op.Key] = "token"
			a.sawSecret = true
		case wirefleet.OpNetworkDelete:
			name := strings.TrimPrefix(op.Key, "network/")
			delete(a.state, op.Key)
			for k := range a.state {
				if strings.HasPrefix(k, "peer/"+name+"/") {
					delete(a.state, k)
				}
			}
		default:
			delete(a.state, op.Key)
		}
		a.seq, a.hash = op.Seq, op.Hash
		a.applied = append(a.applied, op.Seq)
	}
	return nil
}

func (a *kvApplier) keys() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var ks []string
	for k := range a.state {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func sourceKeys(t *testing.T, s *memSource, networks ...string) []string {
	snap, _ := s.Snapshot(context.Background())
	v := View{Full: len(networks) == 0, Networks: networks}
	snap = v.Snapshot(snap)
	var ks []string
	for _, n := range snap.Networks {
		ks = append(ks, wirefleet.NetworkKey(n.Name))
	}
	for _, p := range snap.Peers {
		ks = append(ks, wirefleet.PeerKey(p.Network, p.PublicKey))
	}
	for _, tk := range snap.Tokens {
		ks = append(ks, wirefleet.TokenKey(tk.ID))
	}
	slices.Sort(ks)
	return ks
}

// server serves src with callers chosen by bearer token: "admin", "follower", "gw-a"
// (gateway scoped to network a), "viewer".
func server(t *testing.T, src Source) (*httptest.Server, *Handler) {
	h := NewHandler(Options{Source: src, Heartbeat: 50 * time.Millisecond})
	callers := map[string]Caller{
		"admin":    {Roles: []wirefleet.Role{wirefleet.RoleAdmin}},
		"follower": {Roles: []wirefleet.Role{wirefleet.RoleFollower}},
		"gw-a":     {Roles: []wirefleet.Role{wirefleet.RoleGateway}, Networks: []string{"a"}},
		"viewer":   {Roles: []wirefleet.Role{wirefleet.RoleViewer}},
	}
	srv := httptest.NewServer(h.Mount(func(r *http.Request) (Caller, error) {
		c, ok := callers[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		if !ok {
			return Caller{}, wirefleet.Errorf(wirefleet.KindUnauthorized, "bad token")
		}
		return c, nil
	}))
	t.Cleanup(srv.Close)
	return srv, h
}

func TestViewOf(t *testing.T) {
	tests := []struct {
		name    string
		c       Caller
		want    View
		wantErr wirefleet.Kind
	}{
		{"admin", Caller{Roles: []wirefleet.Role{wirefleet.RoleAdmin}}, View{Full: true}, ""},
		{"follower", Caller{Roles: []wirefleet.Role{wirefleet.RoleFollower}}, View{Full: true}, ""},
		{"scoped admin", Caller{Roles: []wirefleet.Role{wirefleet.RoleAdmin}, Networks: []string{"a"}}, View{Networks: []string{"a"}}, ""},
		{"gateway unscoped", Caller{Roles: []wirefleet.Role{wirefleet.RoleGateway}}, View{}, ""},
		{"gateway scoped", Caller{Roles: []wirefleet.Role{wirefleet.RoleGateway}, Networks: []string{"a", "b"}}, View{Networks: []string{"a", "b"}}, ""},
		{"viewer", Caller{Roles: []wirefleet.Role{wirefleet.RoleViewer}}, View{}, wirefleet.KindForbidden},
		{"operator", Caller{Roles: []wirefleet.Role{wirefleet.RoleOperator}}, View{}, wirefleet.KindForbidden},
		{"none", Caller{}, View{}, wirefleet.KindForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ViewOf(tt.c)
			if k := wirefleet.KindOf(err); err != nil && k != tt.wantErr || err == nil && tt.wantErr != "" {
				t.Fatalf("err = %v, want kind %q", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("view (-want +got):\n%s", diff)
			}
		})
	}
}

func fill(t *testing.T, s *memSource) {
	putNetwork(t, s, network(t, "a", 1))
	putNetwork(t, s, network(t, "b", 2))
	putToken(t, s, "tok1")
	putPeer(t, s, peer(t, "a", 10, 1, true))
	putPeer(t, s, peer(t, "b", 11, 2, true))
}

func getJSON(t *testing.T, url, token string, v any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
	}
	return resp.StatusCode
}

func TestSnapshotRedactionByRole(t *testing.T) {
	src := newMemSource()
	fill(t, src)
	srv, _ := server(t, src)
	var full, gw wirefleet.Snapshot
	if code := getJSON(t, srv.URL+SnapshotPath, "follower", &full); code != 200 {
		t.Fatalf("follower: %d", code)
	}
	if len(full.Networks) != 2 || len(full.Peers) != 2 || len(full.Tokens) != 1 || full.Seq != 5 {
		t.Fatalf("follower snapshot = %d networks, %d peers, %d tokens, seq %d", len(full.Networks), len(full.Peers), len(full.Tokens), full.Seq)
	}
	if full.Tokens[0].Hash == (wirefleet.TokenHash{}) {
		t.Error("follower snapshot lacks the token hash a replica needs")
	}
	if code := getJSON(t, srv.URL+SnapshotPath, "gw-a", &gw); code != 200 {
		t.Fatalf("gateway: %d", code)
	}
	if len(gw.Networks) != 1 || gw.Networks[0].Name != "a" || len(gw.Peers) != 1 || gw.Peers[0].Network != "a" || len(gw.Tokens) != 0 {
		t.Fatalf("gateway snapshot = %+v", gw)
	}
	if gw.Networks[0].PrivateKey.IsZero() || gw.Peers[0].PresharedKey == nil {
		t.Error("gateway snapshot lacks its network's private key or its peers' PSKs")
	}
	if gw.Seq != full.Seq || gw.Hash != full.Hash {
		t.Error("scoped snapshot must carry the log head")
	}
	var p Problem
	if code := getJSON(t, srv.URL+SnapshotPath, "viewer", &p); code != 403 || p.Kind != "forbidden" {
		t.Errorf("viewer: %d %+v", code, p)
	}
	if code := getJSON(t, srv.URL+SnapshotPath, "nobody", &p); code != 401 {
		t.Errorf("no token: %d", code)
	}
}

func TestLogPositionErrors(t *testing.T) {
	src := newMemSource()
	fill(t, src)
	op3, _ := src.Op(context.Background(), 3)
	op2, _ := src.Op(context.Background(), 2)
	srv, _ := server(t, src)
	tests := []struct {
		name   string
		query  string
		status int
		reason string
	}{
		{"ahead", "after=9&hash=" + op3.Hash.String(), 409, ReasonHorizon},
		{"diverged", "after=3&hash=" + op2.Hash.String(), 409, ReasonDiverged},
		{"diverged at head", "after=5&hash=" + op2.Hash.String(), 409, ReasonDiverged},
		{"zero with hash", "after=0&hash=" + op2.Hash.String(), 409, ReasonDiverged},
		{"no hash", "after=3", 400, ""},
		{"bad after", "after=-1", 400, ""},
		{"bad hash", "after=3&hash=zz", 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Problem
			if code := getJSON(t, srv.URL+LogPath+"?"+tt.query, "admin", &p); code != tt.status || p.Reason != tt.reason {
				t.Fatalf("got %d %+v, want %d reason %q", code, p, tt.status, tt.reason)
			}
			if tt.reason != "" && (p.Seq != 5 || !strings.HasSuffix(p.Type, "/"+tt.reason)) {
				t.Errorf("problem %+v lacks the head or the typed reason", p)
			}
		})
	}
	src.compact(3)
	var p Problem
	if code := getJSON(t, srv.URL+LogPath+"?after=2&hash="+op2.Hash.String(), "admin", &p); code != 410 || p.Reason != ReasonCompacted {
		t.Fatalf("compacted: %d %+v", code, p)
	}
	if code := getJSON(t, srv.URL+LogPath+"?after=0", "admin", &p); code != 410 || p.Reason != ReasonCompacted {
		t.Fatalf("compacted from 0: %d %+v", code, p)
	}
}

// readLines reads n NDJSON lines of the log stream.
func readLines(t *testing.T, url, token string, n int) []Line {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != ContentTypeNDJSON {
		t.Fatalf("status %d content type %q", resp.StatusCode, ct)
	}
	dec := json.NewDecoder(resp.Body)
	var out []Line
	for len(out) < n {
		var l Line
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("after %d lines: %v", len(out), err)
		}
		out = append(out, l)
	}
	return out
}

func TestLogStreamRedactsForGateways(t *testing.T) {
	src := newMemSource()
	fill(t, src)
	srv, _ := server(t, src)
	lines := readLines(t, srv.URL+LogPath+"?after=0", "gw-a", 6)
	var types []wirefleet.OpType
	for _, l := range lines {
		types = append(types, l.Type)
		if l.Type == TypeElided && (l.Key != "" || len(l.Value) != 0 && string(l.Value) != "null") {
			t.Errorf("elided op %d leaks key %q value %s", l.Seq, l.Key, l.Value)
		}
	}
	want := []wirefleet.OpType{wirefleet.OpNetworkPut, TypeElided, TypeElided, wirefleet.OpPeerPut, TypeElided, TypeHeartbeat}
	if diff := cmp.Diff(want, types); diff != "" {
		t.Fatalf("gateway stream (-want +got):\n%s", diff)
	}
	if lines[5].Head != 5 {
		t.Errorf("heartbeat head = %d, want 5", lines[5].Head)
	}
	full := readLines(t, srv.URL+LogPath+"?after=0", "follower", 5)
	if full[2].Type != wirefleet.OpTokenPut || !strings.Contains(string(full[2].Value), `"hash"`) {
		t.Errorf("follower stream op 3 = %+v, want the token with its hash", full[2])
	}
}

func runFollower(t *testing.T, url, token string, a Applier) *Follower {
	f, err := NewFollower(FollowerConfig{URL: url, Token: token, Applier: a, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, IdleTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("follower did not stop on ctx")
		}
	})
	return f
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFollowerSnapshotThenTail(t *testing.T) {
	src := newMemSource()
	fill(t, src)
	srv, _ := server(t, src)
	a := newKV()
	f := runFollower(t, srv.URL, "follower", a)
	eventually(t, "snapshot", func() bool { return f.Status().Snapshots == 1 && f.Status().Connected })
	if len(a.applied) != 0 {
		t.Errorf("a new consumer replayed ops %v instead of starting from the snapshot", a.applied)
	}
	putPeer(t, src, peer(t, "a", 12, 1, false))
	delPeer(t, src, "b", testKey(t, 11))
	putToken(t, src, "tok2")
	eventually(t, "tail", func() bool { s, _ := a.Position(); return s == 8 })
	if diff := cmp.Diff(sourceKeys(t, src), a.keys()); diff != "" {
		t.Errorf("state (-source +follower):\n%s", diff)
	}
	eventually(t, "heartbeat", func() bool { s := f.Status(); return s.Synced && s.Head == 8 && s.Ops == 3 })
}

func TestFollowerGatewayScope(t *testing.T) {
	src := newMemSource()
	fill(t, src)
	srv, _ := server(t, src)
	a := newKV()
	f := runFollower(t, srv.URL, "gw-a", a)
	eventually(t, "snapshot", func() bool { return f.Status().Connected })
	putPeer(t, src, peer(t, "b", 20, 2, false))
	putToken(t, src, "tok3")
	putPeer(t, src, peer(t, "a", 21, 1, false))
	eventually(t, "tail", func() bool { s, _ := a.Position(); return s == 8 })
	if diff := cmp.Diff(sourceKeys(t, src, "a"), a.keys()); diff != "" {
		t.Errorf("state (-source +gateway):\n%s", diff)
	}
	if a.sawSecret || a.elided != 2 {
		t.Errorf("gateway saw token ops: %v, elided %d (want 2)", a.sawSecret, a.elided)
	}
}

func TestFollowerReloadsOnHorizonDivergedCompacted(t *testing.T) {
	src := newMemSource()
	fill(t, src)
	var srcPtr atomic.Pointer[memSource]
	srcPtr.Store(src)
	// The handler reads through a pointer so the test can replace the whole server state.
	srv, _ := server(t, swappable{&srcPtr})
	// A restored or replaced server is a restarted process: its streams drop.
	restart := func() { srv.CloseClientConnections() }
	a := newKV()
	f := runFollower(t, srv.URL, "follower", a)
	eventually(t, "first sync", func() bool { s, _ := a.Position(); return s == 5 })

	// Restored from an older backup: seq goes back to 3, then moves on differently.
	restored := newMemSource()
	putNetwork(t, restored, network(t, "a", 1))
	putNetwork(t, restored, network(t, "c", 3))
	putToken(t, restored, "tok9")
	srcPtr.Store(restored)
	restart()
	eventually(t, "horizon reload", func() bool { return f.Status().Reloads >= 1 && f.Status().Snapshots == 2 })
	eventually(t, "restored state", func() bool { return cmp.Equal(sourceKeys(t, restored), a.keys()) })

	// Diverged at the same seq: another history with as many ops.
	other := newMemSource()
	putNetwork(t, other, network(t, "x", 4))
	putNetwork(t, other, network(t, "y", 5))
	putNetwork(t, other, network(t, "z", 6))
	srcPtr.Store(other)
	restart()
	eventually(t, "diverged reload", func() bool { return f.Status().Snapshots == 3 })
	eventually(t, "diverged state", func() bool { return cmp.Equal(sourceKeys(t, other), a.keys()) })
	if s, h := a.Position(); s != 3 || h != other.head.Hash {
		t.Errorf("position %d %s, want 3 %s", s, h, other.head.Hash)
	}

	// Compacted beyond the consumer: a stale consumer at seq 1 reloads too.
	for i := range 5 {
		putPeer(t, other, peer(t, "x", byte(30+i), 4, false))
	}
	eventually(t, "tail", func() bool { s, _ := a.Position(); return s == 8 })
	stale := newKV()
	op1, _ := other.Op(context.Background(), 1)
	stale.seq, stale.hash = 1, op1.Hash
	other.compact(6)
	f2 := runFollower(t, srv.URL, "follower", stale)
	eventually(t, "compacted reload", func() bool { return f2.Status().Reloads == 1 && f2.Status().Snapshots == 1 })
	eventually(t, "compacted state", func() bool { return cmp.Equal(sourceKeys(t, other), stale.keys()) })
}

// swappable lets a test replace the source behind a running handler.
type swappable struct{ p *atomic.Pointer[memSource] }

func (s swappable) Snapshot(ctx context.Context) (wirefleet.Snapshot, error) {
	return s.p.Load().Snapshot(ctx)
}
func (s swappable) Head(ctx context.Context) (uint64, wirefleet.Hash, error) {
	return s.p.Load().Head(ctx)
}
func (s swappable) Op(ctx context.Context, seq uint64) (wirefleet.Op, error) {
	return s.p.Load().Op(ctx, seq)
}
func (s swappable) OpsAfter(ctx context.Context, after uint64, limit int) ([]wirefleet.Op, error) {
	return s.p.Load().OpsAfter(ctx, after, limit)
}
func (s swappable) WaitOps(ctx context.Context, after uint64) error {
	return s.p.Load().WaitOps(ctx, after)
}

func TestFollowerRetriesNetworkErrors(t *testing.T) {
	src := newMemSource()
	fill(t, src)
	h := NewHandler(Options{Source: src, Heartbeat: 50 * time.Millisecond})
	var calls atomic.Int32
	inner := h.Mount(func(*http.Request) (Caller, error) {
		return Caller{Roles: []wirefleet.Role{wirefleet.RoleFollower}}, nil
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 3 {
			// Drop the connection without an answer, like a crashed proxy.
			hj, _ := w.(http.Hijacker)
			c, _, _ := hj.Hijack()
			c.Close()
			return
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	a := newKV()
	f := runFollower(t, srv.URL, "x", a)
	eventually(t, "sync after failures", func() bool { s, _ := a.Position(); return s == 5 })
	if f.Status().LastError == "" {
		t.Error("failures were not recorded")
	}
}

func TestFollowerDetectsTamperedOp(t *testing.T) {
	src := newMemSource()
	fill(t, src)
	good, _ := src.Op(context.Background(), 5)
	// A stream whose op 5 was altered after sealing: the consumer must reject it.
	bad := good
	bad.Value = json.RawMessage(`{"network":"b"}`)
	var served atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == SnapshotPath {
			snap, _ := src.Snapshot(r.Context())
			if served.Add(1) == 1 {
				// First snapshot stops at seq 4 so that op 5 comes from the stream.
				op4, _ := src.Op(r.Context(), 4)
				snap.Seq, snap.Hash = 4, op4.Hash
			}
			_ = json.NewEncoder(w).Encode(snap)
			return
		}
		w.Header().Set("Content-Type", ContentTypeNDJSON)
		if r.URL.Query().Get("after") == "4" {
			_ = json.NewEncoder(w).Encode(Line{Op: bad})
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	a := newKV()
	f := runFollower(t, srv.URL, "x", a)
	eventually(t, "reload after tampering", func() bool { return f.Status().Reloads >= 1 && f.Status().Snapshots >= 2 })
	if s, _ := a.Position(); s != 5 {
		t.Errorf("position %d, want 5 from the second snapshot", s)
	}
	if slices.Contains(a.applied, 5) {
		t.Error("the tampered op was applied")
	}
}

// TestFollowerDoesNotHammerARefusingSource: a source that answers "diverged" to every
// position, even right after a snapshot, gets snapshot requests at the backoff's pace.
func TestFollowerDoesNotHammerARefusingSource(t *testing.T) {
	src := newMemSource()
	fill(t, src)
	var snaps atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == SnapshotPath {
			snaps.Add(1)
			snap, _ := src.Snapshot(r.Context())
			_ = json.NewEncoder(w).Encode(snap)
			return
		}
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusConflict)
		_ = json.NewEncoder(w).Encode(Problem{Status: 409, Kind: "conflict", Reason: ReasonDiverged})
	}))
	t.Cleanup(srv.Close)
	runFollower(t, srv.URL, "x", newKV()) // backoff 10 ms doubling to 50 ms
	time.Sleep(time.Second)
	if n := snaps.Load(); n < 2 || n > 40 {
		t.Errorf("%d snapshot downloads in 1 s: want a few, paced by the backoff", n)
	}
}
