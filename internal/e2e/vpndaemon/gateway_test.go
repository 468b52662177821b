package vpndaemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/e2e"
	"github.com/wirefleet/wirefleet/internal/testenv"
)

// Addresses: the veth between the hosts, and the tunnel.
const (
	vethA   = "198.18.41.1"
	vethB   = "198.18.41.2"
	tunA4   = "198.51.100.1"
	tunB4   = "198.51.100.2"
	tunA6   = "fd00:41::1"
	tunB6   = "fd00:41::2"
	apiAddr = "127.0.0.1:41194" // inside host A's namespace
)

// gateway is `wirefleet gateway` running in host A's namespace.
type gateway struct {
	t     *testing.T
	ns    *testenv.NetNS
	dev   string
	state string
	// args replace the device flags (default: a userspace device with A's addresses).
	args   []string
	env    []string
	proc   *e2e.Process
	client *http.Client
	scheme string
}

func (g *gateway) start() {
	g.t.Helper()
	args := g.args
	if args == nil {
		args = []string{"-wg-backend", "userspace", "-wg-port", "51820", "-wg-address", tunA4 + "/24", "-wg-address", tunA6 + "/64"}
	}
	args = append([]string{"gateway", "-wg-device", g.dev, "-listen", apiAddr, "-state-dir", g.state,
		"-maintenance-file", filepath.Join(g.state, "maintenance-mode")}, args...)
	g.proc = e2e.Start(g.t, g.ns, g.env, e2e.Binary(g.t), args...)
	e2e.Eventually(g.t, 15*time.Second, func() error {
		select {
		case <-g.proc.Done():
			g.t.Fatalf("gateway exited:\n%s", g.proc.Output())
		default:
		}
		_, _, err := g.get("/i/node")
		return err
	})
}

func newGateway(t *testing.T, ns *testenv.NetNS, env []string, client *http.Client, scheme string) *gateway {
	if client == nil {
		client = &http.Client{Transport: &http.Transport{DialContext: dialer(ns.Name)}, Timeout: 5 * time.Second}
	}
	if scheme == "" {
		scheme = "http"
	}
	return &gateway{t: t, ns: ns, dev: testenv.UniqueName("wfa"), state: filepath.Join(t.TempDir(), "state"), env: env, client: client, scheme: scheme}
}

