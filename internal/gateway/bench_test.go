package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/compat/vpndaemon"
	"github.com/wirefleet/wirefleet/internal/testenv"
	"github.com/wirefleet/wirefleet/internal/wgdev"
	"github.com/wirefleet/wirefleet/internal/wgdev/auto"
)

// Benchmarks of the vpn-daemon API over the REAL userspace backend (embedded wireguard-go
// on a TUN in a throwaway network namespace). Privileged: run as root, e.g.
//
//	go test -run '^$' -bench . -benchmem ./internal/gateway/

// benchDevice opens a userspace device in its own namespace.
func benchDevice(b *testing.B) wgdev.Device {
	b.Helper()
	testenv.Privileged(b)
	ns := testenv.NewNetNS(b, "gwbn")
	priv, err := wirefleet.GeneratePrivateKey()
	if err != nil {
		b.Fatal(err)
	}
	dev, err := auto.Open(context.Background(), auto.Config{
		Backend: "userspace", Name: testenv.UniqueName("wfbn"), PrivateKey: priv, NetNS: ns.Name,
		Addresses: []netip.Prefix{netip.MustParsePrefix("198.51.100.1/24")},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = dev.Close() })
	return dev
}

// benchPeer is the i-th synthetic peer: a fresh key and a unique IPv6 /128.
func benchPeer(b *testing.B, i int) wgdev.Peer {
	priv, err := wirefleet.GeneratePrivateKey()
	if err != nil {
		b.Fatal(err)
	}
	a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)})
	return wgdev.Peer{PublicKey: priv.PublicKey(), AllowedIPs: []netip.Prefix{netip.PrefixFrom(a, 128)}}
}

