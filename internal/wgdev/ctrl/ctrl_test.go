package ctrl

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/wgdev"
)

// fakeClient is a kernel-type device in memory with wgctrl's semantics, recording every
// configuration it gets, so the unit tests can check what the kernel would be sent.
type fakeClient struct {
	mu    sync.Mutex // guards every field
	dev   wgtypes.Device
	sent  []wgtypes.Config
	reads int
}

func (f *fakeClient) Device(string) (*wgtypes.Device, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	d := f.dev
	d.Peers = slices.Clone(f.dev.Peers)
	return &d, nil
}

func (f *fakeClient) ConfigureDevice(_ string, cfg wgtypes.Config) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, cfg)
	for _, pc := range cfg.Peers {
		i := slices.IndexFunc(f.dev.Peers, func(p wgtypes.Peer) bool { return p.PublicKey == pc.PublicKey })
		if pc.Remove {
			if i >= 0 {
				f.dev.Peers = slices.Delete(f.dev.Peers, i, i+1)
			}
			continue
		}
		if i < 0 {
			f.dev.Peers = append(f.dev.Peers, wgtypes.Peer{PublicKey: pc.PublicKey})
			i = len(f.dev.Peers) - 1
		}
		p := &f.dev.Peers[i]
		if pc.ReplaceAllowedIPs {
			p.AllowedIPs = nil
		}
		for _, a := range pc.AllowedIPs {
			if !slices.ContainsFunc(p.AllowedIPs, func(b net.IPNet) bool { return b.String() == a.String() }) {
				p.AllowedIPs = append(p.AllowedIPs, a)
			}
		}
	}
	return nil
}

func (f *fakeClient) last() wgtypes.Config {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sent[len(f.sent)-1]
}

func key(b byte) wirefleet.Key { return wirefleet.Key{b, 1} }

func pfx(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, x := range s {
		out = append(out, netip.MustParsePrefix(x))
	}
	return out
}

