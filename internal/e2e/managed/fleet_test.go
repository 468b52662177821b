package managed

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
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

const (
	apiPort     = "8080"
	metricsAddr = "127.0.0.1:9586"
	tunNet4     = "198.18.50.0/24"
	tunGW4      = "198.18.50.1"
)

// nsClient is an HTTP client whose requests are made from inside ns. Entering a
// namespace from the test process itself is not an option: `ip netns pids` (used by every
// namespace's cleanup to kill what is left inside) would then list the test process. So
// each request re-executes the test binary inside ns (TestMain's proxy mode), which sends
// it and writes the response back.
func nsClient(t testing.TB, ns *testenv.NetNS) *http.Client {
	t.Helper()
	return &http.Client{Transport: nsTransport{ns}, Timeout: 30 * time.Second}
}

type nsTransport struct{ ns *testenv.NetNS }

func (tr nsTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var in bytes.Buffer
	if err := req.Write(&in); err != nil {
		return nil, err
	}
	if req.Body != nil {
		req.Body.Close()
	}
	cmd := tr.ns.Command(self)
	cmd.Env = append(os.Environ(), proxyEnv+"=1")
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("request from namespace %s: %v: %s", tr.ns.Name, err, stderr.String())
	}
	return http.ReadResponse(bufio.NewReader(bytes.NewReader(out)), req)
}

const proxyEnv = "WIREFLEET_E2E_NS_HTTP"

// TestMain runs the tests, or — re-executed by nsTransport inside a namespace — sends one
// HTTP request read from stdin and writes the response to stdout.
func TestMain(m *testing.M) {
	if os.Getenv(proxyEnv) == "1" {
		os.Exit(proxyOnce())
	}
	os.Exit(m.Run())
}

