package openvpn

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/wirefleet/wirefleet/internal/e2e"
	"github.com/wirefleet/wirefleet/internal/openvpn"
	"github.com/wirefleet/wirefleet/internal/testenv"
)

// Client certificate CNs as eduVPN issues them: base64, with '+', '/' and '='.
const (
	cnShared = "kNLs/jAxQ8w3PWgj+Bx8mDComLFPKgCrxPvvq0Lsq2s=" // connected to both servers
	cnOne    = "DDoG0rDvZ1YufRdDHk37MdgOX+lBgKoBzgOQKJ5dzy4="
	cnTwo    = "YrAoH/x5dIyS2EiWOtRldUTg2WV9q9zV5evkaNkLN0E="
)

// server is one OpenVPN server process: its tunnel subnets and management socket.
type server struct {
	name, v4net, v6net string
	port               int
	proc               *e2e.Process
}

type bench struct {
	t       *testing.T
	pki     *pki
	srv     *testenv.NetNS
	sockDir string
	links   int
}

func newBench(t *testing.T) *bench {
	return &bench{t: t, pki: newPKI(t), srv: testenv.NewNetNS(t, "ovs"), sockDir: t.TempDir()}
}

// startServer runs `openvpn --server` in the server namespace with its management
// interface on <sockDir>/<name>.sock, as Debian's openvpn-server@ units do.
func (b *bench) startServer(name string, port int, v4net, v6net string) *server {
	b.t.Helper()
	s := &server{name: name, v4net: v4net, v6net: v6net, port: port}
	p := netip.MustParsePrefix(v4net)
	mask := net.IP(net.CIDRMask(p.Bits(), 32)).String()
	s.proc = e2e.Start(b.t, b.srv, nil, "openvpn",
		"--dev", "tun", "--proto", "udp", "--port", strconv.Itoa(port),
		"--topology", "subnet", "--server", p.Addr().String(), mask, "--server-ipv6", v6net,
		"--ca", b.pki.path("ca.crt"), "--cert", b.pki.path("server.crt"), "--key", b.pki.path("server.key"),
		"--dh", "none", "--keepalive", "10", "60", "--verb", "3",
		"--management", filepath.Join(b.sockDir, name+".sock"), "unix")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.proc.WaitOutput(ctx, "Initialization Sequence Completed"); err != nil {
		b.t.Fatalf("openvpn server %s: %v\n%s", name, err, s.proc.Output())
	}
	return s
}

// client is an OpenVPN client in its own namespace.
type client struct {
	cn   string
	ns   *testenv.NetNS
	proc *e2e.Process
}

// startClient connects a client with certificate CN cn to s, from a new namespace
// linked to the server's. --remap-usr1 SIGTERM: a killed client exits instead of coming
// back, so a disconnect stays visible. extra are more openvpn options.
func (b *bench) startClient(cn string, s *server, extra ...string) *client {
	b.t.Helper()
	b.links++
	n := 4 * b.links
	c := &client{cn: cn, ns: testenv.NewNetNS(b.t, "ovc")}
	srvAddr := fmt.Sprintf("192.0.2.%d", n+1)
	testenv.Link(b.t, b.srv, srvAddr+"/30", c.ns, fmt.Sprintf("192.0.2.%d/30", n+2))
	file := fmt.Sprintf("client%d", b.links)
	cert, key := b.pki.client(b.t, file, cn)
	args := []string{"--client", "--dev", "tun", "--proto", "udp",
		"--remote", srvAddr, strconv.Itoa(s.port), "--nobind", "--remote-cert-tls", "server",
		"--ca", b.pki.path("ca.crt"), "--cert", cert, "--key", key,
		"--remap-usr1", "SIGTERM", "--verb", "3"}
	c.proc = e2e.Start(b.t, c.ns, nil, "openvpn", append(args, extra...)...)
	return c
}

func (c *client) wait(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.proc.WaitOutput(ctx, "Initialization Sequence Completed"); err != nil {
		t.Fatalf("openvpn client %s: %v\n%s", c.cn, err, c.proc.Output())
	}
}

