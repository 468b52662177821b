package autowg

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/e2e"
	"github.com/wirefleet/wirefleet/internal/testenv"
)

// The control-plane topology: srv runs `wirefleet server` (REST API on 198.18.71.1:8080 for
// the gateways, registration HTTPS on serverIP for the device); gw1 and gw2 run managed
// gateways of network "devices"; dev reaches the registration endpoint through srv and
// WireGuard through gw1 (203.0.113.1, the network's endpoint).
const (
	cpNet     = "2001:db8:99:1::1/64"
	cpPool    = "2001:db8:99:1::/64"
	cpRoute   = "2001:db8:99::/48"
	cpGateway = "2001:db8:99:1::1" // the network's own address, on every gateway's device
	cpDevice  = "2001:db8:99:1::1234"
	cpOuter   = "203.0.113.1"
)

// TestRegisterThroughControlPlane: a device runs `wirefleet register` against `wirefleet
// server -register-listen` (direct mTLS); the registration is a peer of the network that
// every managed gateway applies from the op log; the device pings the network through a
// gateway, shows in the REST API under its certificate name and in sessions, and after a
// reboot (new key) still pings while its old key leaves every gateway.
func TestRegisterThroughControlPlane(t *testing.T) {
	testenv.Privileged(t, "wg", "ping")
	bin, dir := e2e.Binary(t), t.TempDir()
	srv, dev := testenv.NewNetNS(t, "acS"), testenv.NewNetNS(t, "acD")
	gw1, gw2 := testenv.NewNetNS(t, "acG"), testenv.NewNetNS(t, "acH")
	testenv.Link(t, srv, serverIP+"/24", dev, deviceIP+"/24")
	testenv.Link(t, srv, "198.18.71.1/24", gw1, "198.18.71.2/24")
	testenv.Link(t, srv, "198.18.72.1/24", gw2, "198.18.72.2/24")
	testenv.Link(t, gw1, cpOuter+"/24", dev, "203.0.113.2/24")

	ca := newCA(t, dir, "ca")
	ca.issue(t, "server", "vpn", net.ParseIP(serverIP))
	ca.issue(t, "device", "1234", nil)

	rs := startRegistrationServer(t, bin, dir, srv, cpOuter, "    converter: direct-bcd\n")
	api := rs.api
	gws := []struct {
		ns      *testenv.NetNS
		control string
		dev     string
	}{{gw1, "http://198.18.71.1:8080", testenv.UniqueName("acg")}, {gw2, "http://198.18.72.1:8080", testenv.UniqueName("ach")}}
	for _, g := range gws {
		startGateway(t, g.ns, bin, g.control, rs.gatewayToken, g.dev, "-stats-interval", "1s")
	}
	wc, err := wgctrl.New()
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Close()
	// onGateways waits until every gateway's device holds key with the device's /128 (or,
	// with want false, no longer holds it).
	onGateways := func(key wirefleet.Key, want bool) {
		t.Helper()
		e2e.Eventually(t, 15*time.Second, func() error {
			for _, g := range gws {
				p, err := devicePeer(wc, g.dev, key)
				if err != nil {
					return err
				}
				found := p != nil && len(p.AllowedIPs) == 1 && p.AllowedIPs[0].String() == cpDevice+"/128"
				if found != want {
					return fmt.Errorf("gateway %s: peer %s present with %s: %v, want %v", g.dev, key, cpDevice, found, want)
				}
			}
			return nil
		})
	}

	iface := testenv.UniqueName("acd")
	register := func() (*e2e.Process, wirefleet.Key) {
		t.Helper()
		p := e2e.Start(t, dev, nil, bin, "register", "--conf", "/nonexistent", "--url", "https://"+serverIP+":"+httpPort+"/vpn/",
			"--cert", filepath.Join(dir, "device.crt"), "--key", filepath.Join(dir, "device.key"), "--ca", filepath.Join(dir, "ca.crt"),
			"--interface", iface, "--backend", "userspace", "--foreground", "--interval", "2s")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.WaitOutput(ctx, "msg=registered"); err != nil {
			t.Fatal(err)
		}
		d, err := wc.Device(iface)
		if err != nil {
			t.Fatal(err)
		}
		e2e.Eventually(t, 20*time.Second, func() error {
			out, err := dev.Command("ping", "-6", "-c", "1", "-W", "1", cpGateway).CombinedOutput()
			if err != nil {
				return fmt.Errorf("ping %s from the device through the gateway: %v\n%s", cpGateway, err, out)
			}
			return nil
		})
		return p, wirefleet.Key(d.PublicKey)
	}

	p, key1 := register()
	onGateways(key1, true)
	if addrs := dev.Exec(t, "ip", "-6", "addr", "show", "dev", iface); !strings.Contains(addrs, cpDevice+"/128") {
		t.Errorf("device address: %s", addrs)
	}

	// The REST API lists the device under its certificate name.
	var list struct {
		Items []struct {
			Name      string `json:"name"`
			PublicKey string `json:"public_key"`
		} `json:"items"`
	}
	api.must(t, "GET", "/api/v1/networks/devices/peers", nil, &list)
	if len(list.Items) != 1 || list.Items[0].Name != "1234" || list.Items[0].PublicKey != key1.String() {
		t.Errorf("REST peer list: %+v, want the device %q with key %s", list.Items, "1234", key1)
	}
	// Its handshake through gw1 reached the server as a session.
	e2e.Eventually(t, 15*time.Second, func() error {
		raw, err := api.do("GET", "/api/v1/sessions?network=devices", nil)
		if err != nil {
			return err
		}
		var s struct {
			Sessions []struct {
				PublicKey string `json:"public_key"`
			} `json:"sessions"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			return err
		}
		for _, x := range s.Sessions {
			if x.PublicKey == key1.String() {
				return nil
			}
		}
		return fmt.Errorf("no session for the device in %s", raw)
	})

	// A reboot: a fresh key, the same address; the old key leaves every gateway.
	if err := p.Stop(5 * time.Second); err != nil {
		t.Logf("device exit: %v", err)
	}
	_, key2 := register()
	if key2 == key1 {
		t.Fatal("the device re-registered with the same key")
	}
	onGateways(key2, true)
	onGateways(key1, false)
}

// registrationServer is a `wirefleet server` serving network "devices" (cpNet) with its REST
// API on port 8080 of every address of its namespace and direct-mTLS registration on
// serverIP:httpPort/vpn/ (pool cpPool, route cpRoute).
type registrationServer struct {
	proc         *e2e.Process
	api          *apiClient // as an administrator
	gatewayToken string     // role gateway, network "devices"
}

// startRegistrationServer starts one in srv: a first run creates the network (endpoint
// endpoint) and a gateway token, since -register-config names an existing network; the
// second serves registrations with the site settings site (YAML lines of the site after
// pool, route and endpoint). dir holds ca.crt and server.crt/.key (newCA, issue).
func startRegistrationServer(t testing.TB, bin, dir string, srv *testenv.NetNS, endpoint, site string) registrationServer {
	t.Helper()
	data := t.TempDir()
	out, err := exec.Command(bin, "token", "create", "-data", data, "-role", "admin").Output()
	if err != nil {
		t.Fatalf("token create: %v", err)
	}
	rs := registrationServer{api: &apiClient{http: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: srv.Dialer(t)}},
		token: strings.TrimSpace(string(out))}}
	start := func(extra ...string) *e2e.Process {
		p := e2e.Start(t, srv, nil, bin, append([]string{"server", "-data", data, "-listen", "0.0.0.0:8080", "-no-gateway"}, extra...)...)
		e2e.Eventually(t, 15*time.Second, func() error { _, err := rs.api.do("GET", "/readyz", nil); return err })
		return p
	}
	first := start()
	rs.api.must(t, "POST", "/api/v1/networks", map[string]any{"name": "devices", "ipv4": "198.18.60.1/24", "ipv6": cpNet, "endpoint": endpoint})
	var tok struct {
		Secret string `json:"secret"`
	}
	rs.api.must(t, "POST", "/api/v1/tokens", map[string]any{"roles": []string{"gateway"}, "networks": []string{"devices"}}, &tok)
	rs.gatewayToken = tok.Secret
	if err := first.Stop(15 * time.Second); err != nil {
		t.Fatalf("server stop: %v", err)
	}
	conf := filepath.Join(dir, "register.yaml")
	yaml := fmt.Sprintf("tls_cert: %s\ntls_key: %s\nclient_ca: [%s]\nsites:\n  - network: devices\n    prefix: /vpn/\n"+
		"    pool: %s\n    route: %s\n    endpoint: %s\n%s",
		filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"), filepath.Join(dir, "ca.crt"), cpPool, cpRoute, endpoint, site)
	if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	rs.proc = start("-register-listen", serverIP+":"+httpPort, "-register-config", conf)
	return rs
}

// startGateway starts a managed `wirefleet gateway` of network "devices" in ns on a
// userspace device named dev and waits until the device holds the network's peers.
func startGateway(t testing.TB, ns *testenv.NetNS, bin, control, token, dev string, extra ...string) *e2e.Process {
	t.Helper()
	p := e2e.Start(t, ns, nil, bin, append([]string{"gateway", "-control", control, "-token", token, "-network", "devices",
		"-wg-backend", "userspace", "-wg-device", dev, "-state-dir", t.TempDir(), "-listen", "127.0.0.1:9586"}, extra...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.WaitOutput(ctx, "device opened and brought"); err != nil {
		t.Fatal(err)
	}
	return p
}

// devicePeer reads device dev (any namespace: UAPI sockets are shared) and returns its peer
// with key, or nil.
func devicePeer(wc *wgctrl.Client, dev string, key wirefleet.Key) (*wgtypes.Peer, error) {
	d, err := wc.Device(dev)
	if err != nil {
		return nil, err
	}
	for i := range d.Peers {
		if d.Peers[i].PublicKey == wgtypes.Key(key) {
			return &d.Peers[i], nil
		}
	}
	return nil, nil
}
