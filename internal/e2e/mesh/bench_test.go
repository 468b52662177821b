package mesh

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet/internal/e2e"
	"github.com/wirefleet/wirefleet/internal/testenv"
)

// Privileged benchmarks (root, namespaces, TUN): run them with
//
//	go test -run '^$' -bench . -benchtime 3x ./internal/e2e/mesh/
//
// They report custom metrics; ns/op is the whole iteration (start, converge, stop) and is
// not the figure of interest. Results are in docs/benchmarks/mesh.md.

// BenchmarkConvergenceNAT: the 4-node NAT topology from the start of all nodes to
// all-pairs reachability (s_reach) and to the final paths (A-C lan, A-B and C-B nat:
// s_paths).
func BenchmarkConvergenceNAT(b *testing.B) {
	tp := newTopoTB(b, "")
	var reach, final time.Duration
	for i := 0; b.Loop(); i++ {
		tp.dir = b.TempDir()
		tp.net = tp.networkFile("net.yaml", sharedKey)
		start := time.Now()
		for _, n := range []string{"p", "a", "b", "c"} {
			tp.start(n)
		}
		e2e.EventuallyEvery(b, 30*time.Second, benchPoll, func() error { return tp.allPairs("a", "b", "c", "p") })
		reach += time.Since(start)
		e2e.EventuallyEvery(b, 30*time.Second, benchPoll, func() error {
			for _, c := range [][3]string{{"a", "c", "lan"}, {"a", "b", "nat"}, {"c", "b", "nat"}} {
				if err := tp.wantPath(c[0], wgIPs[c[1]], c[2], ""); err != nil {
					return err
				}
			}
			return nil
		})
		final += time.Since(start)
		for _, p := range tp.nodes {
			p.Stop(5 * time.Second)
		}
	}
	b.ReportMetric(reach.Seconds()/float64(b.N), "s_reach/op")
	b.ReportMetric(final.Seconds()/float64(b.N), "s_paths/op")
}

// BenchmarkConvergenceLAN: 12 nodes on one flat LAN, one of them the static peer: from the
// start of all nodes to all-pairs reachability (s_reach) and to every pair being a direct
// LAN peer (s_lan).
func BenchmarkConvergenceLAN(b *testing.B) {
	lan := newFlatLAN(b, 12)
	var reach, direct time.Duration
	for b.Loop() {
		start := time.Now()
		lan.startAll(b)
		e2e.EventuallyEvery(b, 30*time.Second, benchPoll, lan.allPairs)
		reach += time.Since(start)
		e2e.EventuallyEvery(b, 30*time.Second, benchPoll, lan.allDirect)
		direct += time.Since(start)
		lan.stopAll()
	}
	b.ReportMetric(reach.Seconds()/float64(b.N), "s_reach/op")
	b.ReportMetric(direct.Seconds()/float64(b.N), "s_lan/op")
}

// BenchmarkAdminTraffic: admin bytes sent per node per minute in steady state on a flat
// LAN of 4, 8 and 12 nodes (every node a direct peer of every other), and the same per
// direct peer: constant per peer means linear growth. The window is MESH_BENCH_WINDOW
// (default 30s), scaled to a minute.
func BenchmarkAdminTraffic(b *testing.B) {
	window := 30 * time.Second
	if v := os.Getenv("MESH_BENCH_WINDOW"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("MESH_BENCH_WINDOW: %v", err)
		}
		window = d
	}
	for _, n := range []int{4, 8, 12} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			lan := newFlatLAN(b, n)
			var perNode float64
			for b.Loop() {
				lan.startAll(b)
				e2e.EventuallyEvery(b, 30*time.Second, benchPoll, lan.allDirect)
				time.Sleep(10 * time.Second) // let the convergence burst (route databases, endpoint updates) settle
				before := lan.sentBytes(b)
				time.Sleep(window)
				perNode += (lan.sentBytes(b) - before) / float64(n) * float64(time.Minute) / float64(window)
				lan.stopAll()
			}
			perNode /= float64(b.N)
			b.ReportMetric(perNode, "B/node/min")
			b.ReportMetric(perNode/float64(n-1), "B/peer/min")
		})
	}
}

// ---- helpers for *testing.B ----

func newTopoTB(b *testing.B, symmetric string) *topo {
	b.Helper()
	testenv.Privileged(b, "nft", "ping", "sysctl")
	prefix := fmt.Sprintf("m%d%d", os.Getpid()%100000, topoSeq.Add(1))
	script, _ := filepath.Abs("testdata/nat-topology.sh")
	args := []string{"up", "--prefix", prefix}
	if symmetric != "" {
		args = append(args, "--symmetric", symmetric)
	}
	if out, err := exec.Command(script, args...).CombinedOutput(); err != nil {
		b.Fatalf("nat topology: %v\n%s", err, out)
	}
	b.Cleanup(func() { _ = exec.Command(script, "down", "--prefix", prefix).Run() })
	return &topo{t: b, prefix: prefix, bin: e2e.Binary(b), nodes: map[string]*e2e.Process{}, pingWait: "0.3"}
}