func (g *gateway) get(path string) (int, string, error) {
	resp, err := g.client.Get(g.scheme + "://" + apiAddr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// post sends a form body exactly as given (the portal's encoding is the test's business).
func (g *gateway) post(path, body string) (int, string) {
	g.t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.scheme+"://"+apiAddr+path, strings.NewReader(body))
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Del("User-Agent")
	resp, err := g.client.Do(req)
	if err != nil {
		g.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (g *gateway) publicKey() string {
	g.t.Helper()
	return strings.TrimSpace(g.ns.Exec(g.t, "wg", "show", g.dev, "public-key"))
}

type peerJSON struct {
	PublicKey         string   `json:"public_key"`
	IPNet             []string `json:"ip_net"`
	LastHandshakeTime *string  `json:"last_handshake_time"`
	BytesIn           *int64   `json:"bytes_in"`
	BytesOut          *int64   `json:"bytes_out"`
}

// stockPeer makes host B's WireGuard interface with Debian's wireguard-go, wg and ip.
func stockPeer(t *testing.T, ns *testenv.NetNS, gatewayPub string) (dev string, pub wirefleet.Key) {
	t.Helper()
	dev = testenv.UniqueName("wfb")
	priv, err := wirefleet.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "b.key")
	if err := os.WriteFile(keyFile, []byte(priv.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e2e.Start(t, ns, []string{"WG_PROCESS_FOREGROUND=1", "LOG_LEVEL=error"}, "wireguard-go", dev)
	sock := "/var/run/wireguard/" + dev + ".sock"
	e2e.Eventually(t, 10*time.Second, func() error { _, err := os.Stat(sock); return err })
	ns.Exec(t, "wg", "set", dev, "private-key", keyFile, "listen-port", "51821",
		"peer", gatewayPub, "endpoint", vethA+":51820", "allowed-ips", tunA4+"/32,"+tunA6+"/128")
	ns.Exec(t, "ip", "addr", "add", tunB4+"/24", "dev", dev)
	ns.Exec(t, "ip", "-6", "addr", "add", tunB6+"/64", "dev", dev, "nodad")
	ns.Exec(t, "ip", "link", "set", dev, "up")
	return dev, priv.PublicKey()
}

// ping reports whether one ping from ns to addr gets an answer within a second.
func ping(ns *testenv.NetNS, addr string) error {
	out, err := ns.Command("ping", "-c", "1", "-W", "1", addr).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ping %s: %v: %s", addr, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// tcpAcross opens a TCP connection from B to A's tunnel address and echoes a line.
func tcpAcross(t *testing.T, a, b *testenv.NetNS) {
	t.Helper()
	ln, err := listen(a.Name, "tcp", net.JoinHostPort(tunA4, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := dialer(b.Name)(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("TCP from B to %s through the tunnel: %v", ln.Addr(), err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	msg := "hello through the tunnel\n"
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
		t.Fatalf("TCP echo through the tunnel: %q, %v", buf, err)
	}
}

func TestGatewayWithStockPeer(t *testing.T) {
	testenv.Privileged(t, "wg", "wireguard-go", "ping")
	a, b := testenv.NewNetNS(t, "gwa"), testenv.NewNetNS(t, "gwb")
	testenv.Link(t, a, vethA+"/24", b, vethB+"/24")

	g := newGateway(t, a, nil, nil, "")
	g.start()
	gwPub := g.publicKey()
	_, bPub := stockPeer(t, b, gwPub)

	if err := ping(b, tunA4); err == nil {
		t.Fatal("B reaches A's tunnel address before add_peer")
	}

	// The portal's encoding: urlencode()d values ("+" as %2B, "/" as %2F, "=" as %3D), ip_net
	// repeated without [], IPv4 first.
	body := "public_key=" + url.QueryEscape(bPub.String()) + "&ip_net=" + url.QueryEscape(tunB4+"/32") + "&ip_net=" + url.QueryEscape(tunB6+"/128")
	if status, resp := g.post("/w/add_peer", body); status != http.StatusNoContent {
		t.Fatalf("add_peer: %d %q", status, resp)
	}
	e2e.Eventually(t, 20*time.Second, func() error { return ping(b, tunA4) })
	if err := ping(b, tunA6); err != nil {
		t.Errorf("IPv6 through the tunnel: %v", err)
	}
	tcpAcross(t, a, b)

	// peer_list shows B with a handshake time in RFC 3339 UTC and traffic both ways.
	for _, q := range []string{"?show_all=yes", "", "?show_all=no"} {
		status, raw, err := g.get("/w/peer_list" + q)
		if err != nil || status != 200 {
			t.Fatalf("peer_list%s: %d %v %s", q, status, err, raw)
		}
		var list struct {
			PeerList []peerJSON `json:"peer_list"`
		}
		if err := json.Unmarshal([]byte(raw), &list); err != nil {
			t.Fatalf("peer_list%s: %v: %s", q, err, raw)
		}
		if len(list.PeerList) != 1 {
			t.Fatalf("peer_list%s: %s, want B only", q, raw)
		}
		checkPeer(t, list.PeerList[0], bPub.String())
	}
	status, raw, err := g.get("/i/node?include_client_peer_count=yes")
	if err != nil || status != 200 {
		t.Fatalf("/i/node: %d %v", status, err)
	}
	var node struct {
		NodeUptime   *int64 `json:"node_uptime"`
		WPeerCount   *int   `json:"w_peer_count"`
		OClientCount *int   `json:"o_client_count"`
	}
	if err := json.Unmarshal([]byte(raw), &node); err != nil {
		t.Fatal(err)
	}
	if node.NodeUptime == nil || *node.NodeUptime > 600 || node.WPeerCount == nil || *node.WPeerCount != 1 || node.OClientCount == nil || *node.OClientCount != 0 {
		t.Errorf("/i/node: %s, want node_uptime ≤ the device's age, w_peer_count 1, o_client_count 0", raw)
	}

	// remove_peer answers B as it was, counters included; traffic stops.
	status, raw = g.post("/w/remove_peer", "public_key="+url.QueryEscape(bPub.String()))
	if status != http.StatusOK {
		t.Fatalf("remove_peer: %d %s", status, raw)
	}
	var removed peerJSON
	if err := json.Unmarshal([]byte(raw), &removed); err != nil {
		t.Fatalf("remove_peer body %q: %v", raw, err)
	}
	checkPeer(t, removed, bPub.String())
	for range 3 {
		if err := ping(b, tunA4); err == nil {
			t.Fatal("B still reaches A's tunnel address after remove_peer")
		}
	}
	if status, raw := g.post("/w/remove_peer", "public_key="+url.QueryEscape(bPub.String())); status != http.StatusNoContent || raw != "" {
		t.Errorf("second remove_peer: %d %q, want 204 and no body", status, raw)
	}
	if _, raw, _ := g.get("/w/peer_list?show_all=yes"); strings.TrimSpace(raw) != `{"peer_list":[]}` {
		t.Errorf("peer_list after remove: %s", raw)
	}

	// SIGTERM stops cleanly; the userspace device goes away with the process and comes
	// back with the same key, so B's configuration (naming that key) works again.
	if err := g.proc.Stop(10 * time.Second); err != nil {
		t.Fatalf("gateway exit after SIGTERM: %v\n%s", err, g.proc.Output())
	}
	if _, err := os.Stat("/var/run/wireguard/" + g.dev + ".sock"); err == nil {
		t.Error("UAPI socket left behind after shutdown")
	}
	if out, err := a.Command("ip", "link", "show", g.dev).CombinedOutput(); err == nil {
		t.Errorf("userspace interface survived the process: %s", out)
	}
	g.start()
	if got := g.publicKey(); got != gwPub {
		t.Fatalf("public key after restart %s, want %s", got, gwPub)
	}
	if status, resp := g.post("/w/add_peer", body); status != http.StatusNoContent {
		t.Fatalf("add_peer after restart: %d %q", status, resp)
	}
	e2e.Eventually(t, 20*time.Second, func() error { return ping(b, tunA4) })
}

func checkPeer(t *testing.T, p peerJSON, key string) {
	t.Helper()
	if p.PublicKey != key {
		t.Errorf("public_key %q, want %q", p.PublicKey, key)
	}
	if strings.Join(p.IPNet, ",") != tunB4+"/32,"+tunB6+"/128" {
		t.Errorf("ip_net %q, want [%s/32 %s/128]", p.IPNet, tunB4, tunB6)
	}
	if p.LastHandshakeTime == nil {
		t.Fatal("last_handshake_time is null after traffic")
	}
	hs, err := time.Parse(time.RFC3339, *p.LastHandshakeTime)
	if err != nil || !strings.HasSuffix(*p.LastHandshakeTime, "Z") {
		t.Errorf("last_handshake_time %q: want RFC 3339 UTC ending in Z (%v)", *p.LastHandshakeTime, err)
	}
	if age := time.Since(hs); age < -5*time.Second || age > 2*time.Minute {
		t.Errorf("last_handshake_time %s is %v ago, want just now", hs, age)
	}
	if p.BytesIn == nil || p.BytesOut == nil || *p.BytesIn == 0 || *p.BytesOut == 0 {
		t.Errorf("bytes_in/bytes_out %v/%v, want both non-zero", p.BytesIn, p.BytesOut)
	}
}
