package openvpn

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet/internal/e2e"
	"github.com/wirefleet/wirefleet/internal/testenv"
)

// Addresses of the control plane and the managed gateway's metrics, on loopback in the
// OpenVPN servers' namespace.
const (
	controlAddr = "127.0.0.1:8443"
	metricsAddr = "127.0.0.1:9586"
)

// curlIn sends a request with curl inside ns and returns the status and body.
func curlIn(t *testing.T, ns *testenv.NetNS, method, url, token string) (int, string) {
	t.Helper()
	code, body, err := tryCurlIn(ns, method, url, token)
	if err != nil {
		t.Fatal(err)
	}
	return code, body
}

func tryCurlIn(ns *testenv.NetNS, method, url, token string) (int, string, error) {
	args := []string{"netns", "exec", ns.Name, "curl", "-sS", "-X", method, "-w", "\n%{http_code}", "--max-time", "10"}
	if token != "" {
		args = append(args, "-H", "Authorization: Bearer "+token)
	}
	b, err := exec.Command("ip", append(args, url)...).CombinedOutput()
	out := string(b)
	if err != nil {
		return 0, "", fmt.Errorf("curl %s %s: %v: %s", method, url, err, out)
	}
	i := strings.LastIndex(out, "\n")
	var code int
	if _, err := fmt.Sscanf(out[i+1:], "%d", &code); err != nil {
		return 0, "", fmt.Errorf("curl output %q: %v", out, err)
	}
	return code, out[:i], nil
}

type ovpnSession struct {
	ID         string     `json:"id"`
	Protocol   string     `json:"protocol"`
	CommonName string     `json:"common_name"`
	Process    string     `json:"process"`
	Gateway    string     `json:"gateway"`
	IPv4       string     `json:"ipv4"`
	IPv6       string     `json:"ipv6"`
	RxBytes    int64      `json:"rx_bytes"`
	TxBytes    int64      `json:"tx_bytes"`
	End        *time.Time `json:"end"`
}

// TestManagedGatewayReportsOpenVPNSessions: a control plane and a managed gateway reading
// a real OpenVPN server's management socket; a real client's connection becomes a session
// with protocol openvpn, its CN, addresses and bytes, and closes when the client stops.
// The gateway's /metrics shows the OpenVPN clients.
func TestManagedGatewayReportsOpenVPNSessions(t *testing.T) {
	testenv.Privileged(t, "openvpn", "curl")
	b := newBench(t)
	udp := b.startServer("udp", 1194, "198.51.100.0/24", "2001:db8:1::/64")

	bin := e2e.Binary(t)
	data := t.TempDir()
	token := func(role string) string {
		out, err := exec.Command(bin, "token", "create", "-data", data, "-role", role, "-name", "e2e-"+role).Output()
		if err != nil {
			t.Fatalf("token create -role %s: %v", role, err)
		}
		return strings.TrimSpace(string(out))
	}
	admin, gwToken := token("admin"), token("gateway")
	e2e.Start(t, b.srv, nil, bin, "server", "-data", data, "-listen", controlAddr, "-no-gateway")
	api := "http://" + controlAddr
	e2e.Eventually(t, 15*time.Second, func() error {
		code, body, err := tryCurlIn(b.srv, "GET", api+"/readyz", "")
		if err == nil && code != 200 {
			err = fmt.Errorf("control plane /readyz: %d %s", code, body)
		}
		return err
	})
	gw := e2e.Start(t, b.srv, nil, bin, "gateway", "-control", api, "-token", gwToken, "-name", "ovpn-gw",
		"-state-dir", filepath.Join(t.TempDir(), "state"), "-listen", metricsAddr, "-stats-interval", "1s",
		"-openvpn-socket-dir", b.sockDir)

	// --explicit-exit-notify: a stopped client tells the server, which drops it at once
	// (without it the server notices only at its keepalive timeout).
	c := b.startClient(cnOne, udp, "--explicit-exit-notify", "2")
	c.wait(t)
	v4, v6 := c.tunAddrs(t)
	// Traffic through the tunnel, so both byte counters grow beyond the handshake.
	c.ns.Exec(t, "ping", "-c", "3", "-i", "0.2", "-W", "2", "198.51.100.1")

	list := func(query string) []ovpnSession {
		code, body := curlIn(t, b.srv, "GET", api+"/api/v1/sessions?"+query, admin)
		var out struct{ Sessions []ovpnSession }
		if err := json.Unmarshal([]byte(body), &out); code != 200 || err != nil {
			t.Fatalf("GET /api/v1/sessions?%s: %d %s (%v)", query, code, body, err)
		}
		return out.Sessions
	}
	var open ovpnSession
	e2e.Eventually(t, 30*time.Second, func() error {
		select {
		case <-gw.Done():
			t.Fatalf("gateway exited:\n%s", gw.Output())
		default:
		}
		ss := list("protocol=openvpn&state=open")
		if len(ss) != 1 {
			return fmt.Errorf("open openvpn sessions: %+v, want one", ss)
		}
		open = ss[0]
		if open.CommonName != cnOne || open.Process != "udp" || open.Gateway != "ovpn-gw" || open.Protocol != "openvpn" ||
			open.IPv4 != v4 || open.IPv6 != v6 || open.RxBytes == 0 || open.TxBytes == 0 {
			return fmt.Errorf("session %+v, want CN %s on udp via ovpn-gw with %s, %s and bytes both ways", open, cnOne, v4, v6)
		}
		return nil
	})
	if ss := list("protocol=wireguard"); len(ss) != 0 {
		t.Errorf("wireguard sessions: %+v, want none", ss)
	}

	code, metrics := curlIn(t, b.srv, "GET", "http://"+metricsAddr+"/metrics", "")
	if want := `wirefleet_openvpn_clients{process="udp"} 1`; code != 200 || !strings.Contains(metrics, want) {
		t.Errorf("gateway /metrics: %d, lacks %q:\n%s", code, want, metrics)
	}

	if err := c.proc.Stop(10 * time.Second); err != nil {
		t.Logf("client exit: %v", err)
	}
	e2e.Eventually(t, 30*time.Second, func() error {
		ss := list("protocol=openvpn&common_name=" + strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D").Replace(cnOne))
		if len(ss) != 1 || ss[0].ID != open.ID || ss[0].End == nil {
			return fmt.Errorf("sessions of %s: %+v, want the one session closed", cnOne, ss)
		}
		return nil
	})
}
