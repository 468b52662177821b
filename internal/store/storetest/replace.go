package storetest

import (
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/store"
)

// testReplacePeer: a device re-registering with a new key. ReplacePeer swaps the peers in
// one op (peer.replace), the new peer may take the old one's addresses, the addresses the
// new peer does not keep are freed, and every refusal leaves the state and the log as they were.
func testReplacePeer(t *testing.T, open Opener) {
	s := openStore(t, open)
	old, other := Peer("net", 1), Peer("net", 2)
	mustUpdate(t, s, func(tx store.Tx) error {
		if err := tx.InsertNetwork(Network("net", 0)); err != nil {
			return err
		}
		if err := tx.InsertPeer(old); err != nil {
			return err
		}
		return tx.InsertPeer(other)
	})
	before := verifyLog(t, s)

	repl := Peer("net", 3)
	repl.Name, repl.Addresses = old.Name, []netip.Addr{old.Addresses[0]} // keeps the IPv4 address, frees the IPv6 one
	psk := wirefleet.Key{7, 7, 7}
	repl.PresharedKey = wirefleet.NewSecretKey(psk)

	stolen := repl
	stolen.Addresses = []netip.Addr{other.Addresses[0]}
	taken := repl
	taken.PublicKey = other.PublicKey
	self := repl
	self.PublicKey = old.PublicKey
	noNet := repl
	noNet.Network = "nonet"
	bad := repl
	bad.Addresses = nil
	for _, tc := range []struct {
		name string
		old  wirefleet.Key
		p    wirefleet.Peer
		want wirefleet.Kind
	}{
		{"old peer missing", Key(99), repl, wirefleet.KindNotFound},
		{"address of another peer", old.PublicKey, stolen, wirefleet.KindConflict},
		{"new key already a peer", old.PublicKey, taken, wirefleet.KindConflict},
		{"replaces itself", old.PublicKey, self, wirefleet.KindInvalid},
		{"no such network", old.PublicKey, noNet, wirefleet.KindNotFound},
		{"invalid peer", old.PublicKey, bad, wirefleet.KindInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantKind(t, update(t, s, func(tx store.Tx) error { return tx.ReplacePeer(tc.old, tc.p) }), tc.want)
		})
	}
	if diff := cmp.Diff(before, verifyLog(t, s)); diff != "" {
		t.Fatalf("a refused replacement changed the log (-before +after):\n%s", diff)
	}

	mustUpdate(t, s, func(tx store.Tx) error { return tx.ReplacePeer(old.PublicKey, repl) })
	view(t, s, func(tx store.ReadTx) error {
		_, err := tx.GetPeer("net", old.PublicKey)
		wantKind(t, err, wirefleet.KindNotFound)
		got, err := tx.GetPeer("net", repl.PublicKey)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(repl, got, cmpOpts...); diff != "" {
			t.Errorf("replacement (-want +got):\n%s", diff)
		}
		addrs, err := tx.PeerAddresses("net")
		if err != nil {
			return err
		}
		want := append(append([]netip.Addr{}, repl.Addresses...), other.Addresses...)
		if diff := cmp.Diff(want, addrs, cmpOpts...); diff != "" {
			t.Errorf("PeerAddresses (-want +got):\n%s", diff)
		}
		return nil
	})
	// The freed IPv6 address is free indeed; the kept IPv4 one is held by the new peer.
	reuse := Peer("net", 4)
	reuse.Addresses = []netip.Addr{old.Addresses[1]}
	mustUpdate(t, s, func(tx store.Tx) error { return tx.InsertPeer(reuse) })
	clash := Peer("net", 5)
	clash.Addresses = []netip.Addr{old.Addresses[0]}
	wantKind(t, update(t, s, func(tx store.Tx) error { return tx.InsertPeer(clash) }), wirefleet.KindConflict)

	ops := verifyLog(t, s)
	ops = ops[len(before):]
	pk := wirefleet.PeerKey("net", repl.PublicKey)
	if diff := cmp.Diff([]string{"peer.replace " + pk, "peer.put " + wirefleet.PeerKey("net", reuse.PublicKey)}, opTypes(ops)); diff != "" {
		t.Errorf("ops (-want +got):\n%s", diff)
	}
	var v wirefleet.PeerReplaceValue
	if err := json.Unmarshal(ops[0].Value, &v); err != nil {
		t.Fatal(err)
	}
	if v.Replaces != old.PublicKey || v.PublicKey != repl.PublicKey || v.PresharedKey == nil || *v.PresharedKey != psk {
		t.Errorf("peer.replace value = replaces %s, key %s, psk %v; want %s, %s and the preshared key", v.Replaces, v.PublicKey, v.PresharedKey, old.PublicKey, repl.PublicKey)
	}
}
