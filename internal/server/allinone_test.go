package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/gateway"
	"github.com/wirefleet/wirefleet/internal/testenv"
	"github.com/wirefleet/wirefleet/internal/wgdev"
	"github.com/wirefleet/wirefleet/internal/wgdev/auto"
	"github.com/wirefleet/wirefleet/internal/wgdev/wgdevtest"
)

// allInOne runs the all-in-one server on dir with in-memory devices for the local
// gateway (the real devices are exercised by the privileged tests in internal/e2e/managed).
type allInOne struct {
	t      testing.TB
	addr   string
	out    *testenv.Buffer
	logs   *testenv.Buffer
	cancel context.CancelFunc
	done   chan error
}

type memDevices struct {
	mu   sync.Mutex
	devs map[string]*wgdevtest.Memory
}

func (m *memDevices) open(ctx context.Context, c auto.Config) (wgdev.Device, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.devs[c.Name]
	if !ok {
		d = wgdevtest.NewMemory(c.Name)
		m.devs[c.Name] = d
	}
	return d, d.Configure(ctx, wgdev.Interface{PrivateKey: &c.PrivateKey, ListenPort: &c.ListenPort, Addresses: c.Addresses, MTU: c.MTU})
}

func (m *memDevices) get(name string) *wgdevtest.Memory {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.devs[name]
}

func startAllInOne(t *testing.T, dir string, devs *memDevices) *allInOne {
	s := &allInOne{t: t, out: &testenv.Buffer{}, logs: &testenv.Buffer{}, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	cfg := Config{DataDir: dir, Listen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(s.logs, nil)),
		AllInOne: AllInOne{
			DefaultIPv4: netip.MustParsePrefix("198.18.44.1/24"), DefaultIPv6: netip.MustParsePrefix("fd00:44::1/64"),
			StatsInterval: 50 * time.Millisecond, DriftInterval: time.Hour, SessionInactivity: time.Minute,
			Heartbeat: 100 * time.Millisecond, Out: s.out, OpenDevice: devs.open,
			probe: fixedProbe("203.0.113.80", "", "vpn1", nil),
		}}
	go func() { s.done <- Run(ctx, cfg) }()
	re := regexp.MustCompile(`control plane listening" addr=(\S+)`)
	for deadline := time.Now().Add(10 * time.Second); s.addr == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(s.logs.String()); m != nil {
			s.addr = m[1]
		}
	}
	if s.addr == "" {
		t.Fatalf("no listening line in %q", s.logs.String())
	}
	t.Cleanup(s.stop)
	return s
}

func (s *allInOne) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.done:
		if err != nil {
			s.t.Errorf("Run returned %v", err)
		}
	case <-time.After(20 * time.Second):
		s.t.Fatal("Run did not stop")
	}
}

func (s *allInOne) do(method, path, token string, body any) (int, []byte) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+s.addr+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !f(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func hasPeer(d *wgdevtest.Memory, k wirefleet.Key) bool {
	if d == nil {
		return false
	}
	ps, _ := d.Peers(context.Background())
	for _, p := range ps {
		if p.PublicKey == k {
			return true
		}
	}
	return false
}

func TestAllInOneFirstRunLocalGatewaySessions(t *testing.T) {
	dir := t.TempDir()
	devs := &memDevices{devs: map[string]*wgdevtest.Memory{}}
	s := startAllInOne(t, dir, devs)
	m := regexp.MustCompile(`Admin token \(shown once, keep it\): (wft_\S+)`).FindStringSubmatch(s.out.String())
	if m == nil {
		t.Fatalf("no admin token printed: %q", s.out.String())
	}
	admin := m[1]
	if strings.Contains(s.logs.String(), admin) {
		t.Error("the admin token is in the log")
	}
	// No -default-endpoint: the host's primary address, said on stdout and in the log.
	if !strings.Contains(s.out.String(), "clients dial 203.0.113.80:51820") || !strings.Contains(s.logs.String(), "why=\"the source address of this host's IPv4 route to the internet (public)\"") {
		t.Errorf("first run did not pick and explain the endpoint:\n%s\n%s", s.out.String(), s.logs.String())
	}
	var def struct{ Endpoint string }
	if code, body := s.do("GET", "/api/v1/networks/default", admin, nil); code != 200 || json.Unmarshal(body, &def) != nil || def.Endpoint != "203.0.113.80" {
		t.Errorf("default network: %d %s", code, body)
	}
	waitFor(t, "the default network's device", func() bool { return devs.get(gateway.InterfaceName(DefaultNetworkName)) != nil })
	info, _ := devs.get(gateway.InterfaceName(DefaultNetworkName)).Info(context.Background())
	if info.ListenPort != 51820 || len(info.Addresses) != 2 || info.Addresses[0] != netip.MustParsePrefix("198.18.44.1/24") {
		t.Errorf("default network device: %+v", info)
	}

	priv, _ := wirefleet.GeneratePrivateKey()
	pub := priv.PublicKey()
	code, body := s.do("POST", "/api/v1/networks/default/peers", admin, map[string]any{"public_key": pub, "name": "phone"})
	if code != 201 && code != 200 {
		t.Fatalf("create peer: %d %s", code, body)
	}
	d := devs.get(gateway.InterfaceName(DefaultNetworkName))
	waitFor(t, "the peer on the local gateway", func() bool { return hasPeer(d, pub) })

	// The device reports a handshake: the local gateway pushes stats, a session opens.
	d.SetStats(pub, time.Now(), 1000, 2000)
	waitFor(t, "a session", func() bool {
		code, body := s.do("GET", "/api/v1/sessions?network=default&state=open", admin, nil)
		return code == 200 && strings.Contains(string(body), pub.String())
	})
	if code, _ := s.do("GET", "/api/v1/sessions", "wft_nobody_x", nil); code != 401 {
		t.Errorf("sessions without a valid token: %d", code)
	}

	code, body = s.do("POST", "/api/v1/networks/default/peers/"+strings.NewReplacer("/", "%2F", "+", "%2B").Replace(pub.String())+"/disable", admin, nil)
	if code != 200 {
		t.Fatalf("disable: %d %s", code, body)
	}
	waitFor(t, "the disabled peer to leave the device", func() bool { return !hasPeer(d, pub) })

	resp, err := http.Get("http://" + s.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range []string{"wirefleet_log_seq", "wirefleet_replication_streams{role=\"gateway\"} 1", `wirefleet_api_request_duration_seconds_bucket{code="2xx",method="POST",route="POST /api/v1/networks/{network}/peers"`, "wirefleet_gateways_connected 1"} {
		if !strings.Contains(string(mb), name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}

	// Restart: no second admin token, the gateway resumes from its saved position.
	s.stop()
	s2 := startAllInOne(t, dir, devs)
	waitFor(t, "the local gateway to resume", func() bool {
		return strings.Contains(s2.logs.String(), "replication: streaming")
	})
	if strings.Contains(s2.out.String(), "Admin token") {
		t.Error("an admin token was printed on a second run")
	}
	if !regexp.MustCompile(`resume_after=[1-9]`).MatchString(s2.logs.String()) || strings.Contains(s2.logs.String(), "snapshot loaded") {
		t.Errorf("the local gateway did not resume from its saved state:\n%s", s2.logs.String())
	}
	fmt.Fprint(io.Discard, s2.addr)
}
