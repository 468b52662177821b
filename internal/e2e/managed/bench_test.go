package managed

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/e2e"
	"github.com/wirefleet/wirefleet/internal/testenv"
)

// vmRSS reads a process's resident set size in KiB.
func vmRSS(b *testing.B, pid int) float64 {
	b.Helper()
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb
		}
	}
	b.Fatalf("no VmRSS for pid %d", pid)
	return 0
}

// BenchmarkGatewayRSSPerPeer measures the memory a real `wirefleet gateway -control`
// process needs per peer BEYOND the WireGuard device itself:
//
//	((RSS gateway with 50k peers − RSS gateway with 0 peers)
//	 − (RSS wireguard-go with the same 50k peers − RSS idle wireguard-go)) / 50k
//
// The device is embedded in the gateway (userspace backend), so the device's own cost is
// taken from Debian's wireguard-go holding the same peers. Privileged, as root:
//
//	go test -run '^$' -bench GatewayRSSPerPeer -benchtime 1x ./internal/e2e/managed/
func BenchmarkGatewayRSSPerPeer(b *testing.B) {
	testenv.Privileged(b, "wg", "wireguard-go")
	const n = 50000
	for b.Loop() {
		f := newFleet(b)
		wgconf, secret := f.bigNetwork(n)
		tok := struct{ Secret string }{secret}

		start := func(g *gatewayHost, network string) *e2e.Process {
			return e2e.Start(b, g.ns, nil, f.bin, "gateway", "-control", g.control, "-token", tok.Secret, "-network", network,
				"-wg-backend", "userspace", "-wg-device", g.dev, "-state-dir", g.stateDir, "-listen", metricsAddr, "-stats-interval", "5s")
		}
		idle := start(f.gws[1], "corp")
		big := start(f.gws[0], "big")
		began := time.Now()
		e2e.Eventually(b, 10*time.Minute, func() error {
			out, err := exec.Command("wg", "show", f.gws[0].dev, "peers").Output()
			if err != nil {
				return err
			}
			if c := strings.Count(string(out), "\n"); c != n {
				return fmt.Errorf("%d peers on the device", c)
			}
			return nil
		})
		b.Logf("gateway reached %d peers in %v", n, time.Since(began))
		time.Sleep(15 * time.Second) // several stats pushes, GC cycles and scavenging
		gwBig, gwIdle := vmRSS(b, big.Cmd.Process.Pid), vmRSS(b, idle.Cmd.Process.Pid)

		// The device alone: Debian's wireguard-go with the same peers.
		dev := testenv.UniqueName("wfrs")
		idleDev := testenv.UniqueName("wfri")
		wg := e2e.Start(b, f.gws[0].ns, []string{"WG_PROCESS_FOREGROUND=1", "LOG_LEVEL=error"}, "wireguard-go", dev)
		wgIdle := e2e.Start(b, f.gws[1].ns, []string{"WG_PROCESS_FOREGROUND=1", "LOG_LEVEL=error"}, "wireguard-go", idleDev)
		for _, d := range []string{dev, idleDev} {
			e2e.Eventually(b, 10*time.Second, func() error { _, err := os.Stat("/var/run/wireguard/" + d + ".sock"); return err })
		}
		file := filepath.Join(b.TempDir(), "wg.conf")
		if err := os.WriteFile(file, []byte(wgconf), 0o600); err != nil {
			b.Fatal(err)
		}
		if out, err := exec.Command("wg", "syncconf", dev, file).CombinedOutput(); err != nil {
			b.Fatalf("wg syncconf: %v %s", err, out)
		}
		time.Sleep(15 * time.Second)
		wgBig, wgIdleRSS := vmRSS(b, wg.Cmd.Process.Pid), vmRSS(b, wgIdle.Cmd.Process.Pid)

		perPeer := ((gwBig - gwIdle) - (wgBig - wgIdleRSS)) * 1024 / n
		b.Logf("RSS KiB: gateway 50k %.0f, gateway idle %.0f, wireguard-go 50k %.0f, wireguard-go idle %.0f", gwBig, gwIdle, wgBig, wgIdleRSS)
		b.ReportMetric(perPeer, "B/peer-beyond-device")
		b.ReportMetric((gwBig-gwIdle)*1024/n, "B/peer-gateway-total")
		b.ReportMetric((wgBig-wgIdleRSS)*1024/n, "B/peer-wireguard-go")
	}
}

