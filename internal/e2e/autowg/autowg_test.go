// Package autowg is the end-to-end test of zero-touch registration: `wirefleet autowg`
// attached to a stock wireguard-go interface in a server namespace (serving HTTPS with
// direct mTLS), and `wirefleet register --foreground` (embedded userspace WireGuard) in a
// device namespace, with certificates made by the test. The device gets its address, pings
// the concentrator through the tunnel, re-registers with a new key after a restart and
// still pings; spoofed subjects and certificates of another CA are refused. The same
// device registers through the control plane too (`wirefleet server -register-listen`
// with two managed gateways: controlplane_test.go).
package autowg

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
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
	"github.com/wirefleet/wirefleet/internal/wgdev/wgdevtest"
)

const (
	serverIP   = "198.51.100.1"
	deviceIP   = "198.51.100.2"
	pool       = "fd00:77:0:1::/64"
	route      = "fd00:77::/48"
	serverAddr = "fd00:77::1"
	httpPort   = "3443"
)

// ca is a test certificate authority writing PEM files into dir.
type ca struct {
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	n    int64
}

func newCA(t testing.TB, dir, name string) *ca {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	a := &ca{dir: dir, cert: c, key: k, n: 1}
	a.write(t, name, der, nil)
	return a
}

func (a *ca) write(t testing.TB, name string, der []byte, k *ecdsa.PrivateKey) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(a.dir, name+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if k != nil {
		kb, _ := x509.MarshalECPrivateKey(k)
		if err := os.WriteFile(filepath.Join(a.dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// issue writes name.crt/name.key: a server certificate for ip, or a client one for cn.
func (a *ca) issue(t testing.TB, name, cn string, ip net.IP) tls.Certificate {
	t.Helper()
	a.n++
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tpl := &x509.Certificate{SerialNumber: big.NewInt(a.n), Subject: pkix.Name{CommonName: cn, Organization: []string{"Wirefleet Test, Inc."}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	if ip != nil {
		tpl.IPAddresses = []net.IP{ip}
		tpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	} else {
		tpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, a.cert, &k.PublicKey, a.key)
	if err != nil {
		t.Fatal(err)
	}
	a.write(t, name, der, k)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}

// setup is a server namespace with a wireguard-go interface and `wirefleet autowg`, and a
// device namespace linked to it.
type setup struct {
	bin, dir       string
	srv, dev       *testenv.NetNS
	wgS            string
	ca             *ca
	url            string
	serverPub      wirefleet.Key
	static, stale  wirefleet.Key
	mixed          wirefleet.Key
	noIPs, super   wirefleet.Key
	autowg         *e2e.Process
	deviceCertPath string
}

func newSetup(t testing.TB, extra ...string) *setup {
	t.Helper()
	testenv.Privileged(t, "wg", "wireguard-go", "ping", "curl")
	s := &setup{bin: e2e.Binary(t), dir: t.TempDir()}
	s.srv = testenv.NewNetNS(t, "awS")
	s.dev = testenv.NewNetNS(t, "awD")
	testenv.Link(t, s.srv, serverIP+"/24", s.dev, deviceIP+"/24")

	// The concentrator's interface, as wg-quick would make it: key, port, its own address,
	// a static IPv4 peer, a stale pool peer and a peer with addresses in and out of the pool.
	s.wgS = testenv.UniqueName("awg")
	wgdevtest.StartWireguardGo(t, s.srv, s.wgS)
	priv, _ := wirefleet.GeneratePrivateKey()
	s.serverPub = priv.PublicKey()
	keyFile := filepath.Join(s.dir, "server.wgkey")
	os.WriteFile(keyFile, []byte(priv.String()+"\n"), 0o600)
	key := func() wirefleet.Key { k, _ := wirefleet.GeneratePrivateKey(); return k.PublicKey() }
	s.static, s.stale, s.mixed, s.noIPs, s.super = key(), key(), key(), key(), key()
	s.srv.Exec(t, "wg", "set", s.wgS, "private-key", keyFile, "listen-port", "51820",
		"peer", s.static.String(), "allowed-ips", "198.18.0.5/32,fd00:77::5/128",
		"peer", s.stale.String(), "allowed-ips", "fd00:77:0:1::99/128",
		"peer", s.mixed.String(), "allowed-ips", "fd00:77:0:1::55/128,198.18.0.6/32",
		"peer", s.noIPs.String(),
		"peer", s.super.String(), "allowed-ips", "fd00:77::/56")
	s.srv.Exec(t, "ip", "addr", "add", serverAddr+"/48", "dev", s.wgS)
	s.srv.Exec(t, "ip", "link", "set", s.wgS, "up")

	s.ca = newCA(t, s.dir, "ca")
	s.ca.issue(t, "server", "vpn", net.ParseIP(serverIP))
	s.ca.issue(t, "device", "1234", nil)
	s.deviceCertPath = filepath.Join(s.dir, "device")
	other := newCA(t, s.dir, "otherca")
	other.issue(t, "intruder", "4321", nil)

	s.url = "https://" + serverIP + ":" + httpPort + "/vpn/"
	args := append([]string{}, "autowg",
		"--pool", pool, "--route", route, "--endpoint", serverIP, "--http-host", serverIP, "--http-port", httpPort, "--http-prefix", "/vpn",
		"--tls-cert", filepath.Join(s.dir, "server.crt"), "--tls-key", filepath.Join(s.dir, "server.key"),
		"--client-ca", filepath.Join(s.dir, "ca.crt"))
	args = append(append(args, extra...), s.wgS)
	s.autowg = e2e.Start(t, s.srv, []string{"HTTP_AUTH=mon:secret"}, s.bin, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.autowg.WaitOutput(ctx, "autowg listening"); err != nil {
		t.Fatal(err)
	}
	return s
}

// wgShow returns `wg show IFACE allowed-ips` in the server namespace as key → allowed IPs.
func (s *setup) wgShow(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, l := range e2e.Lines(s.srv.Exec(t, "wg", "show", s.wgS, "allowed-ips")) {
		k, v, _ := strings.Cut(l, "\t")
		out[k] = v
	}
	return out
}

// client returns an HTTPS client from the device namespace with the given certificate.
func (s *setup) client(t testing.TB, cert *tls.Certificate) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(s.ca.cert)
	tc := &tls.Config{RootCAs: pool}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: s.dev.DialContext, TLSClientConfig: tc}}
}

func post(t *testing.T, c *http.Client, url, body string, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func (s *setup) startDevice(t *testing.T, iface string) *e2e.Process {
	t.Helper()
	p := e2e.Start(t, s.dev, nil, s.bin, "register", "--conf", "/nonexistent", "--url", s.url,
		"--cert", s.deviceCertPath+".crt", "--key", s.deviceCertPath+".key", "--ca", filepath.Join(s.dir, "ca.crt"),
		"--interface", iface, "--backend", "userspace", "--foreground", "--interval", "2s")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.WaitOutput(ctx, "msg=registered"); err != nil {
		t.Fatal(err)
	}
	return p
}

func (s *setup) ping(t *testing.T) {
	t.Helper()
	e2e.Eventually(t, 20*time.Second, func() error {
		out, err := s.dev.Command("ping", "-6", "-c", "1", "-W", "1", serverAddr).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ping %s from the device: %v\n%s", serverAddr, err, out)
		}
		return nil
	})
}

func TestRegisterPingReregister(t *testing.T) {
	s := newSetup(t, "--rest-listen", serverIP+":8080")

	// Startup cleanup: the stale pool peer is gone, the static peer untouched, the mixed
	// peer lost only its pool address.
	want := map[string]string{s.static.String(): "198.18.0.5/32 fd00:77::5/128", s.mixed.String(): "198.18.0.6/32",
		s.noIPs.String(): "(none)", s.super.String(): "fd00:77::/56"}
	e2e.Eventually(t, 10*time.Second, func() error {
		got := s.wgShow(t)
		for k, v := range want {
			if got[k] != v {
				return fmt.Errorf("peer %s: %q, want %q (all: %v)", k, got[k], v, got)
			}
		}
		if _, ok := got[s.stale.String()]; ok {
			return fmt.Errorf("the stale pool peer is still there: %v", got)
		}
		return nil
	})

	iface := testenv.UniqueName("awd")
	dev := s.startDevice(t, iface)
	s.ping(t)
	addrs := s.dev.Exec(t, "ip", "-6", "addr", "show", "dev", iface)
	if !strings.Contains(addrs, "fd00:77:0:1::1234/128") {
		t.Errorf("device address: %s", addrs)
	}
	first := s.wgShow(t)
	var firstKey string
	for k, v := range first {
		if v == "fd00:77:0:1::1234/128" {
			firstKey = k
		}
	}
	if firstKey == "" {
		t.Fatalf("no peer for the device on the server: %v", first)
	}

	// A reboot: the device process (and its userspace interface) goes away; the next run
	// registers a fresh key and still pings; the old key is gone from the server.
	if err := dev.Stop(5 * time.Second); err != nil {
		t.Logf("device exit: %v", err)
	}
	s.startDevice(t, iface)
	s.ping(t)
	second := s.wgShow(t)
	if _, ok := second[firstKey]; ok {
		t.Errorf("the old key %s is still on the server: %v", firstKey, second)
	}
	n := 0
	for _, v := range second {
		if v == "fd00:77:0:1::1234/128" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d peers hold the device's address: %v", n, second)
	}
	if second[s.static.String()] != want[s.static.String()] {
		t.Errorf("the static peer changed: %v", second)
	}

	// Monitoring sees the device under its certificate name.
	c := s.client(t, nil)
	req, _ := http.NewRequest("GET", s.url+"v1/peers.json", nil)
	req.SetBasicAuth("mon", "secret")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(b), `"1234"`) || !strings.Contains(string(b), "fd00:77:0:1::1234") {
		t.Errorf("peers.json: %d %s", res.StatusCode, b)
	}

	// The REST API lists the device under its certificate name; an administrator disables
	// it, it leaves the interface, and it can no longer register (with any key).
	out := s.autowg.Output()
	_, token, _ := strings.Cut(out, "REST API admin token (shown once, keep it): ")
	token, _, _ = strings.Cut(token, "\n")
	apiCall := func(method, path string) (int, string) {
		req, _ := http.NewRequest(method, "http://"+serverIP+":8080"+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	code, list := apiCall("GET", "/api/v1/networks/"+s.wgS+"/peers")
	var secondKey string
	for k, v := range second {
		if v == "fd00:77:0:1::1234/128" {
			secondKey = k
		}
	}
	if code != 200 || !strings.Contains(list, `"name":"1234"`) || !strings.Contains(list, secondKey) {
		t.Fatalf("REST peer list: %d %s", code, list)
	}
	if code, body := apiCall("POST", "/api/v1/networks/"+s.wgS+"/peers/"+url.PathEscape(secondKey)+"/disable"); code != 200 {
		t.Fatalf("disable: %d %s", code, body)
	}
	e2e.Eventually(t, 10*time.Second, func() error {
		if _, ok := s.wgShow(t)[secondKey]; ok {
			return fmt.Errorf("the disabled device is still on the interface")
		}
		return nil
	})
	good, _ := tls.LoadX509KeyPair(s.deviceCertPath+".crt", s.deviceCertPath+".key")
	k3, _ := wirefleet.GeneratePrivateKey()
	if code, msg := post(t, s.client(t, &good), s.url+"v1/register", k3.PublicKey().String(), nil); code != http.StatusForbidden {
		t.Errorf("a disabled device registering a new key: %d %q", code, msg)
	}
}

func TestRefusals(t *testing.T) {
	s := newSetup(t)
	before := s.wgShow(t)
	k, _ := wirefleet.GeneratePrivateKey()
	body := k.PublicKey().String() + "\n"

	// No certificate, a spoofed subject from the device's (untrusted) address.
	code, msg := post(t, s.client(t, nil), s.url+"v1/register", body, map[string]string{"X-Client-Subject": "CN=1234,O=Org"})
	if code != http.StatusForbidden {
		t.Errorf("spoofed X-Client-Subject: %d %q", code, msg)
	}
	// A certificate of another CA.
	intruder, err := tls.LoadX509KeyPair(filepath.Join(s.dir, "intruder.crt"), filepath.Join(s.dir, "intruder.key"))
	if err != nil {
		t.Fatal(err)
	}
	code, msg = post(t, s.client(t, &intruder), s.url+"v1/register", body, nil)
	if code != http.StatusForbidden {
		t.Errorf("certificate of another CA: %d %q", code, msg)
	}
	// The right certificate with bad bodies.
	good, _ := tls.LoadX509KeyPair(s.deviceCertPath+".crt", s.deviceCertPath+".key")
	for _, b := range []string{"", "not base64!", strings.Repeat("A", 40) + "A=", strings.Repeat("A", 44) + "=="} {
		if code, msg := post(t, s.client(t, &good), s.url+"v1/register", b, nil); code != http.StatusBadRequest {
			t.Errorf("body %q: %d %q", b, code, msg)
		}
	}
	if code, _ := post(t, s.client(t, &good), s.url+"v1/register", strings.Repeat("A", 5000), nil); code != http.StatusRequestEntityTooLarge {
		t.Errorf("huge body: %d", code)
	}
	// The key of a static peer of the interface: the device refuses it, 409, nothing stays.
	if code, msg := post(t, s.client(t, &good), s.url+"v1/register", s.static.String(), nil); code != http.StatusConflict {
		t.Errorf("a static peer's key: %d %q", code, msg)
	}
	after := s.wgShow(t)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("refused requests changed the interface:\nbefore %v\nafter  %v", before, after)
	}
	// Upstream's client's request, verbatim (curl -m 3 -sS -d "$pubkey" -E crt --key key URL;
	// --cacert only because the test CA is not in the system store), with upstream's
	// api_endpoint form (the full .../v1/register URL): the five lines it parses.
	k2, _ := wirefleet.GeneratePrivateKey()
	out, err := s.dev.Command("curl", "-m", "3", "-sS", "-d", k2.PublicKey().String(), "-E", s.deviceCertPath+".crt", "--key", s.deviceCertPath+".key",
		"--cacert", filepath.Join(s.dir, "ca.crt"), s.url+"v1/register").CombinedOutput()
	want := "endpoint=" + serverIP + ":51820\npubkey=" + s.serverPub.String() + "\nroute=" + route + "\nip=fd00:77:0:1::1234\nkeepalive=25\n"
	if err != nil || string(out) != want {
		t.Errorf("upstream client's curl: %v\n%q\nwant %q", err, out, want)
	}

	// The device client fails loudly (non-zero) with the intruder's certificate and leaves
	// no interface behind.
	iface := testenv.UniqueName("awx")
	out, err = s.dev.Command(s.bin, "register", "--conf", "/nonexistent", "--url", s.url, "--cert", filepath.Join(s.dir, "intruder.crt"),
		"--key", filepath.Join(s.dir, "intruder.key"), "--ca", filepath.Join(s.dir, "ca.crt"), "--interface", iface,
		"--backend", "userspace", "--foreground").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "403") {
		t.Errorf("register with a foreign certificate: err %v\n%s", err, out)
	}
	if exec := s.dev.Command("ip", "link", "show", iface); exec.Run() == nil {
		t.Errorf("interface %s exists after a refused registration", iface)
	}
}

// TestStartupRefusals: autowg attaches, it never creates: no interface, or one without a
// private key, is refused with a clear message; so is a bad pool (exit 2).
func TestStartupRefusals(t *testing.T) {
	testenv.Privileged(t, "wg", "wireguard-go")
	bin := e2e.Binary(t)
	ns := testenv.NewNetNS(t, "awR")
	bare := testenv.UniqueName("awb")
	wgdevtest.StartWireguardGo(t, ns, bare)
	for _, tc := range []struct {
		iface, pool, want string
		code              int
	}{
		{testenv.UniqueName("awn"), pool, "not an existing WireGuard interface", 1},
		{bare, pool, "has no private key", 1},
		{bare, "198.51.100.0/24", "not an IPv6 prefix", 2},
	} {
		cmd := ns.Command(bin, "autowg", "--pool", tc.pool, "--route", route, "--endpoint", serverIP, "--http-port", "0", tc.iface)
		out, err := cmd.CombinedOutput()
		code := cmd.ProcessState.ExitCode()
		if err == nil || code != tc.code || !strings.Contains(string(out), tc.want) {
			t.Errorf("%s pool %s: exit %d (want %d), output:\n%s", tc.iface, tc.pool, code, tc.code, out)
		}
	}
}

// TestRestartState: like upstream, a restart without --data forgets the registrations and
// clears the pool's peers (devices re-register); with --data the registrations survive and
// the interface is restored from the store.
func TestRestartState(t *testing.T) {
	data := t.TempDir()
	s := newSetup(t, "--data", data)
	good, err := tls.LoadX509KeyPair(s.deviceCertPath+".crt", s.deviceCertPath+".key")
	if err != nil {
		t.Fatal(err)
	}
	k, _ := wirefleet.GeneratePrivateKey()
	pub := k.PublicKey().String()
	if code, msg := post(t, s.client(t, &good), s.url+"v1/register", pub, nil); code != 200 {
		t.Fatalf("register: %d %q", code, msg)
	}
	restart := func(extra ...string) {
		t.Helper()
		if err := s.autowg.Stop(5 * time.Second); err != nil {
			t.Logf("autowg exit: %v", err)
		}
		args := []string{"autowg", "--pool", pool, "--route", route, "--endpoint", serverIP, "--http-host", serverIP, "--http-port", httpPort}
		args = append(append(args, extra...), s.wgS)
		s.autowg = e2e.Start(t, s.srv, nil, s.bin, args...)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.autowg.WaitOutput(ctx, "autowg listening"); err != nil {
			t.Fatal(err)
		}
	}
	// The peer outlives the process (attach never removes peers on exit); take it off by
	// hand and restart with the same data: it is restored.
	s.srv.Exec(t, "wg", "set", s.wgS, "peer", pub, "remove")
	restart("--data", data)
	if got := s.wgShow(t)[pub]; got != "fd00:77:0:1::1234/128" {
		t.Errorf("after a restart with --data: %q, want the registration restored (all: %v)", got, s.wgShow(t))
	}
	// Without --data: a fresh store, the pool is cleared, the static peer stays.
	restart()
	got := s.wgShow(t)
	if _, ok := got[pub]; ok {
		t.Errorf("after a restart without --data the registration is still on the interface: %v", got)
	}
	if got[s.static.String()] == "" {
		t.Errorf("the static peer was removed: %v", got)
	}
}