func newPeers(t *testing.T, f *fakeClient, opt Options) *Peers {
	t.Helper()
	f.dev.Type = wgtypes.LinuxKernel
	p, err := New(f, "wg0", opt)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func allowed(t *testing.T, p *Peers) map[wirefleet.Key][]netip.Prefix {
	t.Helper()
	got, err := p.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := map[wirefleet.Key][]netip.Prefix{}
	for _, s := range got {
		m[s.PublicKey] = wgdev.Normalize(s.AllowedIPs)
	}
	return m
}

// The kernel way: replace only when a prefix must go; plain adds otherwise (no window).
func TestApplyReplacesOnlyWhenPrefixesGo(t *testing.T) {
	f := &fakeClient{}
	p := newPeers(t, f, Options{})
	ctx := context.Background()
	a := wgdev.Peer{PublicKey: key(1), AllowedIPs: pfx("198.18.0.1/32")}
	steps := []struct {
		name    string
		allowed []netip.Prefix
		replace bool
	}{
		{"new peer", pfx("198.18.0.1/32"), false},
		{"superset", pfx("198.18.0.1/32", "198.18.0.2/32"), false},
		{"same", pfx("198.18.0.1/32", "198.18.0.2/32"), false},
		{"one goes", pfx("198.18.0.2/32"), true},
		{"all change", pfx("2001:db8::/64"), true},
	}
	for _, s := range steps {
		a.AllowedIPs = s.allowed
		if err := p.Apply(ctx, []wgdev.Peer{a}, nil); err != nil {
			t.Fatal(err)
		}
		if got := f.last().Peers[0].ReplaceAllowedIPs; got != s.replace {
			t.Errorf("%s: ReplaceAllowedIPs = %v, want %v", s.name, got, s.replace)
		}
		if diff := cmp.Diff(map[wirefleet.Key][]netip.Prefix{a.PublicKey: s.allowed}, allowed(t, p), cmp.Comparer(func(x, y netip.Prefix) bool { return x == y })); diff != "" {
			t.Errorf("%s: device (-want +got):\n%s", s.name, diff)
		}
	}
}

// A prefix taken by another peer is no longer stale for its old owner.
func TestPrefixMoves(t *testing.T) {
	f := &fakeClient{}
	p := newPeers(t, f, Options{})
	ctx := context.Background()
	a := wgdev.Peer{PublicKey: key(1), AllowedIPs: pfx("198.18.0.1/32", "198.18.0.2/32")}
	b := wgdev.Peer{PublicKey: key(2), AllowedIPs: pfx("198.18.0.2/32")}
	if err := p.Apply(ctx, []wgdev.Peer{a, b}, nil); err != nil {
		t.Fatal(err)
	}
	a.AllowedIPs = pfx("198.18.0.1/32")
	if err := p.Apply(ctx, []wgdev.Peer{a}, nil); err != nil {
		t.Fatal(err)
	}
	if f.last().Peers[0].ReplaceAllowedIPs {
		t.Error("a lost 198.18.0.2 to b already: nothing is stale, no replace needed")
	}
}

func TestOwnedFiltersAndRefuses(t *testing.T) {
	static := wgtypes.Peer{PublicKey: wgtypes.Key(key(9)), AllowedIPs: []net.IPNet{{IP: net.IPv4(192, 0, 2, 0).To4(), Mask: net.CIDRMask(28, 32)}}}
	f := &fakeClient{dev: wgtypes.Device{Peers: []wgtypes.Peer{static}}}
	p := newPeers(t, f, Options{Owned: wgdev.Ownership(pfx("198.18.0.0/15"))})
	ctx := context.Background()
	if got := allowed(t, p); len(got) != 0 {
		t.Errorf("static peer listed: %v", got)
	}
	if err := p.Apply(ctx, []wgdev.Peer{{PublicKey: key(9), AllowedIPs: pfx("198.18.0.9/32")}}, nil); !wirefleet.IsKind(err, wirefleet.KindConflict) {
		t.Errorf("upsert of a foreign key: %v, want KindConflict", err)
	}
	if err := p.Apply(ctx, []wgdev.Peer{{PublicKey: key(1), AllowedIPs: pfx("192.0.2.1/32")}}, nil); !wirefleet.IsKind(err, wirefleet.KindInvalid) {
		t.Errorf("upsert outside the managed prefixes: %v, want KindInvalid", err)
	}
	if err := p.Apply(ctx, nil, []wirefleet.Key{key(9)}); err != nil {
		t.Fatal(err)
	}
	if len(f.dev.Peers) != 1 {
		t.Errorf("removing the foreign peer's key touched it: %+v", f.dev.Peers)
	}
	// A managed peer someone else added after our last read is found and removed.
	f.mu.Lock()
	f.dev.Peers = append(f.dev.Peers, wgtypes.Peer{PublicKey: wgtypes.Key(key(5)), AllowedIPs: []net.IPNet{{IP: net.IPv4(198, 18, 0, 5).To4(), Mask: net.CIDRMask(32, 32)}}})
	f.mu.Unlock()
	if err := p.Apply(ctx, nil, []wirefleet.Key{key(5)}); err != nil {
		t.Fatal(err)
	}
	if got := allowed(t, p); len(got) != 0 {
		t.Errorf("externally added managed peer not removed: %v", got)
	}
	if len(f.dev.Peers) != 1 || f.dev.Peers[0].PublicKey != static.PublicKey {
		t.Errorf("static peer touched: %+v", f.dev.Peers)
	}
}

// One change costs no device read, whatever the number of peers.
func TestApplyDoesNotRead(t *testing.T) {
	f := &fakeClient{}
	p := newPeers(t, f, Options{})
	reads := f.reads
	for i := range 50 {
		a := wgdev.Peer{PublicKey: key(byte(i)), AllowedIPs: pfx("198.18.0.1/32")}
		a.AllowedIPs = []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(i)}), 32)}
		if err := p.Apply(context.Background(), []wgdev.Peer{a}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if f.reads != reads {
		t.Errorf("%d device reads during 50 applies, want 0", f.reads-reads)
	}
}
