package reconcile

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/oplog"
	"github.com/wirefleet/wirefleet/internal/wgdev"
	"github.com/wirefleet/wirefleet/internal/wgdev/wgdevtest"
)

// fixture drives a Reconciler over in-memory devices with a hand-built, hash-chained log.
type fixture struct {
	t       *testing.T
	r       *Reconciler
	dir     string
	head    oplog.Head
	now     time.Time
	mu      sync.Mutex
	devs    map[string]*wgdevtest.Memory
	opens   int
	repairs map[string]int
}

func newFixture(t *testing.T, dir string, networks ...string) *fixture {
	f := &fixture{t: t, dir: dir, now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), devs: map[string]*wgdevtest.Memory{}, repairs: map[string]int{}}
	f.start(networks...)
	return f
}

// start (re)creates the reconciler on the same devices and state dir, like a restart.
func (f *fixture) start(networks ...string) {
	r, err := New(Config{
		Networks: networks,
		StateDir: f.dir,
		Now:      func() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now },
		Open: func(ctx context.Context, n wirefleet.NetworkValue) (wgdev.Device, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.opens++
			d, ok := f.devs[n.Name]
			if !ok {
				d = wgdevtest.NewMemory(n.Name)
				f.devs[n.Name] = d
			}
			// A backend creating the link sets these; keep an existing one (kernel link).
			if !ok {
				port := int(n.ListenPort)
				k := n.PrivateKey
				if err := d.Configure(ctx, wgdev.Interface{PrivateKey: &k, ListenPort: &port, Addresses: Addresses(n.Network), MTU: n.MTU}); err != nil {
					return nil, err
				}
			}
			return d, nil
		},
		Logger: slog.New(slog.DiscardHandler),
		Hooks:  Hooks{Repaired: func(network, kind string) { f.mu.Lock(); f.repairs[kind]++; f.mu.Unlock() }},
	})
	if err != nil {
		f.t.Fatal(err)
	}
	f.r = r
	if _, err := r.Load(context.Background()); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) op(typ wirefleet.OpType, key string, v any) wirefleet.Op {
	b, err := json.Marshal(v)
	if err != nil {
		f.t.Fatal(err)
	}
	op := f.head.Next(f.now, typ, key, b)
	f.head = oplog.Head{Seq: op.Seq, Hash: op.Hash}
	return op
}

func (f *fixture) apply(ops ...wirefleet.Op) {
	f.t.Helper()
	if err := f.r.Apply(context.Background(), ops); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) putNetwork(v wirefleet.NetworkValue) wirefleet.Op {
	return f.op(wirefleet.OpNetworkPut, wirefleet.NetworkKey(v.Name), v)
}

func (f *fixture) putPeer(v wirefleet.PeerValue) wirefleet.Op {
	return f.op(wirefleet.OpPeerPut, wirefleet.PeerKey(v.Network, v.PublicKey), v)
}

func (f *fixture) delPeer(network string, k wirefleet.Key) wirefleet.Op {
	return f.op(wirefleet.OpPeerDelete, wirefleet.PeerKey(network, k), wirefleet.DeleteValue{Network: network, PublicKey: &k})
}

func (f *fixture) replacePeer(old wirefleet.Key, v wirefleet.PeerValue) wirefleet.Op {
	return f.op(wirefleet.OpPeerReplace, wirefleet.PeerKey(v.Network, v.PublicKey), wirefleet.PeerReplaceValue{PeerValue: v, Replaces: old})
}

func (f *fixture) dev(name string) *wgdevtest.Memory {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.devs[name]
}

// devicePeers summarises a device: key → sorted allowed IPs (+ "psk" when set).
func devicePeers(t *testing.T, d wgdev.Device) map[wirefleet.Key][]string {
	ps, err := d.Peers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[wirefleet.Key][]string{}
	for _, p := range ps {
		var s []string
		for _, a := range p.AllowedIPs {
			s = append(s, a.String())
		}
		sort.Strings(s)
		if p.PresharedKey != nil {
			s = append(s, "psk:"+p.PresharedKey.String())
		}
		out[p.PublicKey] = s
	}
	return out
}

