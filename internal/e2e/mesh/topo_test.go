// Package mesh holds the privileged end-to-end tests of `wirefleet mesh`: the real binary,
// one process per node, each inside a network namespace of the NAT topology in
// testdata/nat-topology.sh (public static node P; A and C on one LAN behind NAT router R1;
// B behind R2), with the embedded userspace WireGuard backend over real TUN devices.
package mesh

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet/internal/e2e"
	"github.com/wirefleet/wirefleet/internal/mesh"
	"github.com/wirefleet/wirefleet/internal/testenv"
)

const sharedKey = "YDUBM6FhERePZ4gPlxzAbCN7K61BPjy7HApWYL+P128="

// wg IPs of the nodes (mesh subnet 198.51.100.0/24); ports follow the reference's defaults.
var wgIPs = map[string]string{"a": "198.51.100.1", "b": "198.51.100.2", "c": "198.51.100.3", "p": "198.51.100.10"}

var topoSeq atomic.Int64

// topo is one running NAT topology.
type topo struct {
	t      testing.TB
	prefix string
	dir    string
	bin    string
	net    string // network.yaml
	nodes  map[string]*e2e.Process
	// pingWait is ping's -W: 1 s in tests; benchmarks poll with a shorter one so that a
	// failed probe does not hide a second of convergence
	pingWait string
}

func topologyScript(t *testing.T) string {
	p, err := filepath.Abs("testdata/nat-topology.sh")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// newTopo builds the topology (symmetric: "", "r1", "r2" or "both") with a prefix unique
// on the machine, and tears it down in cleanup.
func newTopo(t *testing.T, symmetric string) *topo {
	t.Helper()
	testenv.Privileged(t, "nft", "ping", "sysctl", "curl")
	prefix := fmt.Sprintf("m%d%d", os.Getpid()%100000, topoSeq.Add(1))
	script := topologyScript(t)
	args := []string{"up", "--prefix", prefix}
	if symmetric != "" {
		args = append(args, "--symmetric", symmetric)
	}
	if out, err := exec.Command(script, args...).CombinedOutput(); err != nil {
		t.Fatalf("nat topology: %v\n%s", err, out)
	}
	tp := &topo{t: t, prefix: prefix, dir: t.TempDir(), bin: e2e.Binary(t), nodes: map[string]*e2e.Process{}}
	t.Cleanup(func() { _ = exec.Command(script, "down", "--prefix", prefix).Run() })
	tp.net = tp.networkFile("net.yaml", sharedKey)
	return tp
}

func (tp *topo) networkFile(name, key string) string {
	p := filepath.Join(tp.dir, name)
	body := fmt.Sprintf(`network:
  sharedKey: %s
  subnet: 198.51.100.0/24
peers:
  - endPoint: 203.0.113.10:50010
    adminPort: 50510
    wgIp: 198.51.100.10
`, key)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		tp.t.Fatal(err)
	}
	return p
}

func (tp *topo) ns(node string) *testenv.NetNS { return &testenv.NetNS{Name: tp.prefix + node} }

func (tp *topo) stateDir(name string) string { return filepath.Join(tp.dir, "state-"+name) }

// start runs `wirefleet mesh` for node (a, b, c or p) in its namespace.
func (tp *topo) start(node string, extra ...string) *e2e.Process {
	tp.t.Helper()
	iface := tp.prefix + "w" + node
	args := append([]string{"mesh", "-c", tp.net, "-a", wgIPs[node], "-n", node, "-i", iface,
		"--state-dir", tp.stateDir(node), "-backend", "userspace"}, extra...)
	// A node the test kills with SIGKILL leaves its UAPI socket in the directory all
	// namespaces share; registered before Start, this runs after the process has stopped.
	tp.t.Cleanup(func() { _ = os.Remove(filepath.Join("/var/run/wireguard", iface+".sock")) })
	p := e2e.Start(tp.t, tp.ns(node), nil, tp.bin, args...)
	tp.nodes[node] = p
	return p
}

// status asks the node whose state directory is stateDir (running in ns node).
func (tp *topo) status(node, stateDir string) (mesh.Status, error) {
	var st mesh.Status
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", tp.prefix+node, tp.bin, "mesh", "status",
		"--state-dir", stateDir, "-o", "json").CombinedOutput()
	if err != nil {
		return st, fmt.Errorf("mesh status of %s: %v: %s", node, err, out)
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return st, fmt.Errorf("mesh status of %s: %v: %s", node, err, out)
	}
	return st, nil
}

func (tp *topo) peer(node, wgip string) (mesh.StatusPeer, bool, error) {
	st, err := tp.status(node, tp.stateDir(node))
	if err != nil {
		return mesh.StatusPeer{}, false, err
	}
	for _, p := range st.Peers {
		if p.WgIP == wgip {
			return p, true, nil
		}
	}
	return mesh.StatusPeer{}, false, nil
}

// wantPath checks that node reaches wgip over path (and, for relay, via the given gateway).
func (tp *topo) wantPath(node, wgip, path, via string) error {
	p, ok, err := tp.peer(node, wgip)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s has no route to %s", node, wgip)
	}
	gotVia := ""
	if p.Via != nil {
		gotVia = *p.Via
	}
	if p.Path != path || gotVia != via {
		return fmt.Errorf("%s reaches %s over %s via %q, want %s via %q", node, wgip, p.Path, gotVia, path, via)
	}
	return nil
}

func (tp *topo) ping(node, dst string) error {
	wait := tp.pingWait
	if wait == "" {
		wait = "1"
	}
	out, err := exec.Command("ip", "netns", "exec", tp.prefix+node, "ping", "-n", "-q", "-c", "1", "-W", wait, dst).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ping %s -> %s: %v: %s", node, dst, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// allPairs pings every node's wg IP from every node in nodes.
func (tp *topo) allPairs(nodes ...string) error {
	for _, s := range nodes {
		for _, d := range nodes {
			if s != d {
				if err := tp.ping(s, wgIPs[d]); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// eventually polls f until it succeeds and returns how long that took.
func eventually(t *testing.T, timeout time.Duration, f func() error) time.Duration {
	t.Helper()
	start := time.Now()
	e2e.Eventually(t, timeout, f)
	return time.Since(start)
}