// tunAddrs reads the addresses OpenVPN gave the client's tun device.
func (c *client) tunAddrs(t *testing.T) (v4, v6 string) {
	t.Helper()
	var links []struct {
		IfName   string `json:"ifname"`
		AddrInfo []struct {
			Family string `json:"family"`
			Local  string `json:"local"`
			Scope  string `json:"scope"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal([]byte(c.ns.Exec(t, "ip", "-j", "addr", "show")), &links); err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if !strings.HasPrefix(l.IfName, "tun") {
			continue
		}
		for _, a := range l.AddrInfo {
			switch {
			case a.Family == "inet":
				v4 = a.Local
			case a.Family == "inet6" && a.Scope == "global":
				v6 = a.Local
			}
		}
	}
	if v4 == "" || v6 == "" {
		t.Fatalf("client %s: tun addresses %q %q", c.cn, v4, v6)
	}
	return v4, v6
}

type entry struct {
	CommonName string `json:"common_name"`
	IPFour     string `json:"ip_four"`
	IPSix      string `json:"ip_six"`
}

func sorted(es []entry) []entry {
	sort.Slice(es, func(i, j int) bool { return es[i].IPFour < es[j].IPFour })
	return es
}

func fleetEntries(cs []openvpn.Connection) []entry {
	out := []entry{}
	for _, c := range cs {
		out = append(out, entry{c.CommonName, c.VirtualIPv4.String(), c.VirtualIPv6.String()})
	}
	return sorted(out)
}

// hangingSocket is a management socket whose process never answers: it accepts and
// stays silent.
func hangingSocket(t *testing.T, path string) {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, c)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
}

// TestBridge runs two real OpenVPN servers with four clients (one CN on both servers),
// plus a stopped server (stale socket) and a silent socket, and checks the Fleet and the
// vpn-daemon API of a real gateway against what the clients' tun devices really have.
func TestBridge(t *testing.T) {
	testenv.Privileged(t, "openvpn", "curl")
	b := newBench(t)
	udp := b.startServer("udp", 1194, "198.51.100.0/24", "2001:db8:1::/64")
	alt := b.startServer("alt", 1195, "198.18.0.0/24", "2001:db8:2::/64")

	// A server that was stopped hard leaves its socket behind.
	stopped := b.startServer("stopped", 1196, "198.18.1.0/24", "2001:db8:3::/64")
	stopped.proc.Kill()
	if _, err := os.Stat(filepath.Join(b.sockDir, "stopped.sock")); err != nil {
		t.Fatalf("the killed server's socket: %v (the test needs it left behind)", err)
	}
	hangingSocket(t, filepath.Join(b.sockDir, "hung.sock"))

	clients := []*client{
		b.startClient(cnShared, udp),
		b.startClient(cnShared, alt),
		b.startClient(cnOne, udp),
		b.startClient(cnTwo, alt),
	}
	var want []entry
	for _, c := range clients {
		c.wait(t)
		v4, v6 := c.tunAddrs(t)
		want = append(want, entry{c.cn, v4, v6})
	}
	want = sorted(want)

	const budget = time.Second
	fleet := openvpn.NewFleet(openvpn.FleetConfig{Dir: b.sockDir, Timeout: budget})
	ctx := context.Background()

	t.Run("fleet lists every client with both addresses", func(t *testing.T) {
		start := time.Now()
		cs, err := fleet.Connections(ctx)
		took := time.Since(start)
		if diff := cmp.Diff(want, fleetEntries(cs)); diff != "" {
			t.Errorf("connections (-want +got):\n%s", diff)
		}
		if err == nil || !strings.Contains(err.Error(), "hung:") || !strings.Contains(err.Error(), "stopped:") {
			t.Errorf("err = %v, want the hung and stopped processes named", err)
		}
		if took > budget+500*time.Millisecond {
			t.Errorf("took %v with a budget of %v", took, budget)
		}
		for _, c := range cs {
			if c.ConnectedSince.IsZero() || c.BytesReceived == 0 || c.Cipher == "" {
				t.Errorf("%s on %s: incomplete status row %+v", c.CommonName, c.Process, c.Client)
			}
		}
		errs := fleet.ManagementErrors()
		if errs[openvpn.ErrorKey{Process: "hung", Op: "status"}] == 0 || errs[openvpn.ErrorKey{Process: "stopped", Op: "status"}] == 0 {
			t.Errorf("management errors %v, want hung and stopped counted", errs)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		want := `
# HELP wirefleet_openvpn_clients Authenticated clients connected to the OpenVPN process.
# TYPE wirefleet_openvpn_clients gauge
wirefleet_openvpn_clients{process="alt"} 2
wirefleet_openvpn_clients{process="udp"} 2
# HELP wirefleet_openvpn_up 1 if the OpenVPN process answered on its management socket during this scrape, else 0.
# TYPE wirefleet_openvpn_up gauge
wirefleet_openvpn_up{process="alt"} 1
wirefleet_openvpn_up{process="hung"} 0
wirefleet_openvpn_up{process="stopped"} 0
wirefleet_openvpn_up{process="udp"} 1
`
		c := openvpn.NewCollector(fleet)
		if err := testutil.CollectAndCompare(c, strings.NewReader(want), "wirefleet_openvpn_clients", "wirefleet_openvpn_up"); err != nil {
			t.Error(err)
		}
		// One byte-counter series per connection.
		if n := testutil.CollectAndCount(c, "wirefleet_openvpn_client_received_bytes_total"); n != 4 {
			t.Errorf("%d received-bytes series, want 4", n)
		}
	})

	t.Run("version", func(t *testing.T) {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		c, err := openvpn.Dial(cctx, "unix", filepath.Join(b.sockDir, "udp.sock"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		v, err := c.Version(cctx)
		if err != nil || !strings.HasPrefix(v.OpenVPN, "OpenVPN 2.") || v.Management < 1 {
			t.Errorf("version = %+v, %v", v, err)
		}
	})

	gw := startGateway(t, b)

	t.Run("connection_list over the vpn-daemon API", func(t *testing.T) {
		got, took := gw.connectionList(t)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("connection_list (-want +got):\n%s", diff)
		}
		// The handler's one OpenVPN deadline is 2 s; the portal gives up at 4 s.
		if took > 3*time.Second {
			t.Errorf("connection_list took %v with a hung socket", took)
		}
		var node struct {
			OClientCount *int `json:"o_client_count"`
		}
		code, body, _ := gw.request(t, "GET", "/i/node?include_client_peer_count=yes", "")
		if err := json.Unmarshal([]byte(body), &node); code != 200 || err != nil || node.OClientCount == nil || *node.OClientCount != len(want) {
			t.Errorf("/i/node counts: %d %s (%v), want o_client_count %d", code, body, err, len(want))
		}
	})

	t.Run("standalone /metrics and health next to the vpn-daemon API", func(t *testing.T) {
		code, body, _ := gw.request(t, "GET", "/metrics", "")
		for _, want := range []string{`wirefleet_openvpn_clients{process="udp"} 2`, `wirefleet_openvpn_clients{process="alt"} 2`,
			`wirefleet_openvpn_up{process="hung"} 0`, `wirefleet_openvpn_up{process="stopped"} 0`} {
			if code != 200 || !strings.Contains(body, want) {
				t.Errorf("gateway /metrics: %d, lacks %q", code, want)
			}
		}
		for _, p := range []string{"/healthz", "/readyz"} {
			if code, body, _ := gw.request(t, "GET", p, ""); code != 200 {
				t.Errorf("%s: %d %s", p, code, body)
			}
		}
	})

	t.Run("disconnect_client kills the CN on every process", func(t *testing.T) {
		code, body, _ := gw.request(t, "POST", "/o/disconnect_client", "common_name="+formEscape(cnShared))
		if code != 204 {
			t.Fatalf("disconnect_client: %d %s", code, body)
		}
		var rest []entry
		for _, e := range want {
			if e.CommonName != cnShared {
				rest = append(rest, e)
			}
		}
		got, _ := gw.connectionList(t)
		if diff := cmp.Diff(rest, got); diff != "" {
			t.Errorf("after disconnect (-want +got):\n%s", diff)
		}
		cs, _ := fleet.Connections(ctx)
		if diff := cmp.Diff(rest, fleetEntries(cs)); diff != "" {
			t.Errorf("fleet after disconnect (-want +got):\n%s", diff)
		}
		// Unknown CN and no process knowing it: still 204 (best effort).
		if code, body, _ := gw.request(t, "POST", "/o/disconnect_client", "common_name="+formEscape(cnShared)); code != 204 {
			t.Errorf("second disconnect: %d %s", code, body)
		}
		// Whitespace would change the management command: refused.
		if code, _, _ := gw.request(t, "POST", "/o/disconnect_client", "common_name=a%20b"); code != 400 {
			t.Errorf("CN with a space: %d, want 400", code)
		}
	})

	t.Run("fleet disconnect", func(t *testing.T) {
		n, _ := fleet.Disconnect(ctx, cnTwo)
		if n != 1 {
			t.Errorf("killed %d, want 1", n)
		}
		cs, _ := fleet.Connections(ctx)
		var got []string
		for _, c := range cs {
			got = append(got, c.CommonName)
		}
		if diff := cmp.Diff([]string{cnOne}, got); diff != "" {
			t.Errorf("left (-want +got):\n%s", diff)
		}
		// A CN starting with '#' would be a comment to OpenVPN's command parser if it
		// were not quoted: the real processes must answer "not found", not a parse error.
		n, err := fleet.Disconnect(ctx, "#"+cnOne)
		if n != 0 || err == nil || strings.Contains(err.Error(), "udp:") || strings.Contains(err.Error(), "alt:") {
			t.Errorf("kill of an unknown '#' CN: %d, %v; want 0 and errors from hung and stopped only", n, err)
		}
	})
}

func formEscape(s string) string {
	r := strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D")
	return r.Replace(s)
}