// benchPoll is how often the benchmarks poll for convergence: finer than e2e.Eventually's
// default, so that polling does not dominate the measured time.
const benchPoll = 50 * time.Millisecond

// flatLAN is n nodes on one bridge (198.18.3.0/24); node 1 is the static peer.
type flatLAN struct {
	bin   string
	ns    []*testenv.NetNS
	dir   string
	net   string
	procs []*e2e.Process
}

func newFlatLAN(b *testing.B, n int) *flatLAN {
	b.Helper()
	testenv.Privileged(b, "ping", "curl")
	br := testenv.NewNetNS(b, "mlb")
	br.Exec(b, "ip", "link", "add", "br0", "type", "bridge")
	br.Exec(b, "ip", "link", "set", "br0", "up")
	_ = br.Command("sysctl", "-q", "-e", "-w", "net.bridge.bridge-nf-call-iptables=0").Run()
	l := &flatLAN{bin: e2e.Binary(b), dir: b.TempDir()}
	for i := 1; i <= n; i++ {
		ns := testenv.NewNetNS(b, "mln")
		testenv.Run(b, "ip", "link", "add", "eth0", "netns", ns.Name, "type", "veth", "peer", "name", fmt.Sprintf("p%d", i), "netns", br.Name)
		br.Exec(b, "ip", "link", "set", fmt.Sprintf("p%d", i), "master", "br0", "up")
		ns.Exec(b, "ip", "addr", "add", fmt.Sprintf("198.18.3.%d/24", i), "dev", "eth0")
		ns.Exec(b, "ip", "link", "set", "eth0", "up")
		ns.Exec(b, "sysctl", "-q", "-w", "net.ipv4.ip_forward=0")
		l.ns = append(l.ns, ns)
	}
	l.net = filepath.Join(l.dir, "net.yaml")
	body := "network:\n  sharedKey: " + sharedKey + "\n  subnet: 198.51.100.0/24\npeers:\n  - endPoint: 198.18.3.1:50001\n    adminPort: 50501\n    wgIp: 198.51.100.1\n"
	if err := os.WriteFile(l.net, []byte(body), 0o600); err != nil {
		b.Fatal(err)
	}
	return l
}

func (l *flatLAN) startAll(b *testing.B) {
	state := b.TempDir()
	l.procs = nil
	for i, ns := range l.ns {
		p := e2e.Start(b, ns, nil, l.bin, "mesh", "-c", l.net, "-a", fmt.Sprintf("198.51.100.%d", i+1),
			"-n", fmt.Sprintf("n%d", i+1), "-i", testenv.UniqueName("mlw"), "-backend", "userspace",
			"--state-dir", filepath.Join(state, strconv.Itoa(i+1)), "--metrics-listen", "127.0.0.1:9586")
		l.procs = append(l.procs, p)
	}
}

func (l *flatLAN) stopAll() {
	for _, p := range l.procs {
		p.Stop(5 * time.Second)
	}
}

func (l *flatLAN) allPairs() error {
	var targets []string
	for i := range l.ns {
		targets = append(targets, fmt.Sprintf("198.51.100.%d", i+1))
	}
	script := "for d in " + strings.Join(targets, " ") + "; do ping -n -q -c 1 -W 0.3 $d >/dev/null || { echo $d; exit 1; }; done"
	for i, ns := range l.ns {
		if out, err := ns.Command("sh", "-c", script).CombinedOutput(); err != nil {
			return fmt.Errorf("node %d cannot reach %s", i+1, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

func (l *flatLAN) allDirect() error {
	for i, ns := range l.ns {
		out, err := ns.Command(l.bin, "mesh", "status", "--state-dir", l.stateDirOf(i), "-o", "json").CombinedOutput()
		if err != nil {
			return fmt.Errorf("status of node %d: %v: %s", i+1, err, out)
		}
		if got := strings.Count(string(out), `"path": "lan"`) + strings.Count(string(out), `"path": "direct"`); got != len(l.ns)-1 {
			return fmt.Errorf("node %d has %d direct peers, want %d", i+1, got, len(l.ns)-1)
		}
	}
	return nil
}

func (l *flatLAN) stateDirOf(i int) string {
	// the state dir is the last argument pair before --metrics-listen
	args := l.procs[i].Cmd.Args
	for j, a := range args {
		if a == "--state-dir" {
			return args[j+1]
		}
	}
	return ""
}

// sentBytes sums wirefleet_mesh_admin_bytes_total{direction="sent"} over all nodes.
func (l *flatLAN) sentBytes(b *testing.B) float64 {
	total := 0.0
	for i, ns := range l.ns {
		out, err := ns.Command("curl", "-sf", "http://127.0.0.1:9586/metrics").Output()
		if err != nil {
			b.Fatalf("metrics of node %d: %v", i+1, err)
		}
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, `wirefleet_mesh_admin_bytes_total{direction="sent"}`) {
				v, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
				total += v
			}
		}
	}
	return total
}