// populate configures n peers directly on the device, in batches.
func populate(b *testing.B, dev wgdev.Device, n int) {
	b.Helper()
	for start := 0; start < n; start += 1000 {
		batch := make([]wgdev.Peer, 0, 1000)
		for i := start; i < min(start+1000, n); i++ {
			batch = append(batch, benchPeer(b, i))
		}
		if err := dev.ApplyPeers(context.Background(), batch, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func addForm(p wgdev.Peer) string {
	return "public_key=" + url.QueryEscape(p.PublicKey.String()) + "&ip_net=" + url.QueryEscape(p.AllowedIPs[0].String())
}

func post(b *testing.B, client *http.Client, u, form string) {
	resp, err := client.Post(u, "application/x-www-form-urlencoded", strings.NewReader(form))
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b.Fatalf("POST %s: status %d", u, resp.StatusCode)
	}
}

// BenchmarkAddPeer measures one add_peer request, from sending it to its 204 (which the
// handler sends only after the device applied the peer), with 0, 1k and 10k peers already
// on the device. The peers added by a run are removed before the next one so the base stays.
func BenchmarkAddPeer(b *testing.B) {
	for _, n := range []int{0, 1000, 10000} {
		dev := benchDevice(b)
		populate(b, dev, n)
		srv := httptest.NewServer(vpndaemon.New(vpndaemon.Config{Device: dev}))
		b.Cleanup(srv.Close)
		client := srv.Client()
		b.Run(fmt.Sprintf("peers=%d", n), func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			added := make([]wirefleet.Key, 0, b.N)
			forms := make([]string, b.N)
			for i := range forms {
				p := benchPeer(b, 1<<20+i)
				forms[i] = addForm(p)
				added = append(added, p.PublicKey)
			}
			b.ResetTimer()
			cpu0 := processCPU(b)
			for i := 0; i < b.N; i++ {
				start := time.Now()
				post(b, client, srv.URL+"/w/add_peer", forms[i])
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			cpu := processCPU(b) - cpu0
			peers, err := dev.Peers(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			if len(peers) != n+b.N {
				b.Fatalf("device has %d peers, want %d", len(peers), n+b.N)
			}
			slices.Sort(lat)
			b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
			b.ReportMetric(ms(lat[(len(lat)*99)/100]), "p99-ms")
			b.ReportMetric(ms(cpu)/float64(b.N), "cpu-ms/op")
			if err := dev.ApplyPeers(context.Background(), nil, added); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkRemovePeer measures one remove_peer request with 10k peers on the device. The
// answer must be the peer as it was just before removal, and the device port has no
// single-peer read, so every remove reads all peers: O(n), unlike add_peer.
func BenchmarkRemovePeer(b *testing.B) {
	const n = 10000
	dev := benchDevice(b)
	populate(b, dev, n)
	srv := httptest.NewServer(vpndaemon.New(vpndaemon.Config{Device: dev}))
	b.Cleanup(srv.Close)
	client := srv.Client()
	lat := make([]time.Duration, 0, b.N)
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		p := benchPeer(b, 1<<21+i)
		if err := dev.ApplyPeers(context.Background(), []wgdev.Peer{p}, nil); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		post(b, client, srv.URL+"/w/remove_peer", "public_key="+url.QueryEscape(p.PublicKey.String()))
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[(len(lat)*99)/100]), "p99-ms")
}

// BenchmarkPeerListAll measures GET /w/peer_list?show_all=yes with 10k peers: the device
// read, rendering and the HTTP transfer of the ~1.4 MB answer.
func BenchmarkPeerListAll(b *testing.B) {
	const n = 10000
	dev := benchDevice(b)
	populate(b, dev, n)
	srv := httptest.NewServer(vpndaemon.New(vpndaemon.Config{Device: dev}))
	b.Cleanup(srv.Close)
	client := srv.Client()
	var size int64
	cpu0 := processCPU(b)
	for b.Loop() {
		resp, err := client.Get(srv.URL + "/w/peer_list?show_all=yes")
		if err != nil {
			b.Fatal(err)
		}
		size, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	b.ReportMetric(ms(processCPU(b)-cpu0)/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64(size), "resp-bytes")
}

// BenchmarkApply10kVsSyncconf applies the same 10k peers to a fresh userspace device
// twice in one run: through the gateway (one add_peer request each, sequentially, as the
// portal's sync does) and with `wg syncconf` of one config file, and reports the ratio.
// Use -benchtime=1x.
func BenchmarkApply10kVsSyncconf(b *testing.B) {
	testenv.Privileged(b, "wg")
	const n = 10000
	peers := make([]wgdev.Peer, n)
	for i := range peers {
		peers[i] = benchPeer(b, i)
	}
	for b.Loop() {
		// Through the gateway.
		dev := benchDevice(b)
		srv := httptest.NewServer(vpndaemon.New(vpndaemon.Config{Device: dev}))
		client := srv.Client()
		start := time.Now()
		for _, p := range peers {
			post(b, client, srv.URL+"/w/add_peer", addForm(p))
		}
		viaGateway := time.Since(start)
		srv.Close()

		// wg syncconf on a device of the same kind.
		dev2 := benchDevice(b)
		info, err := dev2.Info(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		var conf strings.Builder
		conf.WriteString("[Interface]\nPrivateKey = " + newPrivateKey(b) + "\n")
		for _, p := range peers {
			fmt.Fprintf(&conf, "\n[Peer]\nPublicKey = %s\nAllowedIPs = %s\n", p.PublicKey, p.AllowedIPs[0])
		}
		file := filepath.Join(b.TempDir(), "wg.conf")
		if err := os.WriteFile(file, []byte(conf.String()), 0o600); err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		if out, err := exec.Command("wg", "syncconf", info.Name, file).CombinedOutput(); err != nil {
			b.Fatalf("wg syncconf: %v: %s", err, out)
		}
		viaSyncconf := time.Since(start)
		for _, d := range []wgdev.Device{dev, dev2} {
			got, err := d.Peers(context.Background())
			if err != nil || len(got) != n {
				b.Fatalf("device has %d peers (%v), want %d", len(got), err, n)
			}
		}
		b.ReportMetric(viaGateway.Seconds(), "gateway-s")
		b.ReportMetric(viaSyncconf.Seconds(), "syncconf-s")
		b.ReportMetric(viaGateway.Seconds()/viaSyncconf.Seconds(), "ratio")
	}
}

func newPrivateKey(b *testing.B) string {
	k, err := wirefleet.GeneratePrivateKey()
	if err != nil {
		b.Fatal(err)
	}
	return k.String()
}

// processCPU is the CPU time (user+system) the whole process used so far: client, server
// and the embedded WireGuard device all run in it. On a shared machine it says more about
// the cost of a request than the wall-clock time, which includes waiting for a core.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
