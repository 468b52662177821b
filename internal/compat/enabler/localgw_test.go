package enabler

import (
	"context"
	"encoding/json"
	"errors"
	"go/parser"
	"go/token"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/wgdev"
	"github.com/wirefleet/wirefleet/internal/wgdev/wgdevtest"
)

// pickyDevice refuses one key, as a device would refuse a corrupt record.
type pickyDevice struct {
	*wgdevtest.Memory
	bad wirefleet.Key
}

func (d pickyDevice) ApplyPeers(ctx context.Context, upsert []wgdev.Peer, remove []wirefleet.Key) error {
	for _, p := range upsert {
		if p.PublicKey == d.bad {
			return errors.New("refused")
		}
	}
	return d.Memory.ApplyPeers(ctx, upsert, remove)
}

func TestReconcileRestoresEachPeerIndependently(t *testing.T) {
	ctx := context.Background()
	svc := newFakeService(testNetwork())
	mem := wgdevtest.NewMemory("wg0")
	keys := make([]wirefleet.Key, 4)
	for i := range keys {
		k, _ := wirefleet.GeneratePrivateKey()
		keys[i] = k.PublicKey()
		if _, err := svc.CreatePeer(ctx, controlInput(keys[i])); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.DisablePeer(ctx, "wg0", keys[3]); err != nil {
		t.Fatal(err)
	}
	// Stale state on the device: a disabled client, an unknown peer inside the subnet, and
	// a foreign peer outside it (not ours: left alone).
	stranger, foreign := keyA, keyB
	must(t, mem.ApplyPeers(ctx, []wgdev.Peer{
		{PublicKey: keys[3], AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.51.100.6/32")}},
		{PublicKey: stranger, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.51.100.5/32")}},
		{PublicKey: foreign, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}},
	}, nil))
	gw := NewLocalGateway(svc, pickyDevice{mem, keys[1]}, "wg0", nil)
	res, err := gw.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (ReconcileResult{Desired: 3, Upserted: 2, Removed: 2, Failed: 1}); res != want {
		t.Errorf("result %+v, want %+v", res, want)
	}
	ps, _ := mem.Peers(ctx)
	got := map[wirefleet.Key]wgdev.Peer{}
	for _, p := range ps {
		got[p.PublicKey] = p.Peer
	}
	for _, k := range []wirefleet.Key{keys[0], keys[2], foreign} {
		if _, ok := got[k]; !ok {
			t.Errorf("peer %s missing after reconcile", k)
		}
	}
	for _, k := range []wirefleet.Key{keys[1], keys[3], stranger} {
		if _, ok := got[k]; ok {
			t.Errorf("peer %s should not be on the device", k)
		}
	}
	if ka := got[keys[0]].PersistentKeepalive; ka != 25*time.Second {
		t.Errorf("keepalive %s, want 25s", ka)
	}
	// Once the device accepts keys[1], a second pass applies just that one peer, in one
	// write; a third pass on the converged device writes nothing.
	plain := NewLocalGateway(svc, mem, "wg0", nil)
	for pass, wantApplies := range []int{1, 0} {
		before := mem.Applies()
		if _, err := plain.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		if n := mem.Applies() - before; n != wantApplies {
			t.Errorf("pass %d: %d device writes, want %d", pass+2, n, wantApplies)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestNoCommandExecution keeps the upstream defect out for good: nothing in this package
// may start a process (keys travel as bytes to the device port, never to a shell).
func TestNoCommandExecution(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			if p := strings.Trim(imp.Path.Value, `"`); p == "os/exec" || p == "syscall" {
				t.Errorf("%s imports %s: the enabler must never run commands", f, p)
			}
		}
	}
}

// TestPeerReplaceIsOneDeviceWrite: a peer.replace op from the log (a device re-registered
// with a new key) swaps the keys on the device in one write; a replacement that is not
// active only removes.
func TestPeerReplaceIsOneDeviceWrite(t *testing.T) {
	ctx := context.Background()
	svc := newFakeService(testNetwork())
	mem := wgdevtest.NewMemory("wg0")
	gw := NewLocalGateway(svc, mem, "wg0", nil)
	oldKey, newKey, other := keyA, keyB, keyC(t)
	p, err := svc.CreatePeer(ctx, controlInput(newKey))
	if err != nil {
		t.Fatal(err)
	}
	allowed := []netip.Prefix{netip.PrefixFrom(p.Addresses[0], 32)}
	must(t, mem.ApplyPeers(ctx, []wgdev.Peer{{PublicKey: oldKey, AllowedIPs: allowed}}, nil))
	replace := func(old wirefleet.Key, p wirefleet.Peer) wirefleet.Op {
		b, err := json.Marshal(wirefleet.PeerReplaceValue{PeerValue: wirefleet.PeerValueOf(p), Replaces: old})
		if err != nil {
			t.Fatal(err)
		}
		return wirefleet.Op{Seq: 1, Type: wirefleet.OpPeerReplace, Key: wirefleet.PeerKey(p.Network, p.PublicKey), Value: b}
	}
	onDevice := func() []wirefleet.Key {
		ps, err := mem.Peers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ks []wirefleet.Key
		for _, p := range ps {
			ks = append(ks, p.PublicKey)
		}
		return ks
	}

	before := mem.Applies()
	gw.applyOp(ctx, replace(oldKey, p))
	if got := onDevice(); len(got) != 1 || got[0] != newKey {
		t.Errorf("device peers %v, want only the new key %s", got, newKey)
	}
	if n := mem.Applies() - before; n != 1 {
		t.Errorf("%d device writes, want 1", n)
	}
	// Another network's replacement is not ours.
	foreign := p
	foreign.Network, foreign.PublicKey = "other", other
	gw.applyOp(ctx, replace(newKey, foreign))
	if got := onDevice(); len(got) != 1 || got[0] != newKey {
		t.Errorf("after another network's op: device peers %v, want %s", got, newKey)
	}
	// Replaced by a peer the store has disabled: both keys leave.
	d, err := svc.CreatePeer(ctx, controlInput(other))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.DisablePeer(ctx, "wg0", other); err != nil {
		t.Fatal(err)
	}
	gw.applyOp(ctx, replace(newKey, d))
	if got := onDevice(); len(got) != 0 {
		t.Errorf("device peers %v, want none", got)
	}
}

func keyC(t *testing.T) wirefleet.Key {
	k, err := wirefleet.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k.PublicKey()
}
