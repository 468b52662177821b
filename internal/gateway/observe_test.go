package gateway

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/sessions"
)

func httpGet(t *testing.T, u string) (int, string) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// staleSocket leaves a socket file nobody listens on (a stopped OpenVPN process).
func staleSocket(t *testing.T, path string) {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
}

// TestStandaloneObservability: the standalone gateway serves /metrics (WireGuard peers
// and OpenVPN processes), /healthz and /readyz on the vpn-daemon listener, and the
// vpn-daemon paths are unchanged (a doubled slash is still served, not redirected).
func TestStandaloneObservability(t *testing.T) {
	dir := t.TempDir()
	serveMgmt(t, filepath.Join(dir, "server-udp.sock"), false, mgmtStatus)
	staleSocket(t, filepath.Join(dir, "server-tcp.sock"))
	addr, _, _ := startGateway(t, func(c *Config) { c.OpenVPNSocketDir = dir })
	base := "http://" + addr
	pub := "kNLsIjAxQ8w3PWgj+Bx8mDComLFPKgCrxPvvq0Lsq2s="
	resp, err := http.PostForm(base+"/w/add_peer", url.Values{"public_key": {pub}, "ip_net": {"198.51.100.9/32"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("add_peer: %d", resp.StatusCode)
	}
	code, body := httpGet(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	for _, want := range []string{
		`wirefleet_openvpn_up{process="server-udp"} 1`,
		`wirefleet_openvpn_up{process="server-tcp"} 0`,
		`wirefleet_openvpn_clients{process="server-udp"} 2`,
		`wirefleet_openvpn_client_received_bytes_total{client_id="3",common_name="YrAoH/x5dIyS2EiWOtRldUTg2WV9q9zV5evkaNkLN0E=",process="server-udp"} 1000`,
		`wirefleet_openvpn_management_errors_total{op="status",process="server-tcp"} 1`,
		`wirefleet_peer_receive_bytes_total{network="wgtest",public_key="` + pub + `"} 0`,
		`wirefleet_peer_last_handshake_seconds{network="wgtest",public_key="` + pub + `"} 0`,
		`go_goroutines `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, tt := range []struct {
		path string
		code int
	}{{"/healthz", 200}, {"/readyz", 200}, {"/i/node", 200}, {"//i/node", 200}, {"/nope", 404}} {
		if code, body := httpGet(t, base+tt.path); code != tt.code {
			t.Errorf("GET %s: %d %s, want %d", tt.path, code, body, tt.code)
		}
	}
	resp, err = http.Post(base+"/metrics", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics: %d, want 405", resp.StatusCode)
	}
}

// TestStatsPushCarriesOpenVPN: the first batch of a push carries every OpenVPN client
// (UNDEF left out) and the processes that did not answer; later batches carry none; the
// control plane's parser accepts it and makes openvpn sessions of it.
func TestStatsPushCarriesOpenVPN(t *testing.T) {
	dir := t.TempDir()
	serveMgmt(t, filepath.Join(dir, "server-udp.sock"), false, mgmtStatus)
	staleSocket(t, filepath.Join(dir, "server-tcp.sock"))
	var (
		mu      sync.Mutex
		reports []sessions.Report
	)
	tracker := sessions.New(sessions.Config{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rep, err := sessions.ParseReport(b)
		if err != nil || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, err.Error(), 400)
			return
		}
		mu.Lock()
		reports = append(reports, rep)
		mu.Unlock()
		tracker.Ingest(rep, nil)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	log := slog.New(slog.DiscardHandler)
	p := statsPusher{url: srv.URL + sessions.StatsPath, token: "tok", name: "gw1", client: srv.Client(), log: log, ovpn: newFleet(dir, log)}
	var ov openVPNStats
	ov.clients, ov.unreachable, ov.reported = openVPNReport(context.Background(), p.ovpn)
	peers := make([]sessions.PeerStats, statsBatch+1)
	for i := range peers {
		var k wirefleet.Key
		k[0], k[1] = byte(i), byte(i>>8)
		k[2] = 1
		peers[i] = sessions.PeerStats{Network: "a", PublicKey: k}
	}
	if err := p.push(context.Background(), peers, ov); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := reports
	reports = nil
	mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("%d requests, want 2 batches", len(got))
	}
	since := time.Unix(1795453200, 0).UTC()
	want := []sessions.OpenVPNClient{
		{Process: "server-udp", CommonName: "YrAoH/x5dIyS2EiWOtRldUTg2WV9q9zV5evkaNkLN0E=", IPv4: "198.51.100.3", IPv6: "2001:db8:1::3",
			BytesReceived: 1000, BytesSent: 2000, ConnectedSince: since, Endpoint: "192.0.2.3:40002"},
		{Process: "server-udp", CommonName: "only-v4", IPv4: "198.51.100.4", BytesReceived: 5, BytesSent: 6, ConnectedSince: since, Endpoint: "192.0.2.4:40003"},
	}
	if diff := cmp.Diff(want, got[0].OpenVPN); diff != "" {
		t.Errorf("first batch's openvpn (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"server-tcp"}, got[0].OpenVPNUnreachable); diff != "" {
		t.Errorf("unreachable (-want +got):\n%s", diff)
	}
	if got[1].OpenVPN != nil || len(got[1].Peers) != 1 {
		t.Errorf("second batch: %d peers, openvpn %v; want 1 peer and no openvpn", len(got[1].Peers), got[1].OpenVPN)
	}
	if got := tracker.List(sessions.Filter{Protocol: sessions.ProtocolOpenVPN}); len(got) != 2 || got[0].Gateway != "gw1" {
		t.Errorf("openvpn sessions on the control plane: %+v", got)
	}

	// Without the OpenVPN bridge nothing is reported (not even an empty list).
	err := p.push(context.Background(), nil, openVPNStats{})
	mu.Lock()
	defer mu.Unlock()
	if err != nil || len(reports) != 1 || reports[0].OpenVPN != nil {
		t.Errorf("push without OpenVPN: %v %+v", err, reports)
	}
}

// TestManagedMetricsIncludeOpenVPN: a managed gateway with an OpenVPN socket directory
// registers the OpenVPN collector, and serves its metrics while the control plane is
// away.
func TestManagedMetricsIncludeOpenVPN(t *testing.T) {
	dir := t.TempDir()
	serveMgmt(t, filepath.Join(dir, "server-udp.sock"), false, mgmtStatus)
	addrc := make(chan net.Addr, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- RunManaged(ctx, Managed{ControlURL: "http://127.0.0.1:1", Token: "t", Backend: "userspace",
			StateDir: t.TempDir(), Listen: "127.0.0.1:0", StatsInterval: time.Hour, OpenVPNSocketDir: dir,
			Logger: slog.New(slog.DiscardHandler), Ready: func(a net.Addr) { addrc <- a }})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	var addr net.Addr
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("RunManaged: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("metrics listener not ready")
	}
	code, body := httpGet(t, "http://"+addr.String()+"/metrics")
	if code != 200 || !strings.Contains(body, `wirefleet_openvpn_clients{process="server-udp"} 2`) {
		t.Errorf("/metrics: %d, want wirefleet_openvpn_clients of server-udp:\n%s", code, body)
	}
}
