package mesh

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet/internal/e2e"
)

// Data-plane checks: what the WireGuard devices and the kernel really hold (`wg show dump`,
// `ip route`), and what traffic really does, rather than what `mesh status` says.

// wgPeer is one peer line of `wg show DEV dump`.
type wgPeer struct {
	Key        string
	Endpoint   string // "(none)" when unset
	AllowedIPs []string
	RX, TX     int64
}

func (p wgPeer) allows(ip string) bool { return slices.Contains(p.AllowedIPs, ip+"/32") }

// dev is the name of node's mesh interface.
func (tp *topo) dev(node string) string { return tp.prefix + "w" + node }

// wgDump reads the peers of device dev in node's namespace, keyed by public key.
func (tp *topo) wgDump(node, dev string) (map[string]wgPeer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", tp.prefix+node, "wg", "show", dev, "dump").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("wg show %s dump in %s: %v: %s", dev, node, err, out)
	}
	peers := map[string]wgPeer{}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for _, l := range lines[1:] { // the first line is the interface
		f := strings.Split(l, "\t")
		if len(f) != 8 {
			return nil, fmt.Errorf("wg show %s dump in %s: unexpected line %q", dev, node, l)
		}
		p := wgPeer{Key: f[0], Endpoint: f[2]}
		if f[3] != "(none)" {
			p.AllowedIPs = strings.Split(f[3], ",")
		}
		p.RX, _ = strconv.ParseInt(f[5], 10, 64)
		p.TX, _ = strconv.ParseInt(f[6], 10, 64)
		peers[p.Key] = p
	}
	return peers, nil
}

// holders lists the keys of the peers of node whose allowed IPs route wgip.
func (tp *topo) holders(node, wgip string) ([]string, error) {
	peers, err := tp.wgDump(node, tp.dev(node))
	if err != nil {
		return nil, err
	}
	var keys []string
	for k, p := range peers {
		if p.allows(wgip) {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// wantHolder checks that on node exactly the peer with key routes wgip.
func (tp *topo) wantHolder(node, wgip, key string) error {
	keys, err := tp.holders(node, wgip)
	if err != nil {
		return err
	}
	if len(keys) != 1 || keys[0] != key {
		return fmt.Errorf("%s: %s is routed to peers %v, want only %s", node, wgip, keys, key)
	}
	return nil
}

// noKernelRoute checks that node's kernel has no route for wgip itself: the mesh installs
// only the subnet route into the interface; which peer gets a node is WireGuard's AllowedIPs.
func (tp *topo) noKernelRoute(node, wgip string) error {
	out, err := tp.ns(node).Command("ip", "-4", "route", "show", "table", "all").CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip route in %s: %v: %s", node, err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) > 1 && (f[0] == "local" || f[0] == "unicast" || f[0] == "broadcast") {
			f = f[1:]
		}
		if len(f) > 0 && (f[0] == wgip || f[0] == wgip+"/32") {
			return fmt.Errorf("%s still has a kernel route for %s: %s", node, wgip, l)
		}
	}
	return nil
}

// withdrawn checks that node's device no longer routes wgip and knows no peer with key.
func (tp *topo) withdrawn(node, wgip, key string) error {
	peers, err := tp.wgDump(node, tp.dev(node))
	if err != nil {
		return err
	}
	for k, p := range peers {
		if k == key || p.allows(wgip) {
			return fmt.Errorf("%s: peer %s (allowed %v) still routes %s", node, k, p.AllowedIPs, wgip)
		}
	}
	return tp.noKernelRoute(node, wgip)
}

// pinger is a continuous ping (every 50 ms) from one node to a wg IP.
type pinger struct {
	name string
	cmd  *exec.Cmd
	out  strings.Builder
}

func (tp *topo) startPinger(t *testing.T, node, dst string) *pinger {
	t.Helper()
	p := &pinger{name: node + "->" + dst}
	p.cmd = exec.Command("ip", "netns", "exec", tp.prefix+node, "ping", "-n", "-q", "-i", "0.05", dst)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("ping %s: %v", p.name, err)
	}
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); _ = p.cmd.Wait() })
	return p
}

var pingSummary = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

// stop interrupts ping (it then prints its summary) and returns sent and lost.
func (p *pinger) stop(t *testing.T) (sent, lost int) {
	t.Helper()
	_ = p.cmd.Process.Signal(os.Interrupt)
	_ = p.cmd.Wait() // exit 1 when a packet was lost: the summary tells
	m := pingSummary.FindStringSubmatch(p.out.String())
	if m == nil {
		t.Fatalf("ping %s: no summary in %q", p.name, p.out.String())
	}
	sent, _ = strconv.Atoi(m[1])
	recv, _ := strconv.Atoi(m[2])
	return sent, sent - recv
}

// peerWatch polls devices every 200 ms and records every moment a wanted (node, wg IP →
// key) mapping was missing: the AllowedIPs of unaffected peers must never be dropped, not
// even briefly, while routes elsewhere change.
type peerWatch struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	bad  []string
	n    int
	// moves: per observing node, the successive holders of the observed (changing) wg IP
	moves map[string][]string
}

type holding struct{ node, wgip, key string }

