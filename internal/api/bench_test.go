package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/api/wire"
	"github.com/wirefleet/wirefleet/internal/control"
	"github.com/wirefleet/wirefleet/internal/store/sqlite"
)

// benchEnv is a server on a real SQLite file (WAL, synchronous=FULL: every 2xx is fsynced)
// with a /15 network, big enough for any b.N.
func benchEnv(b *testing.B) (*httptest.Server, string) {
	b.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "bench.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	svc := control.New(st, control.Options{Logger: discard()})
	srv, err := New(Config{Service: svc, Logger: discard()})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	b.Cleanup(hs.Close)
	_, secret, err := svc.CreateToken(ctx, control.TokenInput{Roles: []wirefleet.Role{wirefleet.RoleAdmin}})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := svc.CreateNetwork(ctx, control.NetworkInput{Name: "bench", IPv4: netip.MustParsePrefix("198.18.0.1/15")}); err != nil {
		b.Fatal(err)
	}
	return hs, secret
}

// benchKeys pre-generates public keys so key generation is not measured.
func benchKeys(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		k, _ := wirefleet.GeneratePrivateKey()
		out[i], _ = json.Marshal(wire.PeerCreate{PublicKey: k.PublicKey(), Name: "bench"})
	}
	return out
}

func postPeer(b *testing.B, c *http.Client, url, secret string, body []byte) {
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		b.Error(err)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		b.Errorf("status %d", resp.StatusCode)
	}
}

// BenchmarkCreatePeerSerial: one client, one durable peer create after the other.
func BenchmarkCreatePeerSerial(b *testing.B) {
	hs, secret := benchEnv(b)
	keys := benchKeys(b.N)
	url := hs.URL + "/api/v1/networks/bench/peers"
	c := hs.Client()
	b.ResetTimer()
	start, cpu := time.Now(), cpuTime(b)
	for i := 0; i < b.N; i++ {
		postPeer(b, c, url, secret, keys[i])
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "creates/s")
	b.ReportMetric(float64((cpuTime(b)-cpu).Microseconds())/float64(b.N), "cpu_µs/create")
}

// BenchmarkCreatePeerConcurrent64: 64 concurrent clients; group commit shares fsyncs.
func BenchmarkCreatePeerConcurrent64(b *testing.B) {
	hs, secret := benchEnv(b)
	keys := benchKeys(b.N)
	url := hs.URL + "/api/v1/networks/bench/peers"
	tr := hs.Client().Transport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 128
	c := &http.Client{Transport: tr}
	var next atomic.Int64
	b.SetParallelism(64 / max(1, testingGOMAXPROCS()))
	b.ResetTimer()
	start, cpu := time.Now(), cpuTime(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) - 1
			postPeer(b, c, url, secret, keys[i])
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "creates/s")
	// CPU per create (server and the in-process client together) does not depend on what
	// else runs on the machine: 2 cores / this = the throughput of an idle 2-core machine.
	b.ReportMetric(float64((cpuTime(b)-cpu).Microseconds())/float64(b.N), "cpu_µs/create")
}

// BenchmarkListPeers50k: one GET of all 50,000 peers of a network (limit=100000).
func BenchmarkListPeers50k(b *testing.B) {
	hs, secret := benchEnv(b)
	imp := control.ImportInput{Network: control.NetworkInput{Name: "big", IPv4: netip.MustParsePrefix("198.18.0.1/15")}}
	for range 50000 {
		k, _ := wirefleet.GeneratePrivateKey()
		imp.Peers = append(imp.Peers, control.PeerInput{PublicKey: k.PublicKey(), Name: "peer"})
	}
	svcImport(b, hs, imp)
	url := hs.URL + "/api/v1/networks/big/peers?limit=100000"
	c := hs.Client()
	get := func() *http.Response {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		return resp
	}
	// Check the answer once, outside the timer; the loop measures the API (query, encode,
	// transfer), not the benchmark's own JSON decoding.
	resp := get()
	var page wire.PeerList
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || len(page.Items) != 50000 {
		b.Fatalf("%d peers, %v", len(page.Items), err)
	}
	resp.Body.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp := get()
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("status %d, %v", resp.StatusCode, err)
		}
		b.SetBytes(n)
	}
}

// svcImport imports through the service behind hs (setup, not measured).
func svcImport(b *testing.B, hs *httptest.Server, in control.ImportInput) {
	b.Helper()
	srv := hs.Config.Handler.(*Server)
	if _, err := srv.svc.ImportNetwork(context.Background(), in); err != nil {
		b.Fatal(err)
	}
}

func testingGOMAXPROCS() int { return runtime.GOMAXPROCS(0) }

// cpuTime is the process's user+system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
