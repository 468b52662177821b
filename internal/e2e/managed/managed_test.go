package managed

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet/internal/e2e"
)

// TestTunnelThroughEitherGatewayAndLifecycle: a peer created through the API gets a
// working tunnel through either gateway; disabling, expiring and deleting it stop it.
func TestTunnelThroughEitherGatewayAndLifecycle(t *testing.T) {
	f := newFleet(t)
	for _, g := range f.gws {
		g.start()
	}
	priv, p := f.addPeer()
	for _, g := range f.gws {
		g.converged(15*time.Second, map[string]bool{p.PublicKey.String(): true})
	}
	c := f.newClient(priv, p, 0)
	e2e.Eventually(t, 20*time.Second, c.ping)
	c.via(1)
	e2e.Eventually(t, 20*time.Second, c.ping)
	c.via(0)
	e2e.Eventually(t, 20*time.Second, c.ping)

	f.must("POST", peerPath(p.PublicKey)+"/disable", nil, nil)
	for _, g := range f.gws {
		g.converged(10*time.Second, map[string]bool{})
	}
	c.pingFails(10 * time.Second)

	f.must("POST", peerPath(p.PublicKey)+"/enable", nil, nil)
	e2e.Eventually(t, 20*time.Second, c.ping)

	// Expiry: the gateways enforce expires_at themselves (and the server marks it).
	at := time.Now().Add(3 * time.Second).UTC().Format(time.RFC3339)
	f.must("PATCH", peerPath(p.PublicKey), map[string]any{"expires_at": at}, nil)
	for _, g := range f.gws {
		g.converged(30*time.Second, map[string]bool{})
	}
	c.pingFails(10 * time.Second)

	_, p2 := f.addPeer()
	for _, g := range f.gws {
		g.converged(10*time.Second, map[string]bool{p2.PublicKey.String(): true})
	}
	f.must("DELETE", peerPath(p2.PublicKey), nil, nil)
	for _, g := range f.gws {
		g.converged(10*time.Second, map[string]bool{})
	}

	// Statistics reached the server: the client's session is listed.
	var sessions struct {
		Sessions []struct {
			PublicKey string `json:"public_key"`
			RxBytes   int64  `json:"rx_bytes"`
		} `json:"sessions"`
	}
	f.must("GET", "/api/v1/sessions?network=corp", nil, &sessions)
	found := false
	for _, s := range sessions.Sessions {
		found = found || s.PublicKey == p.PublicKey.String()
	}
	if !found {
		t.Errorf("no session for the client's peer in %+v", sessions)
	}
}

var resumeRE = regexp.MustCompile(`resume_after=(\d+)`)

