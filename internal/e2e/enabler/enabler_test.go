// Package enabler is the end-to-end test of `wirefleet enabler`: the binary in one
// namespace with the userspace backend, and a client in another namespace using stock
// wireguard-go and wg with a configuration built exactly as the upstream enabler's
// documentation describes, from the answers of GET /keys and POST /client.
package enabler

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/e2e"
	"github.com/wirefleet/wirefleet/internal/testenv"
)

type api struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func (a api) call(method, path, body string) (int, string) {
	a.t.Helper()
	return a.authCall("", method, path, body)
}

func (a api) authCall(token, method, path, body string) (int, string) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.base+path, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const (
	serverAddr = "203.0.113.1" // underlay, on the veth
	clientAddr = "203.0.113.2"
	subnet     = "198.18.7.1/29" // WG_SUBNET: the server's tunnel address
	tunnelNet  = "198.18.7.0/29" // PEER_ALLOWED_IPS: clients route only the VPN subnet
	apiPort    = "3000"
)

func TestEnablerEndToEnd(t *testing.T) {
	testenv.Privileged(t, "wg", "wireguard-go", "ping")
	bin := e2e.Binary(t)
	nsS := testenv.NewNetNS(t, "ens")
	nsC := testenv.NewNetNS(t, "enc")
	testenv.Link(t, nsS, serverAddr+"/24", nsC, clientAddr+"/24")
	devS, devC := testenv.UniqueName("wges"), testenv.UniqueName("wgec")
	data := t.TempDir()
	serverKey, err := wirefleet.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	env := []string{
		"SERVER_IP=" + serverAddr, "WG_SUBNET=" + subnet, "WG_PORT=51820", "API_PORT=" + apiPort,
		"PEER_ALLOWED_IPS=" + tunnelNet, "WG_PRIVATE_KEY=" + serverKey.String(),
		"MONGODB_HOST=vpn-db", // upstream's Helm values: accepted and ignored
	}
	start := func() *e2e.Process {
		p := e2e.Start(t, nsS, env, bin, "enabler", "-data", data, "-wg-device", devS, "-wg-backend", "userspace", "-rest-listen", "127.0.0.1:8080",
			"-metrics-listen", "127.0.0.1:9586", "-stats-interval", "1s")
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := p.WaitOutput(ctx, "enabler ready"); err != nil {
			t.Fatalf("%v\n%s", err, p.Output())
		}
		return p
	}
	srv := start()
	for _, want := range []string{"no authentication and listens beyond loopback", "ignoring upstream storage settings"} {
		if !strings.Contains(srv.Output(), want) {
			t.Errorf("start-up output lacks %q:\n%s", want, srv.Output())
		}
	}
	a := api{t: t, base: "http://" + serverAddr + ":" + apiPort, hc: &http.Client{
		Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: nsC.DialContext, DisableKeepAlives: true}}}
	// The Wirefleet REST API on the same store (loopback of the server's namespace), with
	// the admin token printed once on the first start.
	_, tok, ok := strings.Cut(srv.Output(), "REST API admin token (shown once, keep it): ")
	tok, _, _ = strings.Cut(tok, "\n")
	if !ok || !strings.HasPrefix(tok, "wft_") {
		t.Fatalf("no admin token in the output:\n%s", srv.Output())
	}
	rest := api{t: t, base: "http://127.0.0.1:8080", hc: &http.Client{
		Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: nsS.DialContext, DisableKeepAlives: true}}}

	// 1. Keys from GET /keys, client from POST /client, as the documentation's steps.
	code, body := a.call("GET", "/keys", "")
	var keys struct{ Public, Private, Preshared string }
	if code != 200 || json.Unmarshal([]byte(body), &keys) != nil {
		t.Fatalf("GET /keys: %d %s", code, body)
	}
	code, body = a.call("POST", "/client", fmt.Sprintf(`{"publicKey":%q,"presharedKey":%q}`, keys.Public, keys.Preshared))
	var cl struct{ ServerPublicKey, ServerIP, ServerPort, ClientIP, AllowedIPs, Message string }
	if code != 200 || json.Unmarshal([]byte(body), &cl) != nil {
		t.Fatalf("POST /client: %d %s", code, body)
	}
	if cl.ServerPublicKey != serverKey.PublicKey().String() || cl.ServerIP != serverAddr || cl.ServerPort != "51820" || cl.AllowedIPs != tunnelNet {
		t.Fatalf("POST /client answer %+v", cl)
	}

	// The client is an ordinary peer of the network in the REST API.
	if code, body := rest.authCall(tok, "GET", "/api/v1/networks/"+devS+"/peers", ""); code != 200 || !strings.Contains(body, keys.Public) {
		t.Errorf("GET /api/v1/networks/%s/peers: %d %s", devS, code, body)
	}

	// 2. The client configuration file, exactly the documentation's template.
	conf := fmt.Sprintf(`[Interface]
PrivateKey = %s
Address = %s

[Peer]
PublicKey = %s
PresharedKey = %s
AllowedIPs = %s
Endpoint = %s:%s
PersistentKeepalive = 25
`, keys.Private, cl.ClientIP, cl.ServerPublicKey, keys.Preshared, cl.AllowedIPs, cl.ServerIP, cl.ServerPort)
	// 3. Bring it up with stock wireguard-go and wg the way wg-quick does: the device,
	// `wg setconf` with the wg-quick-only Address line stripped, the address, a route for
	// each allowed IP.
	e2e.Start(t, nsC, []string{"WG_PROCESS_FOREGROUND=1"}, "wireguard-go", "-f", devC)
	sock := filepath.Join("/var/run/wireguard", devC+".sock")
	e2e.Eventually(t, 10*time.Second, func() error { _, err := os.Stat(sock); return err })
	t.Cleanup(func() { _ = os.Remove(sock) })
	var stripped []string
	for _, l := range strings.Split(conf, "\n") {
		if !strings.HasPrefix(l, "Address = ") {
			stripped = append(stripped, l)
		}
	}
	confPath := filepath.Join(t.TempDir(), devC+".conf")
	if err := os.WriteFile(confPath, []byte(strings.Join(stripped, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	nsC.Exec(t, "wg", "setconf", devC, confPath)
	nsC.Exec(t, "ip", "address", "add", cl.ClientIP, "dev", devC)
	nsC.Exec(t, "ip", "link", "set", devC, "up")
	for _, r := range strings.Split(cl.AllowedIPs, ",") {
		nsC.Exec(t, "ip", "route", "add", strings.TrimSpace(r), "dev", devC)
	}
	tunnelServer := strings.Split(subnet, "/")[0]
	ping := func() error {
		out, err := nsC.Command("ping", "-c", "1", "-W", "1", tunnelServer).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ping %s: %v: %s", tunnelServer, err, out)
		}
		return nil
	}
	e2e.Eventually(t, 20*time.Second, ping)

	// The client is in the enabler's metrics (on -rest-listen and -metrics-listen, read
	// from the device) with the bytes it sent, and in /api/v1/sessions with an open
	// session of the enabler's own device (gateway "local").
	for _, base := range []string{"http://127.0.0.1:8080", "http://127.0.0.1:9586"} {
		m := api{t: t, base: base, hc: rest.hc}
		e2e.Eventually(t, 10*time.Second, func() error {
			_, body := m.call("GET", "/metrics", "")
			rx, err := metricValue(body, fmt.Sprintf(`wirefleet_peer_receive_bytes_total{network=%q,public_key=%q}`, devS, keys.Public))
			if err != nil {
				return fmt.Errorf("%s/metrics: %v", base, err)
			}
			if rx <= 0 {
				return fmt.Errorf("%s/metrics: received bytes of the client are %v after pings", base, rx)
			}
			return nil
		})
	}
	e2e.Eventually(t, 10*time.Second, func() error {
		code, body := rest.authCall(tok, "GET", "/api/v1/sessions?network="+devS+"&state=open", "")
		var out struct {
			Sessions []struct {
				PublicKey string `json:"public_key"`
				Gateway   string
				Protocol  string
				End       *time.Time
			}
		}
		if code != 200 || json.Unmarshal([]byte(body), &out) != nil {
			return fmt.Errorf("GET /api/v1/sessions: %d %s", code, body)
		}
		for _, s := range out.Sessions {
			if s.PublicKey == keys.Public && s.End == nil && s.Gateway == "local" && s.Protocol == "wireguard" {
				return nil
			}
		}
		return fmt.Errorf("no open session of the client in %s", body)
	})
	// And through the CLI, which talks to -rest-listen like to any control plane.
	cli := nsS.Command(bin, "session", "list", devS, "-open")
	cli.Env = append(os.Environ(), "WIREFLEET_SERVER=http://127.0.0.1:8080", "WIREFLEET_TOKEN="+tok)
	if out, err := cli.CombinedOutput(); err != nil || !strings.Contains(string(out), keys.Public) || !strings.Contains(string(out), "local") {
		t.Errorf("wirefleet session list %s -open: %v\n%s", devS, err, out)
	}

	// /info is what wg show prints on the server (now with handshake and transfer lines);
	// /info/conf has no secret at all.
	var got, want string
	for range 10 {
		want = nsS.Exec(t, "wg", "show", devS)
		_, got = a.call("GET", "/info", "")
		if got == want {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got != want {
		t.Errorf("GET /info differs from wg show (-wg +enabler):\n%s", cmp.Diff(want, got))
	}
	_, confOut := a.call("GET", "/info/conf", "")
	for _, secret := range []string{serverKey.String(), keys.Preshared, "PrivateKey", "PresharedKey"} {
		if strings.Contains(confOut, secret) {
			t.Errorf("/info/conf leaks %q:\n%s", secret, confOut)
		}
	}
	if !strings.Contains(confOut, "PublicKey = "+keys.Public) {
		t.Errorf("/info/conf lacks the client:\n%s", confOut)
	}

	// 4. Disable: the tunnel stops. Enable: it works again.
	key := fmt.Sprintf(`{"publicKey":%q}`, keys.Public)
	if code, body := a.call("PUT", "/client/disable", key); code != 204 {
		t.Fatalf("disable: %d %s", code, body)
	}
	e2e.Eventually(t, 10*time.Second, func() error {
		if ping() == nil {
			return fmt.Errorf("ping still answered after disable")
		}
		return nil
	})
	if code, body := a.call("PUT", "/client/enable", key); code != 204 {
		t.Fatalf("enable: %d %s", code, body)
	}
	e2e.Eventually(t, 40*time.Second, ping)

	// 5. Restart the enabler: the client is restored from the store and works again.
	if err := srv.Stop(10 * time.Second); err != nil {
		t.Logf("enabler exit: %v", err)
	}
	srv = start()
	e2e.Eventually(t, 45*time.Second, ping)
	if out := srv.Output(); strings.Contains(out, serverKey.String()) || strings.Contains(out, keys.Preshared) {
		t.Errorf("the enabler logged a secret:\n%s", out)
	}
	// 6. A change through the REST API reaches the device too (the op log is followed).
	urlKey := strings.NewReplacer("+", "-", "/", "_").Replace(keys.Public)
	if code, body := rest.authCall(tok, "POST", "/api/v1/networks/"+devS+"/peers/"+urlKey+"/disable", ""); code/100 != 2 {
		t.Fatalf("REST disable: %d %s", code, body)
	}
	e2e.Eventually(t, 10*time.Second, func() error {
		if ping() == nil {
			return fmt.Errorf("ping still answered after a disable through /api/v1")
		}
		return nil
	})

	// 7. Delete (of a disabled client): gone from the device.
	if code, body := a.call("DELETE", "/client", key); code != 200 || body != "" {
		t.Fatalf("delete: %d %q", code, body)
	}
	if strings.Contains(nsS.Exec(t, "wg", "show", devS, "peers"), keys.Public) {
		t.Error("deleted client still on the server's device")
	}
}

// metricValue finds the sample named exactly series (name with labels) in a Prometheus
// text exposition.
func metricValue(exposition, series string) (float64, error) {
	for _, l := range strings.Split(exposition, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				return 0, fmt.Errorf("sample %q: %v", l, err)
			}
			return f, nil
		}
	}
	return 0, fmt.Errorf("no sample %s", series)
}