func proxyOnce() int {
	req, err := http.ReadRequest(bufio.NewReader(os.Stdin))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	req.RequestURI = ""
	req.URL.Scheme, req.URL.Host = "http", req.Host
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer resp.Body.Close()
	if err := resp.Write(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// fleet is the topology: srv (control plane), gw1 and gw2 (managed gateways), cli (a
// client host linked to both gateways).
type fleet struct {
	t        testing.TB
	bin      string
	srv, cli *testenv.NetNS
	gws      [2]*gatewayHost
	dataDir  string
	admin    string
	api      *http.Client
	server   *e2e.Process
	netPub   wirefleet.Key
	gwToken  string
}

type gatewayHost struct {
	ns       *testenv.NetNS
	dev      string
	stateDir string
	control  string // control plane address as seen from this gateway
	outer    string // the gateway's address on the client link
	proc     *e2e.Process
	http     *http.Client
	f        *fleet
}

func newFleet(t testing.TB) *fleet {
	t.Helper()
	testenv.Privileged(t, "wg", "wireguard-go", "ping")
	f := &fleet{t: t, bin: e2e.Binary(t)}
	f.srv = testenv.NewNetNS(t, "mgs")
	f.cli = testenv.NewNetNS(t, "mgc")
	for i := range f.gws {
		ns := testenv.NewNetNS(t, fmt.Sprintf("mg%d", i+1))
		sub := 101 + 2*i
		testenv.Link(t, f.srv, fmt.Sprintf("198.18.%d.1/24", sub), ns, fmt.Sprintf("198.18.%d.2/24", sub))
		testenv.Link(t, ns, fmt.Sprintf("198.18.%d.1/24", sub+1), f.cli, fmt.Sprintf("198.18.%d.2/24", sub+1))
		f.gws[i] = &gatewayHost{ns: ns, dev: testenv.UniqueName("wfm"), stateDir: t.TempDir(),
			control: fmt.Sprintf("http://198.18.%d.1:%s", sub, apiPort), outer: fmt.Sprintf("198.18.%d.1", sub+1),
			http: nsClient(t, ns), f: f}
	}
	f.api = nsClient(t, f.srv)
	f.dataDir = t.TempDir()
	out, err := exec.Command(f.bin, "token", "create", "-data", f.dataDir, "-role", "admin").Output()
	if err != nil {
		t.Fatalf("token create: %v", err)
	}
	f.admin = strings.TrimSpace(string(out))
	f.startServer()

	var n struct {
		PublicKey wirefleet.Key `json:"public_key"`
	}
	f.must("POST", "/api/v1/networks", map[string]any{"name": "corp", "ipv4": tunGW4 + "/24", "ipv6": "fd00:50::1/64"}, &n)
	f.netPub = n.PublicKey
	var tok struct {
		Secret string `json:"secret"`
	}
	f.must("POST", "/api/v1/tokens", map[string]any{"name": "gateways", "roles": []string{"gateway"}, "networks": []string{"corp"}}, &tok)
	f.gwToken = tok.Secret
	return f
}

func (f *fleet) startServer(extra ...string) {
	f.server = e2e.Start(f.t, f.srv, nil, f.bin, append([]string{"server", "-data", f.dataDir, "-listen", "0.0.0.0:" + apiPort, "-no-gateway"}, extra...)...)
	e2e.Eventually(f.t, 15*time.Second, func() error {
		code, _, err := f.call("GET", "/readyz", nil)
		if err == nil && code != 200 {
			err = fmt.Errorf("readyz %d", code)
		}
		return err
	})
}

func (f *fleet) stopServer() {
	if err := f.server.Stop(15 * time.Second); err != nil {
		f.t.Fatalf("server exit after SIGTERM: %v\n%s", err, f.server.Output())
	}
}

// call sends an API request from inside the server's namespace.
func (f *fleet) call(method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://198.18.101.1:"+apiPort+path, rd)
	req.Header.Set("Authorization", "Bearer "+f.admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.api.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func (f *fleet) must(method, path string, body, out any) {
	f.t.Helper()
	code, b, err := f.call(method, path, body)
	if err != nil || code/100 != 2 {
		f.t.Fatalf("%s %s: %d %v %s", method, path, code, err, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			f.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

func peerPath(k wirefleet.Key) string {
	return "/api/v1/networks/corp/peers/" + url.PathEscape(k.String())
}

type peer struct {
	PublicKey wirefleet.Key `json:"public_key"`
	Addresses []string      `json:"addresses"`
	Enabled   bool          `json:"enabled"`
	Expired   bool          `json:"expired"`
}

// addPeer creates a peer through the API and returns its private key and record.
func (f *fleet) addPeer() (wirefleet.Key, peer) {
	f.t.Helper()
	priv, _ := wirefleet.GeneratePrivateKey()
	var p peer
	f.must("POST", "/api/v1/networks/corp/peers", map[string]any{"public_key": priv.PublicKey(), "name": "e2e"}, &p)
	return priv, p
}

// activePeers lists the keys of enabled, unexpired peers through the API.
func (f *fleet) activePeers() map[string]bool {
	f.t.Helper()
	var list struct {
		Items []peer `json:"items"`
	}
	f.must("GET", "/api/v1/networks/corp/peers?limit=10000", nil, &list)
	out := map[string]bool{}
	for _, p := range list.Items {
		if p.Enabled && !p.Expired {
			out[p.PublicKey.String()] = true
		}
	}
	return out
}

func (g *gatewayHost) start(extra ...string) {
	f := g.f
	args := append([]string{"gateway", "-control", g.control, "-token", f.gwToken, "-network", "corp",
		"-wg-backend", "userspace", "-wg-device", g.dev, "-state-dir", g.stateDir, "-listen", metricsAddr,
		"-drift-interval", "2s", "-stats-interval", "1s"}, extra...)
	g.proc = e2e.Start(f.t, g.ns, nil, f.bin, args...)
	e2e.Eventually(f.t, 15*time.Second, func() error {
		_, err := os.Stat("/var/run/wireguard/" + g.dev + ".sock")
		return err
	})
}

// devicePeers reads the gateway's device with the stock wg tool.
func (g *gatewayHost) devicePeers() (map[string]string, error) {
	out, err := g.ns.Command("wg", "show", g.dev, "dump").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("wg show %s dump: %v: %s", g.dev, err, out)
	}
	peers := map[string]string{}
	for i, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Split(line, "\t")
		if i == 0 || len(fields) < 4 {
			continue
		}
		peers[fields[0]] = fields[3] // allowed IPs
	}
	return peers, nil
}

// converged waits until the device holds exactly want.
func (g *gatewayHost) converged(timeout time.Duration, want map[string]bool) {
	g.f.t.Helper()
	e2e.Eventually(g.f.t, timeout, func() error {
		got, err := g.devicePeers()
		if err != nil {
			return err
		}
		for k := range want {
			if _, ok := got[k]; !ok {
				return fmt.Errorf("%s: peer %s missing (%d on device, %d wanted)", g.dev, k, len(got), len(want))
			}
		}
		for k := range got {
			if !want[k] {
				return fmt.Errorf("%s: stray peer %s (%d on device, %d wanted)", g.dev, k, len(got), len(want))
			}
		}
		return nil
	})
}

// metric reads one sample of the gateway's /metrics (sum over matching label sets).
func (g *gatewayHost) metric(name string, labels ...string) (float64, error) {
	resp, err := g.http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return sample(b, name, labels...)
}

// serverMetric reads one sample of the control plane's /metrics.
func (f *fleet) serverMetric(name string, labels ...string) (float64, error) {
	code, b, err := f.call("GET", "/metrics", nil)
	if err == nil && code != 200 {
		err = fmt.Errorf("GET /metrics: %d", code)
	}
	if err != nil {
		return 0, err
	}
	return sample(b, name, labels...)
}

// headSeq reads the control plane's log head.
func (f *fleet) headSeq() float64 {
	f.t.Helper()
	seq, err := f.serverMetric("wirefleet_log_seq")
	if err != nil {
		f.t.Fatal(err)
	}
	return seq
}

// sample sums the samples of name whose label set contains every one of labels in a
// Prometheus text exposition.
func sample(exposition []byte, name string, labels ...string) (float64, error) {
	sum, found := 0.0, false
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(\{[^}]*\})? (\S+)$`)
	for _, m := range re.FindAllStringSubmatch(string(exposition), -1) {
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(m[1], l)
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			return 0, err
		}
		sum, found = sum+v, true
	}
	if !found {
		return 0, fmt.Errorf("no %s%v in /metrics", name, labels)
	}
	return sum, nil
}

// clientHost is a WireGuard client made with the stock tools.
type clientHost struct {
	ns   *testenv.NetNS
	dev  string
	f    *fleet
	priv wirefleet.Key
}

// newClient brings up a client for peer p (private key priv) through gateway gw.
func (f *fleet) newClient(priv wirefleet.Key, p peer, gw int) *clientHost {
	f.t.Helper()
	c := &clientHost{ns: f.cli, dev: testenv.UniqueName("wfc"), f: f, priv: priv}
	e2e.Start(f.t, f.cli, []string{"WG_PROCESS_FOREGROUND=1", "LOG_LEVEL=error"}, "wireguard-go", c.dev)
	e2e.Eventually(f.t, 10*time.Second, func() error { _, err := os.Stat("/var/run/wireguard/" + c.dev + ".sock"); return err })
	keyFile := filepath.Join(f.t.TempDir(), "client.key")
	if err := os.WriteFile(keyFile, []byte(priv.String()+"\n"), 0o600); err != nil {
		f.t.Fatal(err)
	}
	f.cli.Exec(f.t, "wg", "set", c.dev, "private-key", keyFile, "peer", f.netPub.String(),
		"endpoint", f.gws[gw].outer+":51820", "allowed-ips", tunNet4, "persistent-keepalive", "1")
	for _, a := range p.Addresses {
		if !strings.Contains(a, ":") {
			f.cli.Exec(f.t, "ip", "addr", "add", a+"/24", "dev", c.dev)
		}
	}
	f.cli.Exec(f.t, "ip", "link", "set", c.dev, "up")
	return c
}

// via points the client at another gateway (same network key, same tunnel address).
func (c *clientHost) via(gw int) {
	c.f.cli.Exec(c.f.t, "wg", "set", c.dev, "peer", c.f.netPub.String(), "endpoint", c.f.gws[gw].outer+":51820")
}

// ping reports whether the gateway's tunnel address answers through the tunnel.
func (c *clientHost) ping() error {
	out, err := c.ns.Command("ping", "-c", "1", "-W", "1", tunGW4).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ping %s through the tunnel: %v: %s", tunGW4, err, out)
	}
	return nil
}

// pingFails waits until pings stop getting through (a removed peer).
func (c *clientHost) pingFails(timeout time.Duration) {
	c.f.t.Helper()
	e2e.Eventually(c.f.t, timeout, func() error {
		// Three misses in a row: one lost packet is not a closed tunnel.
		for range 3 {
			if c.ping() != nil {
				continue
			}
			return fmt.Errorf("ping still answered")
		}
		return nil
	})
}

func newKey() (wirefleet.Key, error) { return wirefleet.GeneratePrivateKey() }

func escape(k string) string { return url.PathEscape(k) }
