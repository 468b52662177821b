package enabler

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet/internal/e2e"
	"github.com/wirefleet/wirefleet/internal/testenv"
)

// TestEnablerRemoteGateway: a client created through the enabler API is served by a
// remote managed gateway (`wirefleet gateway -control` against the enabler's
// -rest-listen, with a gateway token created through /api/v1), in a third namespace. The
// client first pings through the enabler, then its endpoint is switched to the gateway
// and it pings through that; the gateway's statistics reach the enabler's sessions.
//
//	client ns ──203.0.113.0/24── enabler ns ──192.0.2.0/24── gateway ns
//	    └──────────────────198.51.100.0/24──────────────────────┘
func TestEnablerRemoteGateway(t *testing.T) {
	testenv.Privileged(t, "wg", "wireguard-go", "ping")
	bin := e2e.Binary(t)
	nsS := testenv.NewNetNS(t, "ers")
	nsC := testenv.NewNetNS(t, "erc")
	nsG := testenv.NewNetNS(t, "erg")
	_, toEnabler := testenv.Link(t, nsS, "203.0.113.1/24", nsC, "203.0.113.2/24")
	testenv.Link(t, nsS, "192.0.2.1/24", nsG, "192.0.2.2/24")
	testenv.Link(t, nsG, "198.51.100.1/24", nsC, "198.51.100.2/24")
	devS, devC, devG := testenv.UniqueName("wgrs"), testenv.UniqueName("wgrc"), testenv.UniqueName("wgrg")

	env := []string{"SERVER_IP=203.0.113.1", "WG_SUBNET=" + subnet, "WG_PORT=51820", "API_PORT=" + apiPort,
		"LISTEN_HOST=203.0.113.1", "PEER_ALLOWED_IPS=" + tunnelNet}
	srv := e2e.Start(t, nsS, env, bin, "enabler", "-data", t.TempDir(), "-wg-device", devS, "-wg-backend", "userspace",
		"-rest-listen", "192.0.2.1:8080", "-stats-interval", "1s")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.WaitOutput(ctx, "enabler ready"); err != nil {
		t.Fatalf("%v\n%s", err, srv.Output())
	}
	_, tok, _ := strings.Cut(srv.Output(), "REST API admin token (shown once, keep it): ")
	tok, _, _ = strings.Cut(tok, "\n")
	a := api{t: t, base: "http://203.0.113.1:" + apiPort, hc: &http.Client{
		Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: nsC.DialContext, DisableKeepAlives: true}}}
	rest := api{t: t, base: "http://192.0.2.1:8080", hc: &http.Client{
		Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: nsS.DialContext, DisableKeepAlives: true}}}

	// A client, the upstream way.
	code, body := a.call("GET", "/keys", "")
	var keys struct{ Public, Private, Preshared string }
	if code != 200 || json.Unmarshal([]byte(body), &keys) != nil {
		t.Fatalf("GET /keys: %d %s", code, body)
	}
	code, body = a.call("POST", "/client", fmt.Sprintf(`{"publicKey":%q,"presharedKey":%q}`, keys.Public, keys.Preshared))
	var cl struct{ ServerPublicKey, ServerIP, ServerPort, ClientIP, AllowedIPs string }
	if code != 200 || json.Unmarshal([]byte(body), &cl) != nil {
		t.Fatalf("POST /client: %d %s", code, body)
	}

	// A gateway token for the enabler's network, created through /api/v1, and a managed
	// gateway following the enabler's store.
	code, body = rest.authCall(tok, "POST", "/api/v1/tokens", fmt.Sprintf(`{"name":"remote","roles":["gateway"],"networks":[%q]}`, devS))
	var created struct{ Secret string }
	if code != http.StatusCreated || json.Unmarshal([]byte(body), &created) != nil || created.Secret == "" {
		t.Fatalf("POST /api/v1/tokens: %d %s", code, body)
	}
	e2e.Start(t, nsG, nil, bin, "gateway", "-control", "http://192.0.2.1:8080", "-token", created.Secret, "-network", devS,
		"-wg-backend", "userspace", "-wg-device", devG, "-state-dir", t.TempDir(), "-listen", "127.0.0.1:9586",
		"-name", "remote", "-stats-interval", "1s", "-openvpn-socket-dir", "")
	t.Cleanup(func() { _ = os.Remove(filepath.Join("/var/run/wireguard", devG+".sock")) })
	e2e.Eventually(t, 20*time.Second, func() error {
		out, err := nsG.Command("wg", "show", devG, "peers").CombinedOutput()
		if err != nil || !strings.Contains(string(out), keys.Public) {
			return fmt.Errorf("the gateway does not serve the client yet: %v %s", err, out)
		}
		return nil
	})

	// The client: stock wireguard-go and wg, the documented configuration.
	e2e.Start(t, nsC, []string{"WG_PROCESS_FOREGROUND=1"}, "wireguard-go", "-f", devC)
	sock := filepath.Join("/var/run/wireguard", devC+".sock")
	e2e.Eventually(t, 10*time.Second, func() error { _, err := os.Stat(sock); return err })
	t.Cleanup(func() { _ = os.Remove(sock) })
	conf := fmt.Sprintf("[Interface]\nPrivateKey = %s\n\n[Peer]\nPublicKey = %s\nPresharedKey = %s\nAllowedIPs = %s\nEndpoint = %s:%s\nPersistentKeepalive = 25\n",
		keys.Private, cl.ServerPublicKey, keys.Preshared, cl.AllowedIPs, cl.ServerIP, cl.ServerPort)
	confPath := filepath.Join(t.TempDir(), devC+".conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	nsC.Exec(t, "wg", "setconf", devC, confPath)
	nsC.Exec(t, "ip", "address", "add", cl.ClientIP, "dev", devC)
	nsC.Exec(t, "ip", "link", "set", devC, "up")
	nsC.Exec(t, "ip", "route", "add", tunnelNet, "dev", devC)
	tunnelServer := strings.Split(subnet, "/")[0]
	ping := func() error {
		out, err := nsC.Command("ping", "-c", "1", "-W", "1", tunnelServer).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ping %s: %v: %s", tunnelServer, err, out)
		}
		return nil
	}
	e2e.Eventually(t, 20*time.Second, ping)
	sessionGateway := func(want string) func() error {
		return func() error {
			code, body := rest.authCall(tok, "GET", "/api/v1/sessions?network="+devS+"&state=open", "")
			var out struct {
				Sessions []struct {
					PublicKey string `json:"public_key"`
					Gateway   string
				}
			}
			if code != 200 || json.Unmarshal([]byte(body), &out) != nil {
				return fmt.Errorf("GET /api/v1/sessions: %d %s", code, body)
			}
			for _, s := range out.Sessions {
				if s.PublicKey == keys.Public && s.Gateway == want {
					return nil
				}
			}
			return fmt.Errorf("no open session of the client on gateway %q: %s", want, body)
		}
	}
	e2e.Eventually(t, 10*time.Second, sessionGateway("local"))

	// The enabler's host becomes unreachable for the client, whose configuration is
	// reloaded with the gateway as endpoint: the tunnel works through the gateway (its
	// device has the handshake) and the session's latest gateway is the remote one.
	nsC.Exec(t, "ip", "link", "set", toEnabler, "down")
	if err := os.WriteFile(confPath, []byte(strings.Replace(conf, "Endpoint = "+cl.ServerIP+":", "Endpoint = 198.51.100.1:", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	nsC.Exec(t, "wg", "set", devC, "peer", cl.ServerPublicKey, "remove")
	nsC.Exec(t, "wg", "setconf", devC, confPath)
	e2e.Eventually(t, 30*time.Second, func() error {
		if err := ping(); err != nil {
			return err
		}
		out := nsG.Exec(t, "wg", "show", devG, "latest-handshakes")
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[0] == keys.Public && f[1] != "0" {
				return nil
			}
		}
		return fmt.Errorf("no handshake of the client on the gateway yet: %s", out)
	})
	e2e.Eventually(t, 15*time.Second, sessionGateway("remote"))

	// A disable through the enabler API (called from the enabler's host now) reaches the
	// remote gateway too.
	a.hc = rest.hc
	if code, body := a.call("PUT", "/client/disable", fmt.Sprintf(`{"publicKey":%q}`, keys.Public)); code != 204 {
		t.Fatalf("disable: %d %s", code, body)
	}
	e2e.Eventually(t, 15*time.Second, func() error {
		if strings.Contains(nsG.Exec(t, "wg", "show", devG, "peers"), keys.Public) {
			return fmt.Errorf("the gateway still serves the disabled client")
		}
		return nil
	})
}
