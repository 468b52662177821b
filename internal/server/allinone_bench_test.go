package server

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/control"
	"github.com/wirefleet/wirefleet/internal/testenv"
	"github.com/wirefleet/wirefleet/internal/wgdev"
	"github.com/wirefleet/wirefleet/internal/wgdev/auto"
)

// watchDevice signals when a key is upserted on the device.
type watchDevice struct {
	wgdev.Device
	mu       sync.Mutex
	upserted int
	waiters  map[wirefleet.Key]chan time.Time
}

func (d *watchDevice) ApplyPeers(ctx context.Context, up []wgdev.Peer, rm []wirefleet.Key) error {
	err := d.Device.ApplyPeers(ctx, up, rm)
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.upserted += len(up)
	for _, p := range up {
		if ch, ok := d.waiters[p.PublicKey]; ok {
			ch <- now
			delete(d.waiters, p.PublicKey)
		}
	}
	return err
}

func (d *watchDevice) wait(k wirefleet.Key) chan time.Time {
	ch := make(chan time.Time, 1)
	d.mu.Lock()
	d.waiters[k] = ch
	d.mu.Unlock()
	return ch
}

func (d *watchDevice) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.upserted
}

// BenchmarkPropagation: change propagation API → device. The all-in-one server holds 10k
// peers; each iteration creates one peer through the REST API (HTTP, durable SQLite
// commit) and waits until the local managed gateway has upserted it on its REAL userspace
// device (the op travels over the replication log stream). Privileged (TUN), as root:
//
//	go test -run '^$' -bench Propagation -benchtime 1000x ./internal/server/
func BenchmarkPropagation(b *testing.B) {
	testenv.Privileged(b)
	const preload = 10000
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := b.TempDir()
	st, closeStore, err := OpenStore(ctx, dir, quiet)
	if err != nil {
		b.Fatal(err)
	}
	svc := control.New(st, control.Options{Logger: quiet})
	in := control.ImportInput{Network: control.NetworkInput{Name: "default", ListenPort: 51820, IPv4: netip.MustParsePrefix("198.18.0.1/16")}}
	for range preload {
		k, _ := wirefleet.GeneratePrivateKey()
		in.Peers = append(in.Peers, control.PeerInput{PublicKey: k.PublicKey()})
	}
	if _, err := svc.ImportNetwork(ctx, in); err != nil {
		b.Fatal(err)
	}
	_, admin, err := svc.CreateToken(ctx, control.TokenInput{Roles: []wirefleet.Role{wirefleet.RoleAdmin}})
	if err != nil {
		b.Fatal(err)
	}
	if err := closeStore(); err != nil {
		b.Fatal(err)
	}

	ns := testenv.NewNetNS(b, "wfpr")
	dev := &watchDevice{waiters: map[wirefleet.Key]chan time.Time{}}
	var opened sync.Once
	open := func(ctx context.Context, c auto.Config) (wgdev.Device, error) {
		c.NetNS, c.Backend, c.Name = ns.Name, "userspace", testenv.UniqueName("wfpr")
		d, err := auto.Open(ctx, c)
		if err != nil {
			return nil, err
		}
		opened.Do(func() { dev.Device = d })
		return dev, nil
	}
	logs := &testenv.Buffer{}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- Run(rctx, Config{DataDir: dir, Listen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(logs, nil)),
			AllInOne: AllInOne{OpenDevice: open, StatsInterval: time.Hour, DriftInterval: time.Hour, Out: io.Discard}})
	}()
	b.Cleanup(func() { cancel(); <-done })
	s := &allInOne{t: b}
	re := regexp.MustCompile(`control plane listening" addr=(\S+)`)
	for deadline := time.Now().Add(20 * time.Second); s.addr == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(logs.String()); m != nil {
			s.addr = m[1]
		}
	}
	if s.addr == "" {
		b.Fatalf("server did not start:\n%s", logs.String())
	}
	for deadline := time.Now().Add(5 * time.Minute); dev.count() < preload; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("the local gateway did not load the %d peers:\n%s", preload, logs.String())
		}
	}

	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k, _ := wirefleet.GeneratePrivateKey()
		pub := k.PublicKey()
		ch := dev.wait(pub)
		start := time.Now()
		if code, body := s.do("POST", "/api/v1/networks/default/peers", admin, map[string]any{"public_key": pub}); code != 201 && code != 200 {
			b.Fatalf("create: %d %s", code, body)
		}
		select {
		case at := <-ch:
			lat = append(lat, at.Sub(start))
		case <-time.After(10 * time.Second):
			b.Fatalf("peer %d never reached the device", i)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e6 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1])/1e6, "max-ms")
}
