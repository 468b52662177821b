package managed

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet/internal/e2e"
	"github.com/wirefleet/wirefleet/internal/metrics"
)

// ifindex reads the kernel's index of the gateway's interface: a link that is deleted and
// created again gets a new one.
func (g *gatewayHost) ifindex(t *testing.T) string {
	t.Helper()
	return strings.TrimSpace(g.ns.Exec(t, "cat", "/sys/class/net/"+g.dev+"/ifindex"))
}

// dial points the client at endpoint (host:port) of the network's gateway.
func (c *clientHost) dial(endpoint string) {
	c.f.cli.Exec(c.f.t, "wg", "set", c.dev, "peer", c.f.netPub.String(), "endpoint", endpoint)
}

var mtuRE = regexp.MustCompile(`\bmtu (\d+)\b`)

// TestInterfaceChangedInPlace: changing the network's listen port, MTU and IPv4 prefix
// through the API reconfigures the gateway's device in place — same ifindex, peers kept —
// and the client reaches it on the new port. (The API cannot change a network's key; a
// key, port and MTU changed behind the gateway's back are repaired, in place too.) The gateway's /metrics then show the
// client's traffic, the applied seq equal to the control plane's head and apply latency.
func TestInterfaceChangedInPlace(t *testing.T) {
	f := newFleet(t)
	g := f.gws[0]
	g.start()
	priv, p := f.addPeer()
	_, p2 := f.addPeer()
	g.converged(15*time.Second, map[string]bool{p.PublicKey.String(): true, p2.PublicKey.String(): true})
	c := f.newClient(priv, p, 0)
	e2e.Eventually(t, 20*time.Second, c.ping)

	before := g.ifindex(t)
	peersBefore, err := g.devicePeers()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(g.ns.Exec(t, "wg", "show", g.dev, "listen-port")); got != "51820" {
		t.Fatalf("listen port before the change: %q", got)
	}
	f.must("PATCH", "/api/v1/networks/corp", map[string]any{"listen_port": 51821, "mtu": 1380, "ipv4": tunGW4 + "/23"}, nil)

	e2e.Eventually(t, 15*time.Second, func() error {
		if got := strings.TrimSpace(g.ns.Exec(t, "wg", "show", g.dev, "listen-port")); got != "51821" {
			return fmt.Errorf("wg show %s listen-port = %s, want 51821", g.dev, got)
		}
		link := g.ns.Exec(t, "ip", "-d", "-o", "link", "show", "dev", g.dev)
		if m := mtuRE.FindStringSubmatch(link); m == nil || m[1] != "1380" {
			return fmt.Errorf("ip -d link: want mtu 1380: %s", link)
		}
		addrs := g.ns.Exec(t, "ip", "-o", "addr", "show", "dev", g.dev)
		if !strings.Contains(addrs, " "+tunGW4+"/23 ") || strings.Contains(addrs, " "+tunGW4+"/24 ") || !strings.Contains(addrs, " fd00:50::1/64 ") {
			return fmt.Errorf("ip addr: want %s/23 (and not /24) and fd00:50::1/64:\n%s", tunGW4, addrs)
		}
		return nil
	})
	if after := g.ifindex(t); after != before {
		t.Fatalf("the link was recreated: ifindex %s before the change, %s after", before, after)
	}
	peersAfter, err := g.devicePeers()
	if err != nil {
		t.Fatal(err)
	}
	for k, ips := range peersBefore {
		if peersAfter[k] != ips {
			t.Errorf("peer %s: allowed IPs %q after the change, %q before", k, peersAfter[k], ips)
		}
	}
	if len(peersAfter) != len(peersBefore) {
		t.Errorf("%d peers after the change, %d before", len(peersAfter), len(peersBefore))
	}
	if !strings.Contains(g.proc.Output(), "configuring the interface in place") {
		t.Errorf("no in-place reconfiguration in the gateway log:\n%s", g.proc.Output())
	}

	c.dial(g.outer + ":51821")
	e2e.Eventually(t, 20*time.Second, c.ping)
	if after := g.ifindex(t); after != before {
		t.Fatalf("ifindex %s before the change, %s after the client re-dialled", before, after)
	}

	// The interface altered behind the gateway's back (key, port, MTU): the drift check
	// puts it back, again in place.
	other, _ := newKey()
	keyFile := filepath.Join(t.TempDir(), "other.key")
	if err := os.WriteFile(keyFile, []byte(other.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g.ns.Exec(t, "wg", "set", g.dev, "private-key", keyFile, "listen-port", "51899")
	g.ns.Exec(t, "ip", "link", "set", "dev", g.dev, "mtu", "1300")
	if got := strings.TrimSpace(g.ns.Exec(t, "wg", "show", g.dev, "public-key")); got != other.PublicKey().String() {
		t.Fatalf("wg set private-key did not take: public key %s", got)
	}
	e2e.Eventually(t, 20*time.Second, func() error {
		if got := strings.TrimSpace(g.ns.Exec(t, "wg", "show", g.dev, "public-key")); got != f.netPub.String() {
			return fmt.Errorf("public key %s, want the network's %s", got, f.netPub)
		}
		if got := strings.TrimSpace(g.ns.Exec(t, "wg", "show", g.dev, "listen-port")); got != "51821" {
			return fmt.Errorf("listen port %s, want 51821", got)
		}
		if link := g.ns.Exec(t, "ip", "-d", "-o", "link", "show", "dev", g.dev); mtuRE.FindStringSubmatch(link)[1] != "1380" {
			return fmt.Errorf("ip -d link: want mtu 1380: %s", link)
		}
		return nil
	})
	if after := g.ifindex(t); after != before {
		t.Fatalf("the interface repair recreated the link: ifindex %s before, %s after", before, after)
	}
	if n, err := g.metric(metrics.DriftRepairs, `kind="interface"`); err != nil || n < 1 {
		t.Errorf("interface drift repairs: %v %v, want ≥ 1", n, err)
	}
	e2e.Eventually(t, 20*time.Second, c.ping)

	// Metrics: the client's traffic, the applied seq at the control plane's head, and
	// apply latency observed for the ops of this test (network.put included).
	key := `public_key="` + p.PublicKey.String() + `"`
	e2e.Eventually(t, 15*time.Second, func() error {
		for _, name := range []string{metrics.PeerReceiveBytes, metrics.PeerTransmitBytes} {
			if v, err := g.metric(name, key); err != nil || v <= 0 {
				return fmt.Errorf("%s{%s} = %v (%v), want > 0 after pings", name, key, v, err)
			}
		}
		return nil
	})
	e2e.Eventually(t, 10*time.Second, func() error {
		head, err := f.serverMetric(metrics.LogSeq)
		if err != nil {
			return err
		}
		applied, err := g.metric(metrics.AppliedSeq)
		if err != nil {
			return err
		}
		if head == 0 || applied != head {
			return fmt.Errorf("gateway %s = %v, control plane %s = %v", metrics.AppliedSeq, applied, metrics.LogSeq, head)
		}
		if known, err := g.metric(metrics.HeadSeq); err != nil || known != head {
			return fmt.Errorf("gateway %s = %v (%v), control plane at %v", metrics.HeadSeq, known, err, head)
		}
		return nil
	})
	for _, typ := range []string{"", `type="peer.put"`, `type="network.put"`} {
		var labels []string
		if typ != "" {
			labels = append(labels, typ)
		}
		if n, err := g.metric(metrics.ApplyDuration+"_count", labels...); err != nil || n <= 0 {
			t.Errorf("%s_count%v = %v (%v), want > 0", metrics.ApplyDuration, labels, n, err)
		}
	}
}
