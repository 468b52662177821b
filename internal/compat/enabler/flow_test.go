package enabler_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/compat/enabler"
	"github.com/wirefleet/wirefleet/internal/control"
	"github.com/wirefleet/wirefleet/internal/store/sqlite"
	"github.com/wirefleet/wirefleet/internal/testenv"
	"github.com/wirefleet/wirefleet/internal/wgdev"
	"github.com/wirefleet/wirefleet/internal/wgdev/userspace"
	"github.com/wirefleet/wirefleet/internal/wgdev/wgdevtest"
)

// deviceOpener opens the device of one "process lifetime" of the enabler; a restart opens
// a new one, as a restarted container gets a fresh interface.
type deviceOpener func(t *testing.T, n wirefleet.Network) wgdev.Device

// stack is one run of the enabler on a real SQLite store in dir: the real control.Service,
// the local gateway and the HTTP facade behind a real TCP listener.
type stack struct {
	t       *testing.T
	dir     string
	network string
	open    deviceOpener
	st      *sqlite.Store
	svc     *control.Service
	dev     wgdev.Device
	gw      *enabler.LocalGateway
	srv     *httptest.Server
	cancel  context.CancelFunc
	done    chan struct{}
}

func startStack(t *testing.T, dir, subnet string, open deviceOpener) *stack {
	t.Helper()
	s := &stack{t: t, dir: dir, network: "wg0", open: open}
	st, svc, n := openStore(t, dir, subnet)
	s.st, s.svc = st, svc
	ctx := context.Background()
	s.dev = open(t, n)
	s.gw = enabler.NewLocalGateway(s.svc, s.dev, s.network, nil)
	if _, err := s.gw.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	s.cancel, s.done = cancel, make(chan struct{})
	go func() { defer close(s.done); _ = s.gw.Run(rctx) }()
	h := enabler.New(enabler.Config{Network: s.network, ServerIP: "vpn.example.test", ServerPort: "51820", AllowedIPs: "0.0.0.0/0,::/0"}, s.svc, s.gw, s.dev)
	s.srv = httptest.NewServer(h)
	t.Cleanup(s.stop)
	return s
}

// stop ends this run (idempotent): server, gateway loop, device, store.
func (s *stack) stop() {
	if s.srv == nil {
		return
	}
	s.srv.Close()
	s.cancel()
	<-s.done
	_ = s.dev.Close()
	_ = s.st.Close()
	s.srv = nil
}

func (s *stack) restart() *stack {
	s.stop()
	return startStack(s.t, s.dir, "", s.open)
}

// openStore opens the real SQLite store in dir with the real service layer, creating the
// network wg0 on subnet unless it exists.
func openStore(tb testing.TB, dir, subnet string) (*sqlite.Store, *control.Service, wirefleet.Network) {
	tb.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "wirefleet.db"), sqlite.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	svc := control.New(st, control.Options{})
	n, err := svc.GetNetwork(ctx, "wg0")
	if wirefleet.IsKind(err, wirefleet.KindNotFound) {
		ka := 25
		n, err = svc.CreateNetwork(ctx, control.NetworkInput{Name: "wg0", IPv4: netip.MustParsePrefix(subnet),
			Keepalive: &ka, Allocation: wirefleet.AllocRandom})
	}
	if err != nil {
		_ = st.Close()
		tb.Fatal(err)
	}
	return st, svc, n
}

type reply struct {
	Status int
	Body   string
}

func (s *stack) call(method, path, body string) reply {
	s.t.Helper()
	req, err := http.NewRequest(method, s.srv.URL+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, string(b)}
}

type keySet struct{ Public, Private, Preshared string }

func (s *stack) keys() keySet {
	s.t.Helper()
	r := s.call("GET", "/keys", "")
	var k keySet
	if r.Status != 200 || json.Unmarshal([]byte(r.Body), &k) != nil {
		s.t.Fatalf("GET /keys: %+v", r)
	}
	return k
}

