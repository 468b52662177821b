package controlplane

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/api/wire"
	"github.com/wirefleet/wirefleet/internal/apiclient"
	"github.com/wirefleet/wirefleet/internal/e2e"
)

// procKB reads a field (VmRSS, VmHWM) of /proc/PID/status in kB.
func procKB(b *testing.B, pid int, field string) float64 {
	b.Helper()
	s, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(s), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// BenchmarkServerRSS50k measures the real `wirefleet server` process with 50,000 peers:
// peak RSS while importing them through the API, and RSS of a restarted server after
// listing all of them (the steady state of a control plane of that size). Run with
// -benchtime 1x; the metrics are per run, not per op.
func BenchmarkServerRSS50k(b *testing.B) {
	bin := e2e.Binary(b)
	for range b.N {
		dataDir := b.TempDir()
		secret := bootstrapToken(b, bin, dataDir)
		proc, url := startServer(b, bin, dataDir)
		c, err := apiclient.New(url, apiclient.Options{Token: secret, Timeout: 5 * time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		var conf strings.Builder
		conf.WriteString("[Interface]\nAddress = 198.18.0.1/15\nPrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\n")
		for i := range 50000 {
			k, _ := wirefleet.GeneratePrivateKey()
			a := i + 2
			fmt.Fprintf(&conf, "[Peer]\n# Name = peer%d\nPublicKey = %s\nAllowedIPs = 198.18.%d.%d/32\n", i, k.PublicKey(), a>>8, a&255)
		}
		ctx := context.Background()
		start := time.Now()
		if _, err := c.ImportNetwork(ctx, wire.NetworkImport{Name: "big", Config: conf.String()}); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "import_s")
		b.ReportMetric(procKB(b, proc.Cmd.Process.Pid, "VmHWM")/1024, "import_peak_MB")
		if err := proc.Stop(10 * time.Second); err != nil {
			b.Fatalf("stop: %v", err)
		}

		proc2, url2 := startServer(b, bin, dataDir)
		// Time the API itself (query, encode, transfer), cold then warm; the client only
		// counts the bytes (decoding 20 MB of JSON is the client's cost, not the server's).
		get := func() (int64, time.Duration) {
			start := time.Now()
			req, _ := http.NewRequest("GET", url2+"/api/v1/networks/big/peers?limit=100000", nil)
			req.Header.Set("Authorization", "Bearer "+secret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != 200 {
				b.Fatalf("list: %d %v", resp.StatusCode, err)
			}
			return int64(bytes.Count(body, []byte(`"public_key"`))), time.Since(start)
		}
		n, cold := get()
		if n != 50000 {
			b.Fatalf("list returned %d peers", n)
		}
		_, warm := get()
		b.ReportMetric(float64(cold.Milliseconds()), "list_cold_ms")
		b.ReportMetric(float64(warm.Milliseconds()), "list_warm_ms")
		b.ReportMetric(procKB(b, proc2.Cmd.Process.Pid, "VmRSS")/1024, "rss_MB")
		b.ReportMetric(procKB(b, proc2.Cmd.Process.Pid, "VmHWM")/1024, "peak_MB")
		_ = proc2.Stop(10 * time.Second)
	}
}
