package control_test

import (
	"encoding/json"
	"net/netip"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/control"
)

var regPool = netip.MustParsePrefix("fd00:5::/64")

// regNetwork is shaped like autowg mode's: the network is the pool, its own address the
// pool's last one.
func regNetwork(t *testing.T, e *env) {
	t.Helper()
	mustNetwork(t, e, control.NetworkInput{Name: "reg", IPv6: netip.MustParsePrefix("fd00:5::ffff:ffff:ffff:ffff/64")})
}

func opTypes(t *testing.T, e *env, after uint64) []string {
	t.Helper()
	ops, err := e.svc.OpsAfter(ctx, after, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, op := range ops {
		out = append(out, string(op.Type)+" "+op.Key)
	}
	return out
}

func head(t *testing.T, e *env) uint64 {
	t.Helper()
	seq, _, err := e.svc.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

func TestRegisterLifecycle(t *testing.T) {
	e := newEnv(t)
	regNetwork(t, e)
	a12 := netip.MustParseAddr("fd00:5::12")
	in := control.RegisterInput{Network: "reg", Name: "12", PublicKey: key(1), Pool: regPool, Address: a12}

	r, err := e.svc.Register(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Changed || r.Peer.Name != "12" || !cmp.Equal(r.Peer.Addresses, []netip.Addr{a12}, cmpAddr) || len(r.Replaced) != 0 {
		t.Fatalf("first registration: %+v", r)
	}
	created := r.Peer.CreatedAt

	// Same name, same key: nothing written, same answer.
	seq := head(t, e)
	e.clock.Advance(1e9)
	r, err = e.svc.Register(ctx, in)
	if err != nil || r.Changed || !r.Peer.CreatedAt.Equal(created) {
		t.Fatalf("same key again: %+v %v", r, err)
	}
	if got := opTypes(t, e, seq); len(got) != 0 {
		t.Errorf("same key again wrote ops %v", got)
	}

	// Same name, new key: exactly one op, a peer.replace carrying the old key.
	in.PublicKey = key(2)
	r, err = e.svc.Register(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Changed || !cmp.Equal(r.Replaced, []wirefleet.Key{key(1)}) || r.Peer.CreatedAt.Equal(created) {
		t.Fatalf("new key: %+v", r)
	}
	want := []string{string(wirefleet.OpPeerReplace) + " " + wirefleet.PeerKey("reg", key(2))}
	if d := cmp.Diff(want, opTypes(t, e, seq)); d != "" {
		t.Errorf("ops of a key change (-want +got):\n%s", d)
	}
	ops, err := e.svc.OpsAfter(ctx, seq, 0)
	if err != nil || len(ops) != 1 {
		t.Fatalf("ops after %d: %d, %v", seq, len(ops), err)
	}
	var rv wirefleet.PeerReplaceValue
	if err := json.Unmarshal(ops[0].Value, &rv); err != nil {
		t.Fatal(err)
	}
	if rv.Replaces != key(1) || rv.PublicKey != key(2) || !cmp.Equal(rv.Addresses, []netip.Addr{a12}, cmpAddr) {
		t.Errorf("peer.replace value: replaces %s, key %s, addresses %v; want %s, %s, %s", rv.Replaces, rv.PublicKey, rv.Addresses, key(1), key(2), a12)
	}
	if _, err := e.svc.GetPeer(ctx, "reg", key(1)); !wirefleet.IsKind(err, wirefleet.KindNotFound) {
		t.Errorf("old key still stored: %v", err)
	}

	// The key of "12" under another name: refused, nothing written.
	seq = head(t, e)
	_, err = e.svc.Register(ctx, control.RegisterInput{Network: "reg", Name: "13", PublicKey: key(2), Pool: regPool, Address: netip.MustParseAddr("fd00:5::13")})
	wantKind(t, err, wirefleet.KindConflict)
	// Another name on the address of "12" (a converter collision): refused.
	_, err = e.svc.Register(ctx, control.RegisterInput{Network: "reg", Name: "other", PublicKey: key(3), Pool: regPool, Address: a12})
	wantKind(t, err, wirefleet.KindConflict)
	if got := opTypes(t, e, seq); len(got) != 0 {
		t.Errorf("refused registrations wrote ops %v", got)
	}
	// The refused address reservation was rolled back: "13" still gets its address.
	if _, err := e.svc.Register(ctx, control.RegisterInput{Network: "reg", Name: "13", PublicKey: key(4), Pool: regPool, Address: netip.MustParseAddr("fd00:5::13")}); err != nil {
		t.Fatal(err)
	}

	// A disabled device cannot come back with a new key.
	if _, err := e.svc.DisablePeer(ctx, "reg", key(2)); err != nil {
		t.Fatal(err)
	}
	in.PublicKey = key(5)
	_, err = e.svc.Register(ctx, in)
	wantKind(t, err, wirefleet.KindForbidden)
	in.PublicKey = key(2)
	_, err = e.svc.Register(ctx, in)
	wantKind(t, err, wirefleet.KindForbidden)
}

func TestRegisterSequential(t *testing.T) {
	e := newEnv(t)
	regNetwork(t, e)
	reg := func(name string, k int) wirefleet.Peer {
		t.Helper()
		r, err := e.svc.Register(ctx, control.RegisterInput{Network: "reg", Name: name, PublicKey: key(k), Pool: regPool})
		if err != nil {
			t.Fatal(err)
		}
		return r.Peer
	}
	a := reg("alpha", 1)
	b := reg("beta", 2)
	if a.Addresses[0].String() != "fd00:5::1" || b.Addresses[0].String() != "fd00:5::2" {
		t.Fatalf("alpha %v beta %v", a.Addresses, b.Addresses)
	}
	// A new key keeps the name's address; a name prefix is another device.
	if a2 := reg("alpha", 3); a2.Addresses[0] != a.Addresses[0] {
		t.Errorf("alpha moved from %v to %v", a.Addresses, a2.Addresses)
	}
	if c := reg("alph", 4); c.Addresses[0].String() != "fd00:5::3" {
		t.Errorf("alph got %v", c.Addresses)
	}
	// A freed address is reused.
	if err := e.svc.DeletePeer(ctx, "reg", key(2)); err != nil {
		t.Fatal(err)
	}
	if d := reg("delta", 5); d.Addresses[0] != b.Addresses[0] {
		t.Errorf("delta got %v, want beta's freed %v", d.Addresses, b.Addresses)
	}
}

func TestRegisterInvalid(t *testing.T) {
	e := newEnv(t)
	regNetwork(t, e)
	for _, in := range []control.RegisterInput{
		{Network: "reg", Name: "", PublicKey: key(1), Pool: regPool},
		{Network: "reg", Name: "x", Pool: regPool},
		{Network: "reg", Name: "x", PublicKey: key(1), Pool: regPool, Address: netip.MustParseAddr("fd00:6::1")},
		{Network: "reg", Name: "x", PublicKey: key(1), Pool: regPool, Address: regPool.Addr()},
	} {
		_, err := e.svc.Register(ctx, in)
		wantKind(t, err, wirefleet.KindInvalid)
	}
	_, err := e.svc.Register(ctx, control.RegisterInput{Network: "nope", Name: "x", PublicKey: key(1), Pool: regPool})
	wantKind(t, err, wirefleet.KindNotFound)
}

// Concurrent registrations of distinct devices never share an address, and a burst of the
// same device with many keys leaves exactly one peer.
func TestRegisterConcurrent(t *testing.T) {
	e := newEnv(t)
	regNetwork(t, e)
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			if _, err := e.svc.Register(ctx, control.RegisterInput{Network: "reg", Name: "dev" + string(rune('a'+i%26)) + string(rune('a'+i/26)), PublicKey: key(100 + i), Pool: regPool}); err != nil {
				t.Error(err)
			}
			if _, err := e.svc.Register(ctx, control.RegisterInput{Network: "reg", Name: "same", PublicKey: key(1000 + i), Pool: regPool}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	page, err := e.svc.ListPeers(ctx, control.PeerFilter{Network: "reg", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[netip.Addr]string{}
	same := 0
	for _, p := range page.Peers {
		if o, ok := seen[p.Addresses[0]]; ok {
			t.Errorf("%s and %s share %s", o, p.Name, p.Addresses[0])
		}
		seen[p.Addresses[0]] = p.Name
		if p.Name == "same" {
			same++
		}
	}
	if len(page.Peers) != 65 || same != 1 {
		t.Errorf("%d peers, %d named same; want 65 and 1", len(page.Peers), same)
	}
}

// A converter change (the device's address moves) with the same key: the peer is
// re-addressed in place (one op) and the old address freed.
func TestRegisterReaddress(t *testing.T) {
	e := newEnv(t)
	regNetwork(t, e)
	in := control.RegisterInput{Network: "reg", Name: "7", PublicKey: key(1), Pool: regPool, Address: netip.MustParseAddr("fd00:5::7")}
	if _, err := e.svc.Register(ctx, in); err != nil {
		t.Fatal(err)
	}
	seq := head(t, e)
	in.Address = netip.MustParseAddr("fd00:5::70")
	r, err := e.svc.Register(ctx, in)
	if err != nil || !r.Changed || r.Peer.Addresses[0] != in.Address {
		t.Fatalf("%+v %v", r, err)
	}
	if got := opTypes(t, e, seq); len(got) != 1 {
		t.Errorf("ops %v, want one peer.put", got)
	}
	// The old address is free again for another device.
	if _, err := e.svc.Register(ctx, control.RegisterInput{Network: "reg", Name: "other", PublicKey: key(2), Pool: regPool, Address: netip.MustParseAddr("fd00:5::7")}); err != nil {
		t.Errorf("old address not freed: %v", err)
	}
}
