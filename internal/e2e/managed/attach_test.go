package managed

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/e2e"
	"github.com/wirefleet/wirefleet/internal/metrics"
	"github.com/wirefleet/wirefleet/internal/wgdev/wgdevtest"
)

// dumpLines reads `wg show DEV dump`: the interface line and each peer's line by key.
func (g *gatewayHost) dumpLines(t *testing.T) (iface string, peers map[string]string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(g.ns.Exec(t, "wg", "show", g.dev, "dump")), "\n")
	peers = map[string]string{}
	for _, l := range lines[1:] {
		peers[strings.SplitN(l, "\t", 2)[0]] = l
	}
	return lines[0], peers
}

// TestAttachedForeignPeerUntouched: a managed gateway attached (-wg-backend attach) to an
// interface made with Debian's wireguard-go, which holds a static peer outside the
// network's prefixes: through the snapshot, peer changes, a network change and a drift
// repair, the foreign peer's `wg show dump` line and the interface line stay
// byte-identical, while the managed peers converge.
func TestAttachedForeignPeerUntouched(t *testing.T) {
	f := newFleet(t)
	g := f.gws[0]
	wgdevtest.StartWireguardGo(t, g.ns, g.dev)

	// The operator's own config, as wg-quick would have set it.
	dir := t.TempDir()
	ifKey, _ := newKey()
	psk, _ := wirefleet.GeneratePresharedKey()
	foreignKey, _ := newKey()
	foreign := foreignKey.PublicKey().String()
	for name, k := range map[string]string{"if.key": ifKey.String(), "foreign.psk": psk.String()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(k+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	g.ns.Exec(t, "wg", "set", g.dev, "listen-port", "51830", "private-key", filepath.Join(dir, "if.key"),
		"peer", foreign, "preshared-key", filepath.Join(dir, "foreign.psk"), "endpoint", "192.0.2.77:51999",
		"allowed-ips", "203.0.113.7/32,2001:db8:77::/48")
	g.ns.Exec(t, "ip", "link", "set", g.dev, "up")
	ifLine, peers := g.dumpLines(t)
	foreignLine := peers[foreign]
	if foreignLine == "" {
		t.Fatalf("no foreign peer on %s: %v", g.dev, peers)
	}

	// converged waits for exactly the API's active peers plus the foreign one.
	converged := func(timeout time.Duration) {
		t.Helper()
		want := f.activePeers()
		want[foreign] = true
		g.converged(timeout, want)
	}
	_, p1 := f.addPeer()
	_, p2 := f.addPeer()
	_, p3 := f.addPeer()
	g.start("-wg-backend", "attach")
	converged(15 * time.Second) // the snapshot

	f.addPeer()
	f.must("DELETE", peerPath(p1.PublicKey), nil, nil)
	f.must("POST", peerPath(p2.PublicKey)+"/disable", nil, nil)
	f.must("PATCH", "/api/v1/networks/corp", map[string]any{"listen_port": 51832, "mtu": 1380}, nil)
	converged(15 * time.Second)

	// Drift behind the gateway's back: the repair is a drift check that read the device
	// and wrote to it.
	g.ns.Exec(t, "wg", "set", g.dev, "peer", p3.PublicKey.String(), "remove")
	e2e.Eventually(t, 20*time.Second, func() error {
		if n, err := g.metric(metrics.DriftRepairs, `kind="missing"`); err != nil || n < 1 {
			return fmt.Errorf("drift repairs of kind missing: %v %v", n, err)
		}
		return nil
	})
	converged(10 * time.Second)

	gotIf, gotPeers := g.dumpLines(t)
	if gotPeers[foreign] != foreignLine {
		t.Errorf("foreign peer changed:\nbefore %q\nafter  %q", foreignLine, gotPeers[foreign])
	}
	if gotIf != ifLine {
		t.Errorf("attached interface changed (key, port or fwmark):\nbefore %q\nafter  %q", ifLine, gotIf)
	}
	if n, err := g.metric(metrics.DriftRepairs, `kind="stray"`); err == nil && n > 0 {
		t.Errorf("the drift check counted %v stray peers: the foreign peer is not ours", n)
	}
}
