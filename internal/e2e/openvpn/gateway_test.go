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

// gatewayProc is `wirefleet gateway` in the OpenVPN servers' namespace, its vpn-daemon
// API on loopback there, reading the same socket directory.
type gatewayProc struct {
	ns       *testenv.NetNS
	addr     string
	lastTook time.Duration // of the last request, as curl measured it
}

func startGateway(t *testing.T, b *bench) *gatewayProc {
	t.Helper()
	g := &gatewayProc{ns: b.srv, addr: "127.0.0.1:41194"}
	state := filepath.Join(t.TempDir(), "state")
	p := e2e.Start(t, b.srv, nil, e2e.Binary(t), "gateway",
		"-wg-device", testenv.UniqueName("wfo"), "-wg-backend", "userspace", "-wg-port", "51820",
		"-wg-address", "198.18.7.1/24", "-wg-address", "fd00:7::1/64",
		"-listen", g.addr, "-state-dir", state, "-openvpn-socket-dir", b.sockDir)
	e2e.Eventually(t, 20*time.Second, func() error {
		select {
		case <-p.Done():
			t.Fatalf("gateway exited:\n%s", p.Output())
		default:
		}
		if code, _, err := g.try("GET", "/i/node", ""); err != nil || code != 200 {
			return fmt.Errorf("/i/node: %d %v", code, err)
		}
		return nil
	})
	return g
}

// try sends a request with curl inside the namespace, as a portal would (no User-Agent).
func (g *gatewayProc) try(method, path, form string) (int, string, error) {
	args := []string{"netns", "exec", g.ns.Name, "curl", "-sS", "-H", "User-Agent:", "-X", method,
		"-w", "\n%{http_code} %{time_total}", "--max-time", "10"}
	if form != "" {
		args = append(args, "-H", "Content-Type: application/x-www-form-urlencoded", "--data-raw", form)
	}
	args = append(args, "http://"+g.addr+path)
	b, err := exec.Command("ip", args...).CombinedOutput()
	out := string(b)
	if err != nil {
		return 0, "", fmt.Errorf("curl %s %s: %v: %s", method, path, err, out)
	}
	i := strings.LastIndex(out, "\n")
	var code int
	var secs float64
	if _, err := fmt.Sscanf(out[i+1:], "%d %g", &code, &secs); err != nil {
		return 0, "", fmt.Errorf("curl output %q: %v", out, err)
	}
	g.lastTook = time.Duration(secs * float64(time.Second))
	return code, out[:i], nil
}

func (g *gatewayProc) request(t *testing.T, method, path, form string) (int, string, time.Duration) {
	t.Helper()
	code, body, err := g.try(method, path, form)
	if err != nil {
		t.Fatal(err)
	}
	return code, body, g.lastTook
}

func (g *gatewayProc) connectionList(t *testing.T) ([]entry, time.Duration) {
	t.Helper()
	code, body, took := g.request(t, "GET", "/o/connection_list", "")
	var out struct {
		ConnectionList []entry `json:"connection_list"`
	}
	if err := json.Unmarshal([]byte(body), &out); code != 200 || err != nil || out.ConnectionList == nil {
		t.Fatalf("connection_list: %d %s (%v)", code, body, err)
	}
	return sorted(out.ConnectionList), took
}