// TestGatewayCrashConvergesWithoutReplay: kill -9 a gateway during a burst of changes;
// while it is down delete some peers and add others; restarted, its device converges
// exactly, resuming from its saved seq (no snapshot, no replay from the start).
func TestGatewayCrashConvergesWithoutReplay(t *testing.T) {
	f := newFleet(t)
	g := f.gws[0]
	g.start()
	var keys []string
	for range 20 {
		_, p := f.addPeer()
		keys = append(keys, p.PublicKey.String())
	}
	g.converged(20*time.Second, f.activePeers())

	// A burst, with the crash in its middle: kill -9 once the gateway has applied some of
	// the burst's ops but not all of them, while the burst is still being written.
	start := f.headSeq()
	const burst = 40
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range burst {
			priv, _ := newKey()
			code, _, _ := f.call("POST", "/api/v1/networks/corp/peers", map[string]any{"public_key": priv.PublicKey(), "name": "burst" + strconv.Itoa(i)})
			if code/100 != 2 {
				t.Errorf("burst create: %d", code)
			}
		}
	}()
	var killedAt float64
	for deadline := time.Now().Add(20 * time.Second); killedAt == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("the gateway never applied part of the burst (from seq %v)", start)
		}
		applied, err := g.metric("wirefleet_replication_applied_seq")
		if err == nil && applied > start && applied < start+burst-5 {
			g.proc.Kill()
			killedAt = applied
		} else if err == nil && applied >= start+burst-5 {
			t.Fatalf("the burst got ahead of the test: applied seq %v already past %v+%d", applied, start, burst-5)
		}
	}
	select {
	case <-done:
		t.Fatal("the burst had finished when the gateway was killed")
	default:
	}
	<-done
	end := f.headSeq()
	if end != start+burst {
		t.Fatalf("the burst wrote seq %v..%v, want %d ops", start, end, burst)
	}
	t.Logf("killed at applied seq %v of the burst %v..%v", killedAt, start, end)
	// While it is down: delete some, add others.
	for _, k := range keys[:10] {
		f.must("DELETE", "/api/v1/networks/corp/peers/"+escape(k), nil, nil)
	}
	for range 10 {
		f.addPeer()
	}
	out := g.proc.Output()
	g.start()
	g.converged(30*time.Second, f.activePeers())

	restart := strings.TrimPrefix(g.proc.Output(), out)
	m := resumeRE.FindStringSubmatch(g.proc.Output())
	if m == nil || m[1] == "0" {
		t.Fatalf("the restarted gateway did not resume from a saved seq:\n%s", g.proc.Output())
	}
	if strings.Contains(g.proc.Output(), "snapshot loaded") {
		t.Errorf("the restarted gateway loaded a snapshot instead of catching up from seq %s:\n%s", m[1], restart)
	}
	if n, err := g.metric("wirefleet_replication_snapshots_total"); err != nil || n != 0 {
		t.Errorf("snapshots after restart = %v (%v), want 0", n, err)
	}
	resumed, _ := strconv.ParseFloat(m[1], 64)
	// The saved position is inside the burst: the gateway died with part of it applied.
	if resumed < killedAt || resumed >= end {
		t.Errorf("resumed after seq %v: want a position inside the burst, at or after %v and before %v", resumed, killedAt, end)
	}
	var applied, seq float64
	e2e.Eventually(t, 10*time.Second, func() error {
		var err, err2 error
		applied, err = g.metric("wirefleet_replication_ops_applied_total")
		seq, err2 = g.metric("wirefleet_replication_applied_seq")
		if err != nil || err2 != nil || applied != seq-resumed || resumed == 0 {
			return fmt.Errorf("applied %v ops after resuming at %v up to seq %v (%v %v): want exactly the missed ops", applied, resumed, seq, err, err2)
		}
		return nil
	})
	t.Logf("resumed at seq %v, caught up %v ops to seq %v", resumed, applied, seq)
}

// TestControlPlaneDownFailOpen: with the control plane stopped, tunnels keep passing
// traffic and a restarted gateway still serves them; changes made after the control
// plane returns arrive.
func TestControlPlaneDownFailOpen(t *testing.T) {
	f := newFleet(t)
	g := f.gws[0]
	g.start()
	priv, p := f.addPeer()
	g.converged(15*time.Second, map[string]bool{p.PublicKey.String(): true})
	c := f.newClient(priv, p, 0)
	e2e.Eventually(t, 20*time.Second, c.ping)

	f.stopServer()
	for range 3 {
		if err := c.ping(); err != nil {
			t.Fatalf("control plane down: %v", err)
		}
	}
	if err := g.proc.Stop(10 * time.Second); err != nil {
		t.Fatalf("gateway stop: %v", err)
	}
	g.start()
	e2e.Eventually(t, 20*time.Second, c.ping) // served from the saved state
	if !strings.Contains(g.proc.Output(), "serving the saved state") {
		t.Errorf("gateway did not say it serves the saved state:\n%s", g.proc.Output())
	}
	// Still down after a while: no peer was dropped by a failing control plane.
	time.Sleep(3 * time.Second)
	if err := c.ping(); err != nil {
		t.Fatal(err)
	}

	f.startServer()
	_, p2 := f.addPeer()
	g.converged(30*time.Second, map[string]bool{p.PublicKey.String(): true, p2.PublicKey.String(): true})
	if err := c.ping(); err != nil {
		t.Error(err)
	}
}