// bigNetwork creates network "big" with n peers (one /32 each in 198.18.0.0/16), imported
// as a wg-quick file in one request. It returns the same network as a wg(8) configuration
// file's text (for `wg syncconf`) and a gateway token for "big" and "corp".
func (f *fleet) bigNetwork(n int) (wgconf, token string) {
	priv, _ := wirefleet.GeneratePrivateKey()
	var conf, wg strings.Builder
	fmt.Fprintf(&conf, "[Interface]\nPrivateKey = %s\nAddress = 198.18.0.1/16\nListenPort = 51820\n", priv)
	fmt.Fprintf(&wg, "[Interface]\nPrivateKey = %s\n", priv)
	for i := range n {
		k, _ := wirefleet.GeneratePrivateKey()
		a := netip.AddrFrom4([4]byte{198, 18, byte((i + 2) >> 8), byte(i + 2)})
		peer := fmt.Sprintf("\n[Peer]\nPublicKey = %s\nAllowedIPs = %s/32\n", k.PublicKey(), a)
		conf.WriteString(peer)
		wg.WriteString(peer)
	}
	f.must("POST", "/api/v1/networks/import", map[string]any{"name": "big", "config": conf.String()}, nil)
	var tok struct {
		Secret string `json:"secret"`
	}
	f.must("POST", "/api/v1/tokens", map[string]any{"roles": []string{"gateway"}, "networks": []string{"big", "corp"}}, &tok)
	return wg.String(), tok.Secret
}

// deviceReady matches the gateway's log line for a device brought to the snapshot.
var deviceReady = regexp.MustCompile(`time=(\S+) level=INFO msg="device opened and brought to the control plane's state" network=big peers=(\d+) took=(\S+)`)

// BenchmarkGatewayColdStart50k: a real `wirefleet gateway -control` process, started with an
// empty state dir against a real server holding a 50k-peer network, until its userspace
// device holds all 50k peers (the time of the gateway's own log line, from just before
// exec): process start, snapshot download from the server, device creation and the apply.
// Compared in the same run with `wg syncconf` of the same 50k peers into a fresh Debian
// wireguard-go (its process start not counted). Both run in the gateway's namespace, one
// after the other, with a pause between them. Privileged, as root:
//
//	go test -run '^$' -bench GatewayColdStart50k -benchtime 3x ./internal/e2e/managed/
func BenchmarkGatewayColdStart50k(b *testing.B) {
	testenv.Privileged(b, "wg", "wireguard-go")
	const n = 50000
	f := newFleet(b)
	wgconf, secret := f.bigNetwork(n)
	file := filepath.Join(b.TempDir(), "wg.conf")
	if err := os.WriteFile(file, []byte(wgconf), 0o600); err != nil {
		b.Fatal(err)
	}
	g := f.gws[0]
	var wf, sc time.Duration
	for b.Loop() {
		// Wirefleet: exec → device complete.
		dev := testenv.UniqueName("wfcs")
		began := time.Now()
		p := e2e.Start(b, g.ns, nil, f.bin, "gateway", "-control", g.control, "-token", secret, "-network", "big",
			"-wg-backend", "userspace", "-wg-device", dev, "-state-dir", b.TempDir(), "-listen", metricsAddr)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		err := p.WaitOutput(ctx, "msg=\"device opened and brought")
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		m := deviceReady.FindStringSubmatch(p.Output())
		if m == nil || m[2] != strconv.Itoa(n) {
			b.Fatalf("no device-ready line for %d peers in:\n%s", n, p.Output())
		}
		at, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			b.Fatal(err)
		}
		took := at.Sub(began)
		if err := p.Stop(time.Minute); err != nil {
			b.Fatalf("gateway exit: %v", err)
		}
		time.Sleep(2 * time.Second) // let the machine settle between the two

		// wg syncconf into a fresh wireguard-go.
		name := testenv.UniqueName("wfsc")
		wg := e2e.Start(b, g.ns, []string{"WG_PROCESS_FOREGROUND=1", "LOG_LEVEL=error"}, "wireguard-go", name)
		e2e.Eventually(b, 10*time.Second, func() error { _, err := os.Stat("/var/run/wireguard/" + name + ".sock"); return err })
		start := time.Now()
		if out, err := g.ns.Command("wg", "syncconf", name, file).CombinedOutput(); err != nil {
			b.Fatalf("wg syncconf: %v %s", err, out)
		}
		base := time.Since(start)
		wg.Kill()
		_ = os.Remove("/var/run/wireguard/" + name + ".sock")
		time.Sleep(2 * time.Second)

		wf += took
		sc += base
		b.Logf("wirefleet gateway %v (device open + apply %s), wg syncconf %v (%.2f×)", took.Round(time.Millisecond), m[3], base.Round(time.Millisecond), took.Seconds()/base.Seconds())
	}
	b.ReportMetric(wf.Seconds()*1000/float64(b.N), "ms-wirefleet-gateway")
	b.ReportMetric(sc.Seconds()*1000/float64(b.N), "ms-wg-syncconf")
	b.ReportMetric(wf.Seconds()/sc.Seconds(), "wirefleet/syncconf")
}