func want(ps ...wirefleet.PeerValue) map[wirefleet.Key][]string {
	out := map[wirefleet.Key][]string{}
	for _, p := range ps {
		var s []string
		for _, a := range p.AllowedIPs() {
			s = append(s, a.String())
		}
		sort.Strings(s)
		if p.PresharedKey != nil {
			s = append(s, "psk:"+p.PresharedKey.String())
		}
		out[p.PublicKey] = s
	}
	return out
}

func key(b byte) wirefleet.Key {
	var k wirefleet.Key
	for i := range k {
		k[i] = b
	}
	return k.PublicKey()
}

func netValue(t *testing.T, name string, third byte) wirefleet.NetworkValue {
	priv, err := wirefleet.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return wirefleet.NetworkValueOf(wirefleet.Network{Name: name, ListenPort: 51820,
		IPv4: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, third, 1}), 24),
		IPv6: netip.MustParsePrefix("2001:db8:" + string('0'+rune(third)) + "::1/64"),
		MTU:  1420, Allocation: wirefleet.AllocSequential, PublicKey: priv.PublicKey(), PrivateKey: wirefleet.NewSecretKey(priv)})
}

func peerValue(network string, b, third byte, psk bool) wirefleet.PeerValue {
	p := wirefleet.Peer{Network: network, PublicKey: key(b), Name: "n", Enabled: true,
		Addresses: []netip.Addr{netip.AddrFrom4([4]byte{198, 18, third, b}), netip.MustParseAddr("2001:db8:" + string('0'+rune(third)) + "::" + string('a'+rune(b%6)))}}
	if psk {
		var k wirefleet.Key
		k[0], k[1] = b, 0x55
		p.PresharedKey = wirefleet.NewSecretKey(k)
	}
	return wirefleet.PeerValueOf(p)
}

