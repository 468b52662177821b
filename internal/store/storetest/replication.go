package storetest

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/oplog"
	"github.com/wirefleet/wirefleet/internal/store"
)

// state is everything a replica must reproduce.
type state struct {
	Seq      uint64
	Hash     wirefleet.Hash
	Networks []wirefleet.Network
	Peers    []wirefleet.Peer
	Tokens   []wirefleet.Token
}

func readState(t *testing.T, s store.Store) state {
	t.Helper()
	var st state
	view(t, s, func(tx store.ReadTx) (err error) {
		if st.Seq, st.Hash, err = tx.Head(); err != nil {
			return err
		}
		if st.Networks, err = tx.ListNetworks(); err != nil {
			return err
		}
		if st.Peers, err = tx.ListPeers(store.PeerQuery{}); err != nil {
			return err
		}
		st.Tokens, err = tx.ListTokens()
		for i := range st.Tokens {
			st.Tokens[i].LastUsedAt = nil
		}
		return err
	})
	return st
}

func snapshotOf(st state) wirefleet.Snapshot {
	snap := wirefleet.Snapshot{Seq: st.Seq, Hash: st.Hash}
	for _, n := range st.Networks {
		snap.Networks = append(snap.Networks, wirefleet.NetworkValueOf(n))
	}
	for _, p := range st.Peers {
		snap.Peers = append(snap.Peers, wirefleet.PeerValueOf(p))
	}
	for _, tok := range st.Tokens {
		snap.Tokens = append(snap.Tokens, wirefleet.TokenValueOf(tok))
	}
	return snap
}

// mutate runs a mixed history of every op type on a primary.
func mutate(t *testing.T, s store.Store, from int) {
	mustUpdate(t, s, func(tx store.Tx) error {
		n := Network("rep", 0)
		if from > 0 {
			n = Network("rep2", 1)
		}
		if err := tx.InsertNetwork(n); err != nil {
			return err
		}
		for i := from; i < from+6; i++ {
			p := Peer(n.Name, i)
			if i%2 == 0 {
				p.PresharedKey = wirefleet.NewSecretKey(wirefleet.Key{byte(i), 1})
			}
			if err := tx.InsertPeer(p); err != nil {
				return err
			}
		}
		p := Peer(n.Name, from+1)
		p.Enabled, p.Addresses = false, []netip.Addr{netip.MustParseAddr("198.51.100.250")}
		if from > 0 {
			p.Addresses = []netip.Addr{netip.MustParseAddr("198.51.101.250")}
		}
		if err := tx.UpdatePeer(p); err != nil {
			return err
		}
		if err := tx.DeletePeer(n.Name, Key(from+2)); err != nil {
			return err
		}
		// A re-registration: a new key takes over peer from+3 and its addresses.
		r := Peer(n.Name, from+3)
		r.PublicKey, r.PresharedKey = Key(from+40), wirefleet.NewSecretKey(wirefleet.Key{byte(from), 2})
		if err := tx.ReplacePeer(Key(from+3), r); err != nil {
			return err
		}
		tok := wirefleet.Token{ID: "tok" + n.Name, Roles: []wirefleet.Role{wirefleet.RoleGateway}, CreatedAt: t0, Hash: wirefleet.HashTokenSecret(n.Name)}
		if err := tx.InsertToken(tok); err != nil {
			return err
		}
		n.MTU = 1300
		return tx.UpdateNetwork(n)
	})
}

