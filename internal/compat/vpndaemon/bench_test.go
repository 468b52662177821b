package vpndaemon

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/wgdev"
	"github.com/wirefleet/wirefleet/internal/wgdev/wgdevtest"
)

// BenchmarkPeerListRender is the handler's own share of peer_list?show_all=yes at 10k
// peers (in-memory device, no HTTP transport): filtering, rendering and JSON encoding.
// The end-to-end figure over the real userspace device is in internal/gateway.
func BenchmarkPeerListRender(b *testing.B) {
	dev := wgdevtest.NewMemory("wg0")
	peers := make([]wgdev.Peer, 10000)
	for i := range peers {
		var k wirefleet.Key
		k[0], k[1], k[2] = 1, byte(i>>8), byte(i)
		a := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
		peers[i] = wgdev.Peer{PublicKey: k, AllowedIPs: []netip.Prefix{netip.PrefixFrom(a, 32), netip.MustParsePrefix("2001:db8::1/128")}}
	}
	if err := dev.ApplyPeers(context.Background(), peers, nil); err != nil {
		b.Fatal(err)
	}
	for i, p := range peers {
		if i%2 == 0 {
			dev.SetStats(p.PublicKey, time.Now(), 1<<20, 1<<21)
		}
	}
	h := New(Config{Device: dev})
	req := httptest.NewRequest(http.MethodGet, "/w/peer_list?show_all=yes", nil)
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
}
