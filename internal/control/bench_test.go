package control_test

import (
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/control"
)

// Benchmarks of the control plane through the service layer on a real SQLite file with
// fsync on (synchronous=FULL). Figures: docs/benchmarks/store.md.

func benchNetwork(b *testing.B, e *env, name string) {
	in := control.NetworkInput{Name: name, IPv4: netip.MustParsePrefix("198.18.0.1/15"), IPv6: netip.MustParsePrefix("2001:db8:ff::1/64")}
	if _, err := e.svc.CreateNetwork(ctx, in); err != nil {
		b.Fatal(err)
	}
}

func reportRate(b *testing.B, n int64, d time.Duration, unit string) {
	b.ReportMetric(float64(n)/d.Seconds(), unit)
}

// BenchmarkCreatePeer: durable peer creates (IPAM + one transaction + op + fsync per batch).
func BenchmarkCreatePeer(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		e := newEnv(b)
		benchNetwork(b, e, "bench")
		var i int
		start, cpu := time.Now(), startCPU()
		for b.Loop() {
			i++
			if _, err := e.svc.CreatePeer(ctx, control.PeerInput{Network: "bench", PublicKey: key(i)}); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b, int64(i), time.Since(start), "creates/s")
		cpu.report(b, int64(i))
	})
	b.Run("concurrency64", func(b *testing.B) {
		e := newEnv(b)
		benchNetwork(b, e, "bench")
		var n atomic.Int64
		b.SetParallelism(64 / max(1, testingProcs()))
		start, cpu := time.Now(), startCPU()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := int(n.Add(1))
				if _, err := e.svc.CreatePeer(ctx, control.PeerInput{Network: "bench", PublicKey: key(i)}); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportRate(b, n.Load(), time.Since(start), "creates/s")
		cpu.report(b, n.Load())
		st := e.st.Stats()
		b.ReportMetric(float64(st.Calls)/float64(max(st.Batches, 1)), "calls/fsync")
	})
}

// importInput builds a network of n peers, half of them with static addresses.
func importInput(name string, n int) control.ImportInput {
	in := control.ImportInput{Network: control.NetworkInput{Name: name, IPv4: netip.MustParsePrefix("198.18.0.1/15"), IPv6: netip.MustParsePrefix("2001:db8:ee::1/64")}}
	in.Peers = make([]control.PeerInput, n)
	for i := range n {
		in.Peers[i] = control.PeerInput{PublicKey: key(i + 1), Name: fmt.Sprintf("peer-%d", i)}
		if i%2 == 0 {
			in.Peers[i].Addresses = []netip.Addr{netip.AddrFrom4([4]byte{198, 18, byte((i + 2) >> 8), byte(i + 2)})}
		}
	}
	return in
}

// BenchmarkImport20k: one transaction creating a network with 20,000 peers (and 20,001 ops).
func BenchmarkImport20k(b *testing.B) {
	e := newEnv(b)
	i := 0
	var cpu time.Duration
	for b.Loop() {
		i++
		b.StopTimer()
		in := importInput(fmt.Sprintf("imp%d", i), 20000)
		b.StartTimer()
		c := cpuTime()
		if _, err := e.svc.ImportNetwork(ctx, in); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - c
	}
	b.ReportMetric(float64(cpu.Milliseconds())/float64(i), "cpu-ms/op")
}

// BenchmarkListPeers50k: one page of all 50,000 peers of a network.
func BenchmarkListPeers50k(b *testing.B) {
	e := newEnv(b)
	if _, err := e.svc.ImportNetwork(ctx, importInput("big", 50000)); err != nil {
		b.Fatal(err)
	}
	cpu, n := startCPU(), int64(0)
	for b.Loop() {
		n++
		page, err := e.svc.ListPeers(ctx, control.PeerFilter{Network: "big", Limit: 50000})
		if err != nil {
			b.Fatal(err)
		}
		if len(page.Peers) != 50000 {
			b.Fatalf("%d peers", len(page.Peers))
		}
	}
	cpu.report(b, n)
}

// BenchmarkAuthenticate: a token check on the read path (no write per request).
func BenchmarkAuthenticate(b *testing.B) {
	e := newEnv(b)
	_, secret, err := e.svc.CreateToken(ctx, control.TokenInput{Roles: []wirefleet.Role{wirefleet.RoleAdmin}})
	if err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.svc.Authenticate(ctx, secret); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
