package reconcile

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"runtime"
	"testing"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/wgdev"
)

// nullDevice holds nothing: what a reconciler retains is then all that is measured.
type nullDevice struct{}

func (nullDevice) ApplyPeers(context.Context, []wgdev.Peer, []wirefleet.Key) error { return nil }
func (nullDevice) Peers(context.Context) ([]wgdev.PeerStatus, error)               { return nil, nil }
func (nullDevice) Configure(context.Context, wgdev.Interface) error                { return nil }
func (nullDevice) Info(context.Context) (wgdev.Info, error)                        { return wgdev.Info{}, nil }
func (nullDevice) Close() error                                                    { return nil }

func bigSnapshot(n int) wirefleet.Snapshot {
	priv, _ := wirefleet.GeneratePrivateKey()
	net := wirefleet.NetworkValueOf(wirefleet.Network{Name: "bench", ListenPort: 51820, IPv4: netip.MustParsePrefix("198.18.0.1/16"),
		IPv6: netip.MustParsePrefix("fd00:18::1/64"), MTU: 1420, PublicKey: priv.PublicKey(), PrivateKey: wirefleet.NewSecretKey(priv)})
	snap := wirefleet.Snapshot{Seq: uint64(n + 1), Networks: []wirefleet.NetworkValue{net}}
	for i := range n {
		var k wirefleet.Key
		k[0], k[1], k[2], k[31] = byte(i), byte(i>>8), byte(i>>16), 1
		psk := k
		psk[30] = 7
		a4 := netip.AddrFrom4([4]byte{198, 18, byte((i + 2) >> 8), byte(i + 2)})
		a6 := netip.AddrFrom16([16]byte{0xfd, 0, 0, 0x18, 14: byte((i + 2) >> 8), 15: byte(i + 2)})
		snap.Peers = append(snap.Peers, wirefleet.PeerValueOf(wirefleet.Peer{Network: "bench", PublicKey: k, Name: "laptop of someone",
			Enabled: true, Addresses: []netip.Addr{a4, a6}, PresharedKey: wirefleet.NewSecretKey(psk)}))
	}
	return snap
}

// BenchmarkRetainedPerPeer reports the heap a gateway keeps per peer of its desired state
// (dual-stack peers with a PSK), beyond the WireGuard device itself: measured after GC,
// with a device that stores nothing.
//
//	go test -run '^$' -bench RetainedPerPeer -benchtime 3x ./internal/reconcile/
func BenchmarkRetainedPerPeer(b *testing.B) {
	const n = 50000
	raw, err := json.Marshal(bigSnapshot(n)) // what the follower receives
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		r, err := New(Config{Logger: slog.New(slog.DiscardHandler), Open: func(context.Context, wirefleet.NetworkValue) (wgdev.Device, error) { return nullDevice{}, nil }})
		if err != nil {
			b.Fatal(err)
		}
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		var snap wirefleet.Snapshot
		if err := json.Unmarshal(raw, &snap); err != nil {
			b.Fatal(err)
		}
		if err := r.Reset(context.Background(), snap); err != nil {
			b.Fatal(err)
		}
		snap = wirefleet.Snapshot{} // released, as the follower does after Reset
		runtime.GC()
		runtime.ReadMemStats(&m1)
		b.ReportMetric(float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc))/n, "B/peer")
		runtime.KeepAlive(r)
		runtime.KeepAlive(raw)
	}
}
