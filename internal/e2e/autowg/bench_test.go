package autowg

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wirefleet/wirefleet"
)

// BenchmarkRegister measures registrations per second end to end: 64 concurrent devices,
// each request a new TLS connection with its own client certificate (full mTLS handshake),
// against `wirefleet autowg` on a stock wireguard-go interface; every registration is a new
// device (metans converter), so each one is a store transaction and a device write.
//
// It then measures, for registrations made one at a time, how long after the answer the
// peer is on the interface (read with wgctrl over the UAPI socket): the handler applies the
// peer before answering, so the expected figure is "already there".
func BenchmarkRegister(b *testing.B) {
	s := newSetup(b, "--converter", "metans", "--cn-pattern", "(.+)")
	certs := make([]tls.Certificate, b.N+50)
	for i := range certs {
		certs[i] = s.ca.issue(b, "bench", fmt.Sprintf("dev%d", i), nil)
	}
	keys := make([]wirefleet.Key, len(certs))
	for i := range keys {
		k, _ := wirefleet.GeneratePrivateKey()
		keys[i] = k.PublicKey()
	}
	// Each device is a minimal HTTP/1.1 client, as autowg-client's curl is: a new TCP
	// connection from the device namespace, a full TLS handshake with its own certificate
	// (tickets off: never a resumption), one POST, Connection: close.
	dial := s.dev.Dialer(b)
	pool := x509.NewCertPool()
	pool.AddCert(s.ca.cert)
	host := serverIP + ":" + httpPort
	path := strings.TrimPrefix(s.url, "https://"+host) + "v1/register"
	register := func(i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		raw, err := dial(ctx, "tcp", host)
		if err != nil {
			return err
		}
		c := tls.Client(raw, &tls.Config{RootCAs: pool, ServerName: serverIP, Certificates: certs[i : i+1], SessionTicketsDisabled: true})
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		key := keys[i].String()
		if _, err := fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", path, host, len(key), key); err != nil {
			return fmt.Errorf("registration %d: %w", i, err)
		}
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return fmt.Errorf("registration %d: %w", i, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			return fmt.Errorf("registration %d: %d %s", i, res.StatusCode, body)
		}
		return nil
	}

	const workers = 64
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	pid := s.autowg.Cmd.Process.Pid
	cpu0 := cpuTime(b, pid)
	// The harness is not what is measured: its 64 TLS clients share the two cores with the
	// server, so they collect garbage less often (the server keeps its defaults).
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	b.ResetTimer()
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				if err := register(i); err != nil {
					if failed.Add(1) == 1 {
						b.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "registrations/s")
	b.ReportMetric(float64(failed.Load()), "failed")
	// The machine is shared (2 cores, other test suites running): the server's own CPU
	// time per registration says what one core sustains.
	cpu := cpuTime(b, pid) - cpu0
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "server-CPU-µs/registration")

	// Response → applied on the gateway.
	wc, err := wgctrl.New()
	if err != nil {
		b.Fatal(err)
	}
	defer wc.Close()
	has := func(k wirefleet.Key) bool {
		d, err := wc.Device(s.wgS)
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range d.Peers {
			if p.PublicKey == wgtypes.Key(k) {
				return true
			}
		}
		return false
	}
	immediate := 0
	for i := b.N; i < b.N+50; i++ {
		if err := register(i); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		first := true
		for !has(keys[i]) {
			first = false
			if time.Since(t0) > 10*time.Second {
				b.Fatalf("peer %d not applied 10 s after the answer", i)
			}
			time.Sleep(time.Millisecond)
		}
		if first {
			immediate++
		}
	}
	// The first read after the answer already shows the peer when it was applied before
	// the answer (a read of the whole interface takes milliseconds at thousands of peers,
	// so a time figure here would measure the read, not the apply).
	b.ReportMetric(float64(immediate), "applied-at-answer/50")
}

// cpuTime is the user+system CPU time of process pid (from /proc/PID/stat).
func cpuTime(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name (which may hold spaces) start after the last ')'.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
}