// TestRestoredAndDivergedServer: the server restored from an older backup (seq goes back)
// and a server whose history diverged at the same seq: the gateway detects both and
// reloads a snapshot by itself.
func TestRestoredAndDivergedServer(t *testing.T) {
	f := newFleet(t)
	g := f.gws[0]
	g.start()
	f.addPeer()
	g.converged(15*time.Second, f.activePeers())

	backup := t.TempDir()
	f.stopServer()
	copyDB(t, f.dataDir, backup)
	f.startServer()
	before := f.activePeers()
	f.addPeer()
	f.addPeer()
	g.converged(15*time.Second, f.activePeers())

	// 1. Restored from the older backup: seq goes back.
	f.stopServer()
	copyDB(t, backup, f.dataDir)
	f.startServer()
	if got := f.activePeers(); len(got) != len(before) {
		t.Fatalf("restore did not go back: %d peers, want %d", len(got), len(before))
	}
	g.converged(30*time.Second, before)
	e2e.Eventually(t, 10*time.Second, func() error {
		if n, err := g.metric("wirefleet_replication_reloads_total"); err != nil || n < 1 {
			return fmt.Errorf("reloads %v %v", n, err)
		}
		return nil
	})
	if !strings.Contains(g.proc.Output(), "reason=horizon") {
		t.Errorf("no horizon reload in the gateway log:\n%s", g.proc.Output())
	}

	// 2. Diverged at the same seq: the gateway saw history A up to seq S+2 and stopped; the
	// server is restored to S and writes history B up to S+2.
	f.addPeer()
	f.addPeer()
	g.converged(15*time.Second, f.activePeers())
	if err := g.proc.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	f.stopServer()
	copyDB(t, backup, f.dataDir)
	f.startServer()
	f.addPeer()
	f.addPeer()
	want := f.activePeers()
	g.start()
	g.converged(30*time.Second, want)
	e2e.Eventually(t, 10*time.Second, func() error {
		if !strings.Contains(g.proc.Output(), "reason=diverged") {
			return fmt.Errorf("no diverged reload in the gateway log yet")
		}
		return nil
	})
}

// TestDriftRepairedAndCounted: a peer removed or altered behind the gateway's back with
// `wg set` is repaired and counted in the metrics.
func TestDriftRepairedAndCounted(t *testing.T) {
	f := newFleet(t)
	g := f.gws[0]
	g.start()
	_, p1 := f.addPeer()
	_, p2 := f.addPeer()
	want := map[string]bool{p1.PublicKey.String(): true, p2.PublicKey.String(): true}
	g.converged(15*time.Second, want)
	before, _ := g.devicePeers()

	g.ns.Exec(t, "wg", "set", g.dev, "peer", p1.PublicKey.String(), "remove")
	g.ns.Exec(t, "wg", "set", g.dev, "peer", p2.PublicKey.String(), "allowed-ips", "198.18.50.250/32")
	e2e.Eventually(t, 20*time.Second, func() error {
		got, err := g.devicePeers()
		if err != nil {
			return err
		}
		for k, ips := range before {
			if got[k] != ips {
				return fmt.Errorf("peer %s has %q, want %q", k, got[k], ips)
			}
		}
		return nil
	})
	for _, kind := range []string{"missing", "altered"} {
		if n, err := g.metric("wirefleet_drift_repairs_total", `kind="`+kind+`"`); err != nil || n < 1 {
			t.Errorf("drift repairs of kind %s: %v %v", kind, n, err)
		}
	}
	if !strings.Contains(g.proc.Output(), "drift repaired") {
		t.Error("no log line for the repair")
	}
}

func copyDB(t *testing.T, from, to string) {
	t.Helper()
	old, _ := filepath.Glob(filepath.Join(to, "wirefleet.db*"))
	for _, o := range old {
		_ = os.Remove(o)
	}
	files, _ := filepath.Glob(filepath.Join(from, "wirefleet.db*"))
	if len(files) == 0 {
		t.Fatalf("no database in %s", from)
	}
	for _, src := range files {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, filepath.Base(src)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCompactedLogReload: a gateway that was away longer than the log the server keeps
// gets "410 compacted" and reloads a snapshot by itself.
func TestCompactedLogReload(t *testing.T) {
	f := newFleet(t)
	g := f.gws[0]
	g.start()
	f.addPeer()
	g.converged(15*time.Second, f.activePeers())
	if err := g.proc.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		f.addPeer()
	}
	f.stopServer()
	f.startServer("-log-keep-ops", "2")
	e2e.Eventually(t, 10*time.Second, func() error {
		if !strings.Contains(f.server.Output(), "log compacted") {
			return fmt.Errorf("server did not compact")
		}
		return nil
	})
	g.start()
	g.converged(30*time.Second, f.activePeers())
	e2e.Eventually(t, 10*time.Second, func() error {
		if !strings.Contains(g.proc.Output(), "reason=compacted") {
			return fmt.Errorf("no compacted reload in the gateway log yet")
		}
		return nil
	})
}
