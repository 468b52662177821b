package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/reconcile"
	"github.com/wirefleet/wirefleet/internal/replication"
	"github.com/wirefleet/wirefleet/internal/testenv"
	"github.com/wirefleet/wirefleet/internal/wgdev"
	"github.com/wirefleet/wirefleet/internal/wgdev/auto"
)

// Benchmarks of managed mode over the REAL userspace backend (embedded wireguard-go on a
// TUN without addresses, so the host's routes are untouched). Privileged: as root,
//
//	go test -run '^$' -bench 'Managed' -benchtime 3x ./internal/gateway/

// staticSource serves one snapshot and an idle log.
type staticSource struct{ snap wirefleet.Snapshot }

func (s staticSource) Snapshot(context.Context) (wirefleet.Snapshot, error) { return s.snap, nil }
func (s staticSource) Head(context.Context) (uint64, wirefleet.Hash, error) {
	return s.snap.Seq, s.snap.Hash, nil
}
func (s staticSource) Op(_ context.Context, seq uint64) (wirefleet.Op, error) {
	return wirefleet.Op{}, wirefleet.Errorf(wirefleet.KindNotFound, "op %d", seq)
}
func (s staticSource) OpsAfter(context.Context, uint64, int) ([]wirefleet.Op, error) {
	return nil, nil
}
func (s staticSource) WaitOps(ctx context.Context, _ uint64) error { <-ctx.Done(); return ctx.Err() }

// benchSnapshot is a network with n active peers (one IPv4 /32 each, in 198.18.0.0/16).
func benchSnapshot(b *testing.B, n int) wirefleet.Snapshot {
	b.Helper()
	priv, _ := wirefleet.GeneratePrivateKey()
	net := wirefleet.NetworkValueOf(wirefleet.Network{Name: "bench", ListenPort: 51820, IPv4: netip.MustParsePrefix("198.18.0.1/16"),
		MTU: 1420, Allocation: wirefleet.AllocSequential, PublicKey: priv.PublicKey(), PrivateKey: wirefleet.NewSecretKey(priv)})
	snap := wirefleet.Snapshot{Seq: uint64(n + 1), Hash: wirefleet.Hash{1}, Networks: []wirefleet.NetworkValue{net}}
	for i := range n {
		k, _ := wirefleet.GeneratePrivateKey()
		a := netip.AddrFrom4([4]byte{198, 18, byte((i + 2) >> 8), byte(i + 2)})
		snap.Peers = append(snap.Peers, wirefleet.PeerValueOf(wirefleet.Peer{Network: "bench", PublicKey: k.PublicKey(), Enabled: true, Addresses: []netip.Addr{a}}))
	}
	return snap
}

// countingDevice counts reads and writes and reports upserted peers.
type countingDevice struct {
	wgdev.Device
	mu            sync.Mutex
	reads, writes int
	upserted      int
	onApply       func(total int)
}

func (d *countingDevice) ApplyPeers(ctx context.Context, up []wgdev.Peer, rm []wirefleet.Key) error {
	err := d.Device.ApplyPeers(ctx, up, rm)
	d.mu.Lock()
	d.writes++
	d.upserted += len(up)
	total, f := d.upserted, d.onApply
	d.mu.Unlock()
	if f != nil {
		f(total)
	}
	return err
}

func (d *countingDevice) Peers(ctx context.Context) ([]wgdev.PeerStatus, error) {
	d.mu.Lock()
	d.reads++
	d.mu.Unlock()
	return d.Device.Peers(ctx)
}

// snapshotServer serves snap to gateways over the replication routes.
func snapshotServer(b *testing.B, snap wirefleet.Snapshot) *httptest.Server {
	h := replication.NewHandler(replication.Options{Source: staticSource{snap}, Logger: quiet()})
	srv := httptest.NewServer(h.Mount(func(*http.Request) (replication.Caller, error) {
		return replication.Caller{Roles: []wirefleet.Role{wirefleet.RoleGateway}}, nil
	}))
	b.Cleanup(srv.Close)
	return srv
}