// watchPeers also records on each of observers the successive holders of observed ("" for
// none), to show that routes did change meanwhile.
func (tp *topo) watchPeers(observed string, observers []string, want []holding) *peerWatch {
	w := &peerWatch{stop: make(chan struct{}), done: make(chan struct{}), moves: map[string][]string{}}
	go func() {
		defer close(w.done)
		for {
			for _, n := range observers {
				keys, err := tp.holders(n, observed)
				if err != nil {
					continue
				}
				slices.Sort(keys)
				h := strings.Join(keys, ",")
				w.mu.Lock()
				if m := w.moves[n]; len(m) == 0 || m[len(m)-1] != h {
					w.moves[n] = append(m, h)
				}
				w.mu.Unlock()
			}
			for _, h := range want {
				err := tp.wantHolder(h.node, h.wgip, h.key)
				w.mu.Lock()
				w.n++
				if err != nil && len(w.bad) < 20 {
					w.bad = append(w.bad, time.Now().Format("15:04:05.000")+" "+err.Error())
				}
				w.mu.Unlock()
			}
			select {
			case <-w.stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return w
}

// end stops polling and returns the number of checks, the failures and the moves.
func (w *peerWatch) end() (int, []string, map[string][]string) {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n, w.bad, w.moves
}

// endpointHost is the address part of a dump endpoint.
func endpointHost(ep string) string {
	ap, err := netip.ParseAddrPort(ep)
	if err != nil {
		return ep
	}
	return ap.Addr().String()
}

// noPeer checks that node's device has no peer with key.
func (tp *topo) noPeer(node, key string) error {
	peers, err := tp.wgDump(node, tp.dev(node))
	if err != nil {
		return err
	}
	if p, ok := peers[key]; ok {
		return fmt.Errorf("%s has peer %s (allowed %v)", node, key, p.AllowedIPs)
	}
	return nil
}

// keys returns the current WireGuard public key of each node, from its own status.
func (tp *topo) keys(nodes ...string) map[string]string {
	tp.t.Helper()
	out := map[string]string{}
	for _, n := range nodes {
		st, err := tp.status(n, tp.stateDir(n))
		if err != nil {
			tp.t.Fatal(err)
		}
		out[n] = st.Node.PublicKey
	}
	return out
}

// natDataPlane checks in the devices that A↔B and C↔B use the punched path and A↔C the
// LAN: the peers' endpoints are the other side's NAT (R2 203.0.113.12, R1 203.0.113.11)
// or LAN address, not P's, and a burst of traffic A→B does not pass through P (P's
// transfer counters for A and B barely move while A's for B grow by the burst).
func natDataPlane(t *testing.T, tp *topo, keys map[string]string) {
	type ep struct{ node, peer, host string }
	e2e.Eventually(t, 10*time.Second, func() error {
		for _, c := range []ep{
			{"a", "b", "203.0.113.12"}, {"c", "b", "203.0.113.12"},
			{"b", "a", "203.0.113.11"}, {"b", "c", "203.0.113.11"},
			{"a", "c", "198.18.1.20"}, {"c", "a", "198.18.1.10"},
		} {
			peers, err := tp.wgDump(c.node, tp.dev(c.node))
			if err != nil {
				return err
			}
			p, ok := peers[keys[c.peer]]
			if !ok {
				return fmt.Errorf("%s's device has no peer for %s", c.node, c.peer)
			}
			if h := endpointHost(p.Endpoint); h != c.host {
				return fmt.Errorf("%s's device reaches %s at %s, want %s:*", c.node, c.peer, p.Endpoint, c.host)
			}
			if err := tp.wantHolder(c.node, wgIPs[c.peer], keys[c.peer]); err != nil {
				return err
			}
		}
		return nil
	})

	const count, size = 100, 1000
	burst := int64(count * size)
	pBefore, err := tp.wgDump("p", tp.dev("p"))
	if err != nil {
		t.Fatal(err)
	}
	aBefore, err := tp.wgDump("a", tp.dev("a"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := tp.ns("a").Command("ping", "-n", "-q", "-c", strconv.Itoa(count), "-i", "0.01", "-s", strconv.Itoa(size), "-W", "1", wgIPs["b"]).CombinedOutput()
	if err != nil {
		t.Fatalf("burst a -> b: %v: %s", err, out)
	}
	pAfter, err := tp.wgDump("p", tp.dev("p"))
	if err != nil {
		t.Fatal(err)
	}
	aAfter, err := tp.wgDump("a", tp.dev("a"))
	if err != nil {
		t.Fatal(err)
	}
	b := keys["b"]
	if rx, tx := aAfter[b].RX-aBefore[b].RX, aAfter[b].TX-aBefore[b].TX; rx < burst || tx < burst {
		t.Errorf("a's peer b moved rx %d tx %d bytes during a burst of %d bytes each way: the burst did not go a→b directly", rx, tx, burst)
	}
	for _, n := range []string{"a", "b"} {
		k := keys[n]
		rx, tx := pAfter[k].RX-pBefore[k].RX, pAfter[k].TX-pBefore[k].TX
		t.Logf("during the %d-byte burst a→b, P's peer %s moved rx %d tx %d bytes", burst, n, rx, tx)
		// admin traffic (Hellos, ≈0.5 KB per 5 s; a route database) may flow meanwhile;
		// the burst (≥ 100 KB each way through a relay) may not
		if rx > burst/4 || tx > burst/4 {
			t.Errorf("P's peer %s moved rx %d tx %d bytes during the a→b burst: the traffic went through P", n, rx, tx)
		}
	}
}
