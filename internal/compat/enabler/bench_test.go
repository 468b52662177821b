package enabler_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/compat/enabler"
	"github.com/wirefleet/wirefleet/internal/control"
	"github.com/wirefleet/wirefleet/internal/wgdev"
)

// BenchmarkCreateClient measures POST /client through the handler on the real service
// layer and SQLite (one durable commit per request; device in memory): the cost of one
// enabler create, allocation included, on a /15.
func BenchmarkCreateClient(b *testing.B) {
	st, svc, n := openStore(b, b.TempDir(), "198.18.0.1/15")
	b.Cleanup(func() { _ = st.Close() })
	dev := memoryDevice(nil, n)
	h := enabler.New(enabler.Config{Network: "wg0", ServerIP: "vpn.example.test", ServerPort: "51820", AllowedIPs: "0.0.0.0/0"},
		svc, enabler.NewLocalGateway(svc, dev, "wg0", nil), dev)
	keys := make([]string, b.N)
	for i := range keys {
		k, _ := wirefleet.GeneratePrivateKey()
		keys[i] = k.PublicKey().String()
	}
	b.ResetTimer()
	for i := range b.N {
		req := httptest.NewRequest("POST", "/client", strings.NewReader(`{"publicKey":"`+keys[i]+`"}`))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("create %d: %d %s", i, rec.Code, rec.Body)
		}
	}
}

// BenchmarkRenderShow renders /info for 1000 peers with statistics.
func BenchmarkRenderShow(b *testing.B) {
	info := wgdev.Info{Name: "wg0", PublicKey: wirefleet.Key{1}, ListenPort: 51820}
	now := time.Now()
	peers := make([]wgdev.PeerStatus, 1000)
	a := netip.MustParseAddr("198.18.0.2")
	for i := range peers {
		k, _ := wirefleet.GeneratePrivateKey()
		peers[i] = wgdev.PeerStatus{Peer: wgdev.Peer{PublicKey: k.PublicKey(), AllowedIPs: []netip.Prefix{netip.PrefixFrom(a, 32)},
			PersistentKeepalive: 25 * time.Second}, LastHandshake: now.Add(-time.Duration(i) * time.Second), RxBytes: int64(i) << 12, TxBytes: int64(i) << 14}
		a = a.Next()
	}
	b.ResetTimer()
	for range b.N {
		_ = enabler.RenderShow(info, peers, now)
	}
}

// BenchmarkRestore10k measures the restore on start: 10,000 enabled clients read from
// SQLite and put on an empty device (in memory, so this is the store and diff cost).
func BenchmarkRestore10k(b *testing.B) {
	st, svc, n := openStore(b, b.TempDir(), "198.18.0.1/15")
	b.Cleanup(func() { _ = st.Close() })
	ctx := b.Context()
	for range 10000 {
		k, _ := wirefleet.GeneratePrivateKey()
		if _, err := svc.CreatePeer(ctx, control.PeerInput{Network: "wg0", PublicKey: k.PublicKey()}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		gw := enabler.NewLocalGateway(svc, memoryDevice(nil, n), "wg0", nil)
		res, err := gw.Reconcile(ctx)
		if err != nil || res.Upserted != 10000 {
			b.Fatalf("%+v %v", res, err)
		}
	}
}