// startManaged runs a managed gateway following srv onto a new userspace device (named
// from prefix) in ns; complete is called once, when the device has received n peers. The
// channel carries RunManaged's result.
func startManaged(ctx context.Context, b *testing.B, srv *httptest.Server, ns *testenv.NetNS, prefix string, stats time.Duration, n int, complete func()) <-chan error {
	var once sync.Once
	exited := make(chan error, 1)
	cfg := Managed{ControlURL: srv.URL, Token: "x", Backend: "userspace", DeviceName: testenv.UniqueName(prefix),
		Networks: []string{"bench"}, StateDir: b.TempDir(), Logger: quiet(), StatsInterval: stats,
		OpenDevice: func(ctx context.Context, c auto.Config) (wgdev.Device, error) {
			c.NetNS = ns.Name
			d, err := auto.Open(ctx, c)
			if err != nil {
				return nil, err
			}
			return &countingDevice{Device: d, onApply: func(total int) {
				if total >= n {
					once.Do(complete)
				}
			}}, nil
		}}
	go func() { exited <- RunManaged(ctx, cfg) }()
	return exited
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// BenchmarkManagedColdStart50k: a managed gateway starts with an empty state dir, loads
// a 50k-peer snapshot over HTTP and brings a fresh userspace device to it; compared in the
// same run with `wg syncconf` of the same 50k peers into a fresh wireguard-go device.
func BenchmarkManagedColdStart50k(b *testing.B) {
	testenv.Privileged(b, "wg", "wireguard-go")
	const n = 50000
	snap := benchSnapshot(b, n)
	srv := snapshotServer(b, snap)

	b.Run("wirefleet", func(b *testing.B) {
		ns := testenv.NewNetNS(b, "wfcs") // the device's addresses stay out of the host
		for b.Loop() {
			done := make(chan struct{})
			ctx, cancel := context.WithCancel(context.Background())
			start := time.Now()
			var took time.Duration
			exited := startManaged(ctx, b, srv, ns, "wfcs", time.Hour, n, func() { took = time.Since(start); close(done) })
			select {
			case <-done:
			case err := <-exited:
				b.Fatalf("gateway exited: %v", err)
			case <-time.After(5 * time.Minute):
				b.Fatal("cold start did not complete")
			}
			cancel()
			<-exited
			b.ReportMetric(took.Seconds()*1000, "ms-to-complete-device")
		}
	})

	b.Run("wg-syncconf", func(b *testing.B) {
		conf := filepath.Join(b.TempDir(), "wg.conf")
		var sb strings.Builder
		priv, _ := wirefleet.GeneratePrivateKey()
		fmt.Fprintf(&sb, "[Interface]\nPrivateKey = %s\n", priv)
		for _, p := range snap.Peers {
			fmt.Fprintf(&sb, "\n[Peer]\nPublicKey = %s\nAllowedIPs = %s/32\n", p.PublicKey, p.Addresses[0])
		}
		if err := os.WriteFile(conf, []byte(sb.String()), 0o600); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			name := testenv.UniqueName("wfsc")
			cmd := exec.Command("wireguard-go", "-f", name)
			cmd.Env = append(os.Environ(), "LOG_LEVEL=error")
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			sock := "/var/run/wireguard/" + name + ".sock"
			for i := 0; i < 200; i++ {
				if _, err := os.Stat(sock); err == nil {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			start := time.Now()
			out, err := exec.Command("wg", "syncconf", name, conf).CombinedOutput()
			took := time.Since(start)
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			_ = os.Remove(sock)
			if err != nil {
				b.Fatalf("wg syncconf: %v %s", err, out)
			}
			b.ReportMetric(took.Seconds()*1000, "ms-to-complete-device")
		}
	})
}

// BenchmarkManagedDriftNoop50k: a drift check with nothing to repair at 50k peers on the
// userspace device: one device read, zero writes.
func BenchmarkManagedDriftNoop50k(b *testing.B) {
	testenv.Privileged(b)
	const n = 50000
	snap := benchSnapshot(b, n)
	var dev *countingDevice
	ns := testenv.NewNetNS(b, "wfdr")
	rec, err := reconcile.New(reconcile.Config{Logger: quiet(), Open: func(ctx context.Context, nv wirefleet.NetworkValue) (wgdev.Device, error) {
		d, err := auto.Open(ctx, auto.Config{Backend: "userspace", Name: testenv.UniqueName("wfdr"), PrivateKey: nv.PrivateKey,
			ListenPort: int(nv.ListenPort), Addresses: reconcile.Addresses(nv.Network), MTU: nv.MTU, NetNS: ns.Name, Logger: quiet()})
		if err != nil {
			return nil, err
		}
		dev = &countingDevice{Device: d}
		return dev, nil
	}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := rec.Reset(ctx, snap); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = rec.Close() })
	reads, writes := dev.reads, dev.writes
	for b.Loop() {
		if n, err := rec.Drift(ctx); err != nil || n != 0 {
			b.Fatalf("drift: %d repairs, %v", n, err)
		}
	}
	b.ReportMetric(float64(dev.reads-reads)/float64(b.N), "device-reads/op")
	b.ReportMetric(float64(dev.writes-writes)/float64(b.N), "device-writes/op")
}

// BenchmarkManagedHeapPerPeer separates the managed gateway's own memory from the device's:
// live heap after GC per peer of (a) the embedded userspace device alone holding n peers,
// and (b) the whole managed gateway (follower, reconciler state, stats samples, device)
// serving the same n peers after a statistics cycle; (b) − (a) is what managed mode costs
// beyond the device. Privileged, as root:
//
//	go test -run '^$' -bench ManagedHeapPerPeer -benchtime 1x ./internal/gateway/
func BenchmarkManagedHeapPerPeer(b *testing.B) {
	testenv.Privileged(b)
	const n = 20000
	snap := benchSnapshot(b, n)
	srv := snapshotServer(b, snap)
	ns := testenv.NewNetNS(b, "wfhp")
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	for b.Loop() {
		// (a) the device alone.
		ups := make([]wgdev.Peer, 0, n)
		for _, p := range snap.Peers {
			ups = append(ups, wgdev.Peer{PublicKey: p.PublicKey, AllowedIPs: p.AllowedIPs()})
		}
		h0 := heap()
		d, err := auto.Open(context.Background(), auto.Config{Backend: "userspace", Name: testenv.UniqueName("wfha"), PrivateKey: snap.Networks[0].PrivateKey,
			ListenPort: 51820, NetNS: ns.Name, Logger: quiet()})
		if err != nil {
			b.Fatal(err)
		}
		if err := d.ApplyPeers(context.Background(), ups, nil); err != nil {
			b.Fatal(err)
		}
		h1 := heap()
		_ = d.Close()
		ups = nil
		device := float64(h1-h0) / n

		// (b) the managed gateway.
		h2 := heap()
		ctx, cancel := context.WithCancel(context.Background())
		complete := make(chan struct{})
		exited := startManaged(ctx, b, srv, ns, "wfhb", time.Second, n, func() { close(complete) })
		select {
		case <-complete:
		case err := <-exited:
			b.Fatalf("gateway exited: %v", err)
		}
		time.Sleep(2500 * time.Millisecond) // two statistics cycles
		h3 := heap()
		if f := os.Getenv("WIREFLEET_HEAP_PROFILE"); f != "" {
			if out, err := os.Create(f); err == nil {
				_ = pprof.WriteHeapProfile(out)
				_ = out.Close()
			}
		}
		cancel()
		<-exited
		gateway := float64(h3-h2) / n
		b.ReportMetric(device, "B/peer-device")
		b.ReportMetric(gateway, "B/peer-gateway")
		b.ReportMetric(gateway-device, "B/peer-beyond-device")
	}
}