type created struct {
	ServerPublicKey, ServerIP, ServerPort, ClientIP, AllowedIPs, Message string
}

// create posts a client; psk is the raw JSON of presharedKey ("" = omitted).
func (s *stack) create(pub, psk string) (reply, created) {
	s.t.Helper()
	body := `{"publicKey":"` + pub + `"`
	if psk != "" {
		body += `,"presharedKey":` + psk
	}
	r := s.call("POST", "/client", body+"}")
	var c created
	if r.Status == 200 {
		if err := json.Unmarshal([]byte(r.Body), &c); err != nil {
			s.t.Fatalf("POST /client answer %q: %v", r.Body, err)
		}
	}
	return r, c
}

func (s *stack) devicePeers() map[string]wgdev.Peer {
	s.t.Helper()
	ps, err := s.dev.Peers(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	m := map[string]wgdev.Peer{}
	for _, p := range ps {
		m[p.PublicKey.String()] = p.Peer
	}
	return m
}

func msg(m string) string {
	b, _ := json.Marshal(map[string]string{"message": m})
	return string(b)
}

// memoryDevice is for the unprivileged pass only: the store, the service and HTTP are real,
// the device is the in-memory fake; TestFlowUserspace runs the same flow on a real device.
func memoryDevice(_ *testing.T, n wirefleet.Network) wgdev.Device {
	d := wgdevtest.NewMemory("wg0")
	_ = d.Configure(context.Background(), wgdev.Interface{PrivateKey: new(n.PrivateKey.Reveal()), Addresses: []netip.Prefix{n.IPv4}})
	return d
}

// TestFlowSQLite is the spec's whole flow over HTTP on the real service layer and SQLite.
func TestFlowSQLite(t *testing.T) {
	runFlow(t, memoryDevice)
}

// TestFlowUserspace is the same flow on a real userspace WireGuard device (TUN, embedded
// wireguard-go) in its own namespace, and checks /info and /info/conf against the stock wg.
func TestFlowUserspace(t *testing.T) {
	testenv.Privileged(t, "wg")
	ns := testenv.NewNetNS(t, "enf")
	name := testenv.UniqueName("wgef")
	open := func(t *testing.T, n wirefleet.Network) wgdev.Device {
		d, err := userspace.Open(context.Background(), userspace.Config{Name: name, ListenPort: 0, PrivateKey: n.PrivateKey.Reveal(),
			Addresses: []netip.Prefix{n.IPv4}, NetNS: ns.Name})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	s := runFlow(t, open)
	// /info is exactly `wg show`, /info/conf is `wg showconf` minus every secret. Counters
	// and "ago" can move between the two reads: retry a few times.
	// wireguard-go lists peers in Go map order, so `wg show` itself orders peers with equal
	// handshakes differently from one call to the next: compare the peer blocks as a set
	// (none of these peers has a handshake), the interface block exactly.
	check := func(path string, want func() string) {
		t.Helper()
		var got, exp []string
		for range 5 {
			exp = blocks(want())
			got = blocks(s.call("GET", path, "").Body)
			if cmp.Equal(exp, got) {
				return
			}
			time.Sleep(300 * time.Millisecond)
		}
		t.Errorf("GET %s differs from wg (-wg +enabler):\n%s", path, cmp.Diff(exp, got))
	}
	check("/info", func() string { return ns.Exec(t, "wg", "show", name) })
	check("/info/conf", func() string {
		var keep []string
		for _, l := range strings.SplitAfter(ns.Exec(t, "wg", "showconf", name), "\n") {
			if !strings.HasPrefix(l, "PrivateKey = ") && !strings.HasPrefix(l, "PresharedKey = ") {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "")
	})
	// /info/conf is still valid input for wg addconf (applied to the same device: a no-op).
	confFile := filepath.Join(t.TempDir(), "conf")
	if err := os.WriteFile(confFile, []byte(s.call("GET", "/info/conf", "").Body), 0o600); err != nil {
		t.Fatal(err)
	}
	before := ns.Exec(t, "wg", "show", name, "allowed-ips")
	ns.Exec(t, "wg", "addconf", name, confFile)
	lines := func(s string) []string { l := strings.Split(s, "\n"); slices.Sort(l); return l }
	if after := ns.Exec(t, "wg", "show", name, "allowed-ips"); !cmp.Equal(lines(before), lines(after)) {
		t.Errorf("wg addconf of /info/conf changed the peers:\n%s\n%s", before, after)
	}
}

func runFlow(t *testing.T, open deviceOpener) *stack {
	dir := t.TempDir()
	s := startStack(t, dir, "198.51.100.1/29", open) // 8 - 3 = 5 clients: .2 to .6
	n, err := s.svc.GetNetwork(context.Background(), "wg0")
	if err != nil {
		t.Fatal(err)
	}
	ks := make([]keySet, 7)
	for i := range ks {
		ks[i] = s.keys()
	}
	usable := map[string]bool{}
	for _, a := range []string{"2", "3", "4", "5", "6"} {
		usable["198.51.100."+a+"/32"] = true
	}

	// Create: with a preshared key, without (omitted, null, "").
	r, c := s.create(ks[0].Public, `"`+ks[0].Preshared+`"`)
	want := created{n.PublicKey.String(), "vpn.example.test", "51820", c.ClientIP, "0.0.0.0/0,::/0", "Peer added successfully"}
	if r.Status != 200 || !cmp.Equal(want, c) || !usable[c.ClientIP] || !strings.Contains(r.Body, `"serverPort":"51820"`) {
		t.Fatalf("create: %+v %+v", r, c)
	}
	addr0 := c.ClientIP
	if diff := cmp.Diff(reply{400, msg("The client with public key " + ks[0].Public + " exists")}, first(s.create(ks[0].Public, ""))); diff != "" {
		t.Errorf("duplicate (-want +got):\n%s", diff)
	}
	seen := map[string]bool{addr0: true}
	for i, psk := range []string{"", "null", `""`, `"` + ks[4].Preshared + `"`} {
		r, c := s.create(ks[i+1].Public, psk)
		if r.Status != 200 || !usable[c.ClientIP] || seen[c.ClientIP] {
			t.Fatalf("create %d: %+v %+v (seen %v)", i+1, r, c, seen)
		}
		seen[c.ClientIP] = true
	}
	dp := s.devicePeers()
	psk0 := wirefleet.MustParseKey(ks[0].Preshared)
	if p := dp[ks[0].Public]; p.PresharedKey == nil || *p.PresharedKey != psk0 || p.PersistentKeepalive != 25*time.Second ||
		len(p.AllowedIPs) != 1 || p.AllowedIPs[0].String() != addr0 {
		t.Errorf("device peer 0 = %+v, want psk, keepalive 25, %s", p, addr0)
	}
	if p := dp[ks[1].Public]; p.PresharedKey != nil && !p.PresharedKey.IsZero() {
		t.Errorf("client created without preshared key has one on the device")
	}
	// Capacity exhaustion on the /29.
	capacity := reply{400, msg("Maximum number of clients reached. Not possible no add a new client")}
	if diff := cmp.Diff(capacity, first(s.create(ks[5].Public, ""))); diff != "" {
		t.Errorf("capacity (-want +got):\n%s", diff)
	}
	// Disable keeps the address reserved.
	if diff := cmp.Diff(reply{204, ""}, s.call("PUT", "/client/disable", `{"publicKey":"`+ks[0].Public+`"}`)); diff != "" {
		t.Errorf("disable (-want +got):\n%s", diff)
	}
	if _, on := s.devicePeers()[ks[0].Public]; on {
		t.Error("disabled client still on the device")
	}
	if diff := cmp.Diff(capacity, first(s.create(ks[5].Public, ""))); diff != "" {
		t.Errorf("capacity with a disabled client (-want +got):\n%s", diff)
	}
	// Shell metacharacters: rejected as invalid keys, nothing executed, nothing stored.
	canary := filepath.Join(t.TempDir(), "canary")
	for _, evil := range []string{
		ks[5].Public + `; touch ` + canary + ` #`,
		`$(touch ` + canary + `)`,
		"`touch " + canary + "`",
		ks[5].Public + ` peer ` + ks[1].Public + ` remove`,
	} {
		body, _ := json.Marshal(map[string]string{"publicKey": evil, "presharedKey": `"; touch ` + canary + ` #`})
		r := s.call("POST", "/client", string(body))
		if r.Status != 400 || !strings.Contains(r.Body, "The public key is invalid") {
			t.Errorf("key %q: %+v", evil, r)
		}
		if r := s.call("DELETE", "/client", `{"publicKey":`+string(mustJSON(evil))+`}`); r.Status != 400 {
			t.Errorf("delete with key %q: %+v", evil, r)
		}
	}
	if _, err := os.Stat(canary); err == nil {
		t.Fatal("a command ran: the canary file exists")
	}
	if _, on := s.devicePeers()[ks[1].Public]; !on {
		t.Error("an injected 'remove' took another client off the device")
	}

	// Restart: every enabled client is restored, the disabled one is not.
	s = s.restart()
	dp = s.devicePeers()
	for i := 1; i <= 4; i++ {
		if _, on := dp[ks[i].Public]; !on {
			t.Errorf("client %d not restored after restart", i)
		}
	}
	if _, on := dp[ks[0].Public]; on {
		t.Error("disabled client restored after restart")
	}
	// Enable (twice: idempotent) gives the client back its address and preshared key.
	for range 2 {
		if diff := cmp.Diff(reply{204, ""}, s.call("PUT", "/client/enable", `{"publicKey":"`+ks[0].Public+`"}`)); diff != "" {
			t.Errorf("enable (-want +got):\n%s", diff)
		}
	}
	if p := s.devicePeers()[ks[0].Public]; p.PresharedKey == nil || *p.PresharedKey != psk0 || len(p.AllowedIPs) != 1 || p.AllowedIPs[0].String() != addr0 {
		t.Errorf("re-enabled client on the device: %+v, want %s with its preshared key", p, addr0)
	}
	// Delete frees the address for the next client; a disabled client can be deleted too.
	peer1, err := s.svc.GetPeer(context.Background(), "wg0", wirefleet.MustParseKey(ks[1].Public))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(reply{200, ""}, s.call("DELETE", "/client", `{"publicKey":"`+ks[1].Public+`"}`)); diff != "" {
		t.Errorf("delete (-want +got):\n%s", diff)
	}
	if _, on := s.devicePeers()[ks[1].Public]; on {
		t.Error("deleted client still on the device")
	}
	r, c = s.create(ks[5].Public, "")
	if r.Status != 200 || c.ClientIP != netip.PrefixFrom(peer1.Addresses[0], 32).String() {
		t.Errorf("create after delete: %+v %+v, want the freed %s", r, c, peer1.Addresses[0])
	}
	s.call("PUT", "/client/disable", `{"publicKey":"`+ks[2].Public+`"}`)
	if diff := cmp.Diff(reply{200, ""}, s.call("DELETE", "/client", `{"publicKey":"`+ks[2].Public+`"}`)); diff != "" {
		t.Errorf("delete a disabled client (-want +got):\n%s", diff)
	}
	for _, path := range []string{"/client", "/client/enable", "/client/disable"} {
		method := map[string]string{"/client": "DELETE"}[path]
		if method == "" {
			method = "PUT"
		}
		if diff := cmp.Diff(reply{400, msg("Client with public key " + ks[2].Public + " not found")}, s.call(method, path, `{"publicKey":"`+ks[2].Public+`"}`)); diff != "" {
			t.Errorf("%s %s of a deleted client (-want +got):\n%s", method, path, diff)
		}
	}
	// Clients are ordinary peers of the network.
	page, err := s.svc.ListPeers(context.Background(), control.PeerFilter{Network: "wg0"})
	if err != nil {
		t.Fatal(err)
	}
	var stored []string
	for _, p := range page.Peers {
		stored = append(stored, p.PublicKey.String())
	}
	wantStored := []string{ks[0].Public, ks[3].Public, ks[4].Public, ks[5].Public}
	slices.Sort(stored)
	slices.Sort(wantStored)
	if diff := cmp.Diff(wantStored, stored); diff != "" {
		t.Errorf("stored peers (-want +got):\n%s", diff)
	}
	// /info/conf never contains a secret.
	conf := s.call("GET", "/info/conf", "")
	for _, secret := range []string{n.PrivateKey.Reveal().String(), ks[0].Preshared, ks[4].Preshared, "PrivateKey", "PresharedKey"} {
		if strings.Contains(conf.Body, secret) {
			t.Errorf("/info/conf leaks %q", secret)
		}
	}
	if r := s.call("GET", "/health", ""); r != (reply{200, ""}) {
		t.Errorf("/health: %+v", r)
	}
	return s
}

// blocks splits wg output into its interface block and its peer blocks, the latter sorted.
func blocks(out string) []string {
	bs := strings.Split(strings.TrimSuffix(out, "\n"), "\n\n")
	slices.Sort(bs[1:])
	return bs
}

func first[A, B any](a A, _ B) A { return a }

func mustJSON(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}

// TestConcurrentCreates: creates racing on one network get distinct addresses, and each
// peer ends up on the device with its own preshared key (upstream shared one temp file).
func TestConcurrentCreates(t *testing.T) {
	s := startStack(t, t.TempDir(), "198.51.100.1/24", memoryDevice)
	const clients = 24
	type client struct{ pub, psk, ip string }
	out := make([]client, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			priv, _ := wirefleet.GeneratePrivateKey()
			psk, _ := wirefleet.GeneratePresharedKey()
			body := `{"publicKey":"` + priv.PublicKey().String() + `","presharedKey":"` + psk.String() + `"}`
			req, _ := http.NewRequest("POST", s.srv.URL+"/client", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var c created
			if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&c) != nil {
				t.Errorf("create %d: status %d", i, resp.StatusCode)
			}
			out[i] = client{priv.PublicKey().String(), psk.String(), c.ClientIP}
		})
	}
	wg.Wait()
	dp := s.devicePeers()
	ips := map[string]bool{}
	for _, c := range out {
		if ips[c.ip] {
			t.Errorf("address %s handed out twice", c.ip)
		}
		ips[c.ip] = true
		p, ok := dp[c.pub]
		if !ok || p.PresharedKey == nil || p.PresharedKey.String() != c.psk || p.AllowedIPs[0].String() != c.ip {
			t.Errorf("client %s on the device: %+v, want psk %s and %s", c.pub, p, c.psk, c.ip)
		}
	}
}

// TestCapacityInterfaceNotFirst: the interface address may be any host of WG_SUBNET; it is
// never handed out and capacity stays size - 3 (here .1, .2, .4, .5, .6 around .3).
func TestCapacityInterfaceNotFirst(t *testing.T) {
	s := startStack(t, t.TempDir(), "198.51.100.3/29", memoryDevice)
	got := map[string]bool{}
	for range 5 {
		k := s.keys()
		r, c := s.create(k.Public, "")
		if r.Status != 200 || got[c.ClientIP] {
			t.Fatalf("create: %+v %+v (have %v)", r, c, got)
		}
		got[c.ClientIP] = true
	}
	want := map[string]bool{"198.51.100.1/32": true, "198.51.100.2/32": true, "198.51.100.4/32": true, "198.51.100.5/32": true, "198.51.100.6/32": true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("addresses handed out (-want +got):\n%s", diff)
	}
	if r, _ := s.create(s.keys().Public, ""); r.Status != 400 || !strings.Contains(r.Body, "Maximum number of clients reached") {
		t.Errorf("sixth client: %+v", r)
	}
}
