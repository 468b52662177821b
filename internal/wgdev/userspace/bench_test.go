package userspace_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/testenv"
	"github.com/wirefleet/wirefleet/internal/wgdev"
	"github.com/wirefleet/wirefleet/internal/wgdev/userspace"
	"github.com/wirefleet/wirefleet/internal/wgdev/wgdevtest"
)

// benchDevice opens a userspace device in ns holding n peers.
func benchDevice(b *testing.B, ns *testenv.NetNS, n int) (*userspace.Device, []wgdev.Peer) {
	b.Helper()
	d, err := userspace.Open(context.Background(), userspace.Config{Name: testenv.UniqueName("wfb"), NetNS: ns.Name, Logger: wgdevtest.Logger(b)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	peers := wgdevtest.MakePeers(b, 0, n)
	if err := d.ApplyPeers(context.Background(), peers, nil); err != nil {
		b.Fatal(err)
	}
	return d, peers
}

// BenchmarkApplyOnePeer: one change (a peer's allowed IP moves, so one prefix is added and
// the stale one removed; or a peer is added and removed again) with 0, 1k and 10k peers
// present. The target is that the cost does not grow with the peer count.
func BenchmarkApplyOnePeer(b *testing.B) {
	testenv.Privileged(b)
	ns := testenv.NewNetNS(b, "wfb")
	for _, n := range []int{0, 1000, 10000} {
		d, _ := benchDevice(b, ns, n)
		ctx := context.Background()
		b.Run(fmt.Sprintf("move/peers=%d", n), func(b *testing.B) {
			p := wgdev.Peer{PublicKey: wgdevtest.NewKey(b)}
			i := 0
			for b.Loop() {
				i++
				p.AllowedIPs = []netip.Prefix{wgdevtest.Host(100000 + i%2)}
				if err := d.ApplyPeers(ctx, []wgdev.Peer{p}, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("add+remove/peers=%d", n), func(b *testing.B) {
			p := wgdev.Peer{PublicKey: wgdevtest.NewKey(b), AllowedIPs: []netip.Prefix{wgdevtest.Host(110000)}}
			for b.Loop() {
				if err := d.ApplyPeers(ctx, []wgdev.Peer{p}, nil); err != nil {
					b.Fatal(err)
				}
				if err := d.ApplyPeers(ctx, nil, []wirefleet.Key{p.PublicKey}); err != nil {
					b.Fatal(err)
				}
			}
		})
		d.Close()
	}
}

// BenchmarkPeers10k: reading 10k peers with their statistics.
func BenchmarkPeers10k(b *testing.B) {
	testenv.Privileged(b)
	ns := testenv.NewNetNS(b, "wfb")
	d, _ := benchDevice(b, ns, 10000)
	b.ReportAllocs()
	for b.Loop() {
		got, err := d.Peers(context.Background())
		if err != nil || len(got) != 10000 {
			b.Fatalf("Peers: %d peers, %v", len(got), err)
		}
	}
}

// BenchmarkApply10kVsSyncconf applies the same 10k peers, in the same run, (1) through
// this backend into a fresh embedded device in one ApplyPeers, and (2) with `wg syncconf`
// from a config file into a fresh Debian wireguard-go device. Device creation is not
// timed; both devices are up. Reported: ns per 10k-peer apply for each, and their ratio (syncconf/wirefleet).
func BenchmarkApply10kVsSyncconf(b *testing.B) {
	testenv.Privileged(b, "wg", "wireguard-go")
	const n = 10000
	ns := testenv.NewNetNS(b, "wfb")
	peers := wgdevtest.MakePeers(b, 0, n)
	priv, _ := wirefleet.GeneratePrivateKey()
	conf := filepath.Join(b.TempDir(), "wg.conf")
	if err := os.WriteFile(conf, []byte(wgQuickConf(priv, peers)), 0o600); err != nil {
		b.Fatal(err)
	}
	var ours, theirs time.Duration
	for b.Loop() {
		b.StopTimer()
		d, err := userspace.Open(context.Background(), userspace.Config{Name: testenv.UniqueName("wfb"), PrivateKey: priv, NetNS: ns.Name, Logger: wgdevtest.Logger(b)})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		if err := d.ApplyPeers(context.Background(), peers, nil); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(start)
		b.StopTimer()
		d.Close()

		name := testenv.UniqueName("wfs")
		stop := wgdevtest.StartWireguardGo(b, ns, name)
		// Up like ours, so that both start each peer's routines as they are added.
		ns.Exec(b, "ip", "link", "set", name, "up")
		b.StartTimer()
		start = time.Now()
		if out, err := exec.Command("wg", "syncconf", name, conf).CombinedOutput(); err != nil {
			b.Fatalf("wg syncconf: %v\n%s", err, out)
		}
		theirs += time.Since(start)
		b.StopTimer()
		if out, _ := exec.Command("wg", "show", name, "peers").Output(); strings.Count(string(out), "\n") != n {
			b.Fatalf("wg syncconf left %d peers, want %d", strings.Count(string(out), "\n"), n)
		}
		stop()
		b.StartTimer()
	}
	b.ReportMetric(float64(ours.Nanoseconds())/float64(b.N), "wirefleet-ns/apply")
	b.ReportMetric(float64(theirs.Nanoseconds())/float64(b.N), "syncconf-ns/apply")
	b.ReportMetric(float64(theirs)/float64(ours), "syncconf/wirefleet")
}

func wgQuickConf(priv wirefleet.Key, peers []wgdev.Peer) string {
	var s strings.Builder
	fmt.Fprintf(&s, "[Interface]\nPrivateKey = %s\n", priv)
	for _, p := range peers {
		fmt.Fprintf(&s, "\n[Peer]\nPublicKey = %s\nAllowedIPs = ", p.PublicKey)
		for i, a := range p.AllowedIPs {
			if i > 0 {
				s.WriteString(", ")
			}
			s.WriteString(a.String())
		}
		s.WriteString("\n")
	}
	return s.String()
}