func testReplication(t *testing.T, newDB Factory) {
	primary := openStore(t, newDB(t))
	mutate(t, primary, 0)
	mustUpdate(t, primary, func(tx store.Tx) error { return tx.InsertNetwork(Network("gone", 5)) })
	mustUpdate(t, primary, func(tx store.Tx) error { return tx.DeleteNetwork("gone") })
	mustUpdate(t, primary, func(tx store.Tx) error { return tx.DeleteToken("tokrep") })
	ops := verifyLog(t, primary)

	t.Run("ops", func(t *testing.T) {
		replica := openStore(t, newDB(t))
		for _, op := range ops {
			// Through JSON, as on the wire.
			b, _ := json.Marshal(op)
			var wire wirefleet.Op
			if err := json.Unmarshal(b, &wire); err != nil {
				t.Fatal(err)
			}
			mustUpdate(t, replica, func(tx store.Tx) error { return tx.ApplyOp(wire) })
		}
		if diff := cmp.Diff(readState(t, primary), readState(t, replica), cmpOpts...); diff != "" {
			t.Errorf("replica state (-primary +replica):\n%s", diff)
		}
		if diff := cmp.Diff(ops, verifyLog(t, replica)); diff != "" {
			t.Errorf("replica log (-primary +replica):\n%s", diff)
		}
		// Replaying, skipping, a diverged or a tampered op: all refused, nothing changes.
		last := ops[len(ops)-1]
		wantKind(t, update(t, replica, func(tx store.Tx) error { return tx.ApplyOp(last) }), wirefleet.KindConflict)
		next := oplog.Head{Seq: last.Seq + 1, Hash: last.Hash}.Next(time.Now(), wirefleet.OpTokenDelete, "token/x", []byte(`{}`))
		wantKind(t, update(t, replica, func(tx store.Tx) error { return tx.ApplyOp(next) }), wirefleet.KindConflict)
		other := oplog.Head{Seq: last.Seq, Hash: wirefleet.Hash{1}}.Next(time.Now(), wirefleet.OpTokenDelete, "token/x", []byte(`{}`))
		wantKind(t, update(t, replica, func(tx store.Tx) error { return tx.ApplyOp(other) }), wirefleet.KindConflict)
		good := oplog.Head{Seq: last.Seq, Hash: last.Hash}.Next(time.Now(), wirefleet.OpTokenDelete, "token/x", []byte(`{}`))
		tampered := good
		tampered.Key = "token/y"
		wantKind(t, update(t, replica, func(tx store.Tx) error { return tx.ApplyOp(tampered) }), wirefleet.KindConflict)
		mustUpdate(t, replica, func(tx store.Tx) error { return tx.ApplyOp(good) })
	})

	t.Run("snapshot then tail", func(t *testing.T) {
		snap := snapshotOf(readState(t, primary))
		mutate(t, primary, 10)
		replica := openStore(t, newDB(t))
		mustUpdate(t, replica, func(tx store.Tx) error { return tx.InsertNetwork(Network("stale", 9)) }) // replaced by the snapshot
		mustUpdate(t, replica, func(tx store.Tx) error { return tx.ResetToSnapshot(snap) })
		view(t, replica, func(tx store.ReadTx) error {
			seq, h, err := tx.LogBase()
			if err != nil || seq != snap.Seq || h != snap.Hash {
				t.Errorf("LogBase after reset = %d %s %v, want the snapshot's", seq, h, err)
			}
			return nil
		})
		var tail []wirefleet.Op
		view(t, primary, func(tx store.ReadTx) (err error) { tail, err = tx.OpsAfter(snap.Seq, 0); return err })
		for _, op := range tail {
			switch op.Type { // gateways get PSK-less values: redaction keeps the chain
			case wirefleet.OpPeerPut:
				var v wirefleet.PeerValue
				_ = json.Unmarshal(op.Value, &v)
				v.PresharedKey = nil
				b, _ := json.Marshal(v)
				op = oplog.Redact(op, b)
			case wirefleet.OpPeerReplace:
				var v wirefleet.PeerReplaceValue
				_ = json.Unmarshal(op.Value, &v)
				v.PresharedKey = nil
				b, _ := json.Marshal(v)
				op = oplog.Redact(op, b)
			}
			mustUpdate(t, replica, func(tx store.Tx) error { return tx.ApplyOp(op) })
		}
		want := readState(t, primary)
		for i := range want.Peers {
			if want.Peers[i].Network == "rep2" {
				want.Peers[i].PresharedKey = wirefleet.SecretKey{}
			}
		}
		if diff := cmp.Diff(want, readState(t, replica), cmpOpts...); diff != "" {
			t.Errorf("replica state (-primary +replica):\n%s", diff)
		}
		if got := verifyLog(t, replica); len(got) != len(tail) || got[0].ValueDigest == nil && got[0].Type == wirefleet.OpPeerPut {
			t.Errorf("replica log: %d ops, want %d, redaction digests kept", len(got), len(tail))
		}
	})
}

func testCompaction(t *testing.T, open Opener) {
	s := open(t)
	mutate(t, s, 0)
	all := verifyLog(t, s)
	before := readState(t, s)
	mustUpdate(t, s, func(tx store.Tx) error { return tx.CompactLog(3) })
	mustUpdate(t, s, func(tx store.Tx) error { return tx.CompactLog(2) }) // behind the base: no-op
	wantKind(t, update(t, s, func(tx store.Tx) error { return tx.CompactLog(before.Seq + 1) }), wirefleet.KindInvalid)
	if diff := cmp.Diff(before, readState(t, s), cmpOpts...); diff != "" {
		t.Errorf("compaction changed the state (-before +after):\n%s", diff)
	}
	view(t, s, func(tx store.ReadTx) error {
		seq, h, err := tx.LogBase()
		if err != nil || seq != 3 || h != all[2].Hash {
			t.Errorf("LogBase = %d %s %v, want 3 %s", seq, h, err, all[2].Hash)
		}
		_, err = tx.Op(3)
		wantKind(t, err, wirefleet.KindNotFound)
		return nil
	})
	if got := verifyLog(t, s); len(got) != len(all)-3 {
		t.Errorf("%d ops after compaction, want %d", len(got), len(all)-3)
	}
	// Compacting everything keeps the head; new ops continue the chain, also after reopen.
	mustUpdate(t, s, func(tx store.Tx) error { return tx.CompactLog(before.Seq) })
	if st := readState(t, s); st.Seq != before.Seq || st.Hash != before.Hash {
		t.Errorf("head moved by compaction: %d, want %d", st.Seq, before.Seq)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, open)
	mustUpdate(t, s, func(tx store.Tx) error { return tx.DeleteNetwork("rep") })
	if got := verifyLog(t, s); len(got) != 1 || got[0].Seq != before.Seq+1 {
		t.Errorf("after full compaction and reopen: %v", opTypes(got))
	}
}