func TestSnapshotThenOneWritePerOp(t *testing.T) {
	f := newFixture(t, "")
	n := netValue(t, "a", 1)
	p1, p2, p3 := peerValue("a", 1, 1, true), peerValue("a", 2, 1, false), peerValue("a", 3, 1, false)
	p3.Enabled = false
	snap := wirefleet.Snapshot{Seq: 7, Hash: wirefleet.Hash{7}, Networks: []wirefleet.NetworkValue{n}, Peers: []wirefleet.PeerValue{p1, p2, p3}}
	if err := f.r.Reset(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	d := f.dev("a")
	if diff := cmp.Diff(want(p1, p2), devicePeers(t, d)); diff != "" {
		t.Fatalf("after snapshot (-want +got):\n%s", diff)
	}
	if d.Applies() != 1 {
		t.Errorf("snapshot took %d device writes, want 1", d.Applies())
	}
	if s, h := f.r.Position(); s != 7 || h != (wirefleet.Hash{7}) {
		t.Errorf("position %d %v", s, h)
	}
	f.head = oplog.Head{Seq: 7, Hash: wirefleet.Hash{7}}

	p4 := peerValue("a", 4, 1, true)
	disabled := p1
	disabled.Enabled = false
	expired := p2
	expired.Expired = true
	enabled := p3
	enabled.Enabled = true
	past := f.now.Add(-time.Minute)
	pastDue := p4
	pastDue.ExpiresAt = &past
	newKey := p1
	newKey.PublicKey = key(5)
	newDisabled := newKey
	newDisabled.PublicKey, newDisabled.Enabled = key(6), false
	steps := []struct {
		name string
		op   wirefleet.Op
		want map[wirefleet.Key][]string
	}{
		{"add", f.putPeer(p4), want(p1, p2, p4)},
		{"disable", f.putPeer(disabled), want(p2, p4)},
		{"expire", f.putPeer(expired), want(p4)},
		{"enable", f.putPeer(enabled), want(p3, p4)},
		{"expires_at passed", f.putPeer(pastDue), want(p3)},
		{"delete", f.delPeer("a", p3.PublicKey), want()},
		{"re-add", f.putPeer(p1), want(p1)},
		// A device re-registering with a new key keeps its addresses: one device write
		// swaps the keys.
		{"replace with a new key", f.replacePeer(p1.PublicKey, newKey), want(newKey)},
		{"replace with a disabled peer", f.replacePeer(newKey.PublicKey, newDisabled), want()},
		{"replace an absent peer", f.replacePeer(key(9), p2), want(p2)},
	}
	for _, s := range steps {
		before := d.Applies()
		f.apply(s.op)
		if diff := cmp.Diff(s.want, devicePeers(t, d)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", s.name, diff)
		}
		if got := d.Applies() - before; got != 1 {
			t.Errorf("%s: %d device writes, want exactly 1", s.name, got)
		}
	}
	if s, _ := f.r.Position(); s != f.head.Seq {
		t.Errorf("position %d, want %d", s, f.head.Seq)
	}
}

func TestNetworkChangesInPlace(t *testing.T) {
	f := newFixture(t, "")
	n := netValue(t, "a", 1)
	f.apply(f.putNetwork(n), f.putPeer(peerValue("a", 1, 1, false)))
	d := f.dev("a")
	changed := n
	changed.ListenPort = 51999
	changed.MTU = 1380
	changed.IPv4 = netip.MustParsePrefix("198.18.1.254/24")
	priv, _ := wirefleet.GeneratePrivateKey()
	changed.PrivateKey, changed.PublicKey = priv, priv.PublicKey()
	f.apply(f.putNetwork(changed))
	info, _ := d.Info(context.Background())
	got := []any{info.ListenPort, info.MTU, info.PublicKey, info.Addresses}
	wantInfo := []any{51999, 1380, priv.PublicKey(), Addresses(changed.Network)}
	if diff := cmp.Diff(wantInfo, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("interface (-want +got):\n%s", diff)
	}
	if f.opens != 1 {
		t.Errorf("device opened %d times: the link must be changed in place", f.opens)
	}
	if len(devicePeers(t, d)) != 1 {
		t.Error("peers were dropped by an interface change")
	}
}

func TestOnlyServedNetworks(t *testing.T) {
	f := newFixture(t, "", "b")
	f.apply(f.putNetwork(netValue(t, "a", 1)), f.putPeer(peerValue("a", 1, 1, false)),
		f.putNetwork(netValue(t, "b", 2)), f.putPeer(peerValue("b", 2, 2, false)),
		f.op(wirefleet.OpTokenPut, "token/abcd", map[string]string{"id": "abcd"}))
	if f.dev("a") != nil {
		t.Error("a device was opened for a network this gateway does not serve")
	}
	if diff := cmp.Diff(want(peerValue("b", 2, 2, false)), devicePeers(t, f.dev("b"))); diff != "" {
		t.Error(diff)
	}
	if s, _ := f.r.Position(); s != 5 {
		t.Errorf("position %d: ops of other networks must still advance it", s)
	}
}

func TestDriftRepairCountedAndForeignPeersKept(t *testing.T) {
	f := newFixture(t, "")
	n := netValue(t, "a", 1)
	p1, p2, p3 := peerValue("a", 1, 1, true), peerValue("a", 2, 1, false), peerValue("a", 3, 1, false)
	f.apply(f.putNetwork(n), f.putPeer(p1), f.putPeer(p2), f.putPeer(p3))
	d := f.dev("a")
	ctx := context.Background()
	// Behind our back: p1 removed, p2's allowed IPs altered, a stray peer inside the
	// network, a static peer outside it (wg-quick's), and the listen port changed.
	foreign := wgdev.Peer{PublicKey: key(90), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}}
	stray := wgdev.Peer{PublicKey: key(91), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.18.1.91/32")}}
	altered := wgdev.Peer{PublicKey: p2.PublicKey, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.18.1.200/32")}}
	if err := d.ApplyPeers(ctx, []wgdev.Peer{foreign, stray, altered}, []wirefleet.Key{p1.PublicKey}); err != nil {
		t.Fatal(err)
	}
	port := 1234
	_ = d.Configure(ctx, wgdev.Interface{ListenPort: &port})

	n1, err := f.r.Drift(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n1 != 4 {
		t.Errorf("drift repaired %d, want 4", n1)
	}
	wantRepairs := map[string]int{"missing": 1, "altered": 1, "stray": 1, "interface": 1}
	if diff := cmp.Diff(wantRepairs, f.repairs); diff != "" {
		t.Errorf("counted repairs (-want +got):\n%s", diff)
	}
	wantPeers := want(p1, p2, p3)
	wantPeers[foreign.PublicKey] = []string{"203.0.113.0/24"}
	if diff := cmp.Diff(wantPeers, devicePeers(t, d)); diff != "" {
		t.Errorf("after repair (-want +got):\n%s", diff)
	}
	// Nothing left to repair: one read, zero writes.
	before := d.Applies()
	if n, err := f.r.Drift(ctx); n != 0 || err != nil {
		t.Errorf("second drift: %d repairs, %v", n, err)
	}
	if d.Applies() != before {
		t.Error("a drift check with nothing to repair wrote to the device")
	}
}

func TestDriftRemovesPeersExpiringWhileAlone(t *testing.T) {
	f := newFixture(t, "")
	n := netValue(t, "a", 1)
	p := peerValue("a", 1, 1, false)
	soon := f.now.Add(time.Hour)
	p.ExpiresAt = &soon
	f.apply(f.putNetwork(n), f.putPeer(p))
	if len(devicePeers(t, f.dev("a"))) != 1 {
		t.Fatal("peer not applied")
	}
	f.mu.Lock()
	f.now = f.now.Add(2 * time.Hour)
	f.mu.Unlock()
	if n, err := f.r.Drift(context.Background()); n != 1 || err != nil {
		t.Fatalf("drift: %d, %v", n, err)
	}
	if len(devicePeers(t, f.dev("a"))) != 0 {
		t.Error("expired peer still on the device")
	}
}

func TestRestartServesSavedStateAndResumes(t *testing.T) {
	dir := t.TempDir()
	f := newFixture(t, dir)
	n := netValue(t, "a", 1)
	snap := wirefleet.Snapshot{Seq: 3, Hash: wirefleet.Hash{3}, Networks: []wirefleet.NetworkValue{n}, Peers: []wirefleet.PeerValue{peerValue("a", 1, 1, true)}}
	if err := f.r.Reset(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	f.head = oplog.Head{Seq: 3, Hash: wirefleet.Hash{3}}
	p2, p3 := peerValue("a", 2, 1, true), peerValue("a", 3, 1, false)
	f.apply(f.putPeer(p2))
	f.apply(f.putPeer(p3), f.delPeer("a", key(1)))
	wantSeq, wantHash := f.r.Position()
	// Crash: no Close. A torn line at the end of the journal, as a crash mid-write leaves.
	jf, _ := os.OpenFile(filepath.Join(dir, journalFile), os.O_APPEND|os.O_WRONLY, 0)
	_, _ = jf.WriteString(`{"seq":7,"prev_ha`)
	_ = jf.Close()
	// The userspace device went away with the process: a fresh one.
	f.mu.Lock()
	f.devs = map[string]*wgdevtest.Memory{}
	f.mu.Unlock()
	f.start()
	if s, h := f.r.Position(); s != wantSeq || h != wantHash {
		t.Fatalf("resumed at %d %s, want %d %s", s, h, wantSeq, wantHash)
	}
	if diff := cmp.Diff(want(p2, p3), devicePeers(t, f.dev("a"))); diff != "" {
		t.Errorf("served after restart (-want +got):\n%s", diff)
	}
	if d := f.dev("a"); d.Applies() != 1 {
		t.Errorf("restart took %d device writes, want 1", d.Applies())
	}
	info, _ := f.dev("a").Info(context.Background())
	if info.PublicKey != n.PublicKey {
		t.Error("restarted device has another key")
	}
	st, err := os.Stat(filepath.Join(dir, checkpointFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("checkpoint %v mode %v: it holds private keys and must be 0600", err, st.Mode())
	}
	// And it keeps following from there.
	p4 := peerValue("a", 4, 1, false)
	f.apply(f.putPeer(p4))
	if diff := cmp.Diff(want(p2, p3, p4), devicePeers(t, f.dev("a"))); diff != "" {
		t.Error(diff)
	}
}

func TestCheckpointRotation(t *testing.T) {
	defer func(n int) { minCheckpointEvery = n }(minCheckpointEvery)
	minCheckpointEvery = 300
	dir := t.TempDir()
	f := newFixture(t, dir)
	f.apply(f.putNetwork(netValue(t, "a", 1)))
	for i := range 1000 {
		p := peerValue("a", byte(i%200+1), 1, false)
		p.Enabled = i%2 == 0
		f.apply(f.putPeer(p))
	}
	b, err := os.ReadFile(filepath.Join(dir, journalFile))
	if err != nil {
		t.Fatal(err)
	}
	// 200 peers: a checkpoint every 400 ops, so at most 400 ops in the journal.
	if lines := strings.Count(string(b), "\n"); lines > 400 {
		t.Errorf("journal has %d ops: it was never rotated into a checkpoint", lines)
	}
	seq, _ := f.r.Position()
	f.start()
	if s, _ := f.r.Position(); s != seq {
		t.Errorf("restart at %d, want %d", s, seq)
	}
}

// attachedMemory reports itself as an attached interface (wg-quick's, not ours).
type attachedMemory struct{ *wgdevtest.Memory }

func (a attachedMemory) Info(ctx context.Context) (wgdev.Info, error) {
	i, err := a.Memory.Info(ctx)
	i.Backend = "attach"
	return i, err
}

func TestAttachedInterfaceIsNeverConfigured(t *testing.T) {
	mem := wgdevtest.NewMemory("wg0")
	port := 51000
	other, _ := wirefleet.GeneratePrivateKey()
	_ = mem.Configure(context.Background(), wgdev.Interface{PrivateKey: &other, ListenPort: &port})
	static := wgdev.Peer{PublicKey: key(99), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("192.0.2.7/32")}}
	_ = mem.ApplyPeers(context.Background(), []wgdev.Peer{static}, nil)
	r, err := New(Config{Logger: slog.New(slog.DiscardHandler), Open: func(context.Context, wirefleet.NetworkValue) (wgdev.Device, error) {
		return attachedMemory{mem}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, r: r}
	n := netValue(t, "a", 1)
	p := peerValue("a", 1, 1, false)
	f.apply(f.putNetwork(n), f.putPeer(p))
	changed := n
	changed.ListenPort = 52000
	f.apply(f.putNetwork(changed))
	if n, err := r.Drift(context.Background()); n != 0 || err != nil {
		t.Errorf("drift on an attached interface: %d repairs, %v", n, err)
	}
	info, _ := mem.Info(context.Background())
	if info.ListenPort != 51000 || info.PublicKey != other.PublicKey() {
		t.Errorf("the attached interface was configured: %+v", info)
	}
	wantPeers := want(p)
	wantPeers[static.PublicKey] = []string{"192.0.2.7/32"}
	if diff := cmp.Diff(wantPeers, devicePeers(t, mem)); diff != "" {
		t.Errorf("peers (-want +got):\n%s", diff)
	}
}
