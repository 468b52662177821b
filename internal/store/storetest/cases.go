package storetest

import (
	"context"
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/store"
)

func testNetworks(t *testing.T, open Opener) {
	s := openStore(t, open)
	a, b := Network("beta", 1), Network("alpha", 2)
	mustUpdate(t, s, func(tx store.Tx) error {
		if err := tx.InsertNetwork(a); err != nil {
			return err
		}
		return tx.InsertNetwork(b)
	})
	wantKind(t, update(t, s, func(tx store.Tx) error { return tx.InsertNetwork(a) }), wirefleet.KindConflict)
	view(t, s, func(tx store.ReadTx) error {
		got, err := tx.GetNetwork("beta")
		if err != nil {
			return err
		}
		if diff := cmp.Diff(a, got, cmpOpts...); diff != "" {
			t.Errorf("GetNetwork (-want +got):\n%s", diff)
		}
		if !got.PrivateKey.IsSet() || got.PrivateKey.Reveal() != a.PrivateKey.Reveal() {
			t.Errorf("private key did not round-trip")
		}
		list, err := tx.ListNetworks()
		if err != nil {
			return err
		}
		if diff := cmp.Diff([]wirefleet.Network{b, a}, list, cmpOpts...); diff != "" {
			t.Errorf("ListNetworks not ordered by name (-want +got):\n%s", diff)
		}
		_, err = tx.GetNetwork("nope")
		wantKind(t, err, wirefleet.KindNotFound)
		return nil
	})
	a.MTU, a.Endpoint, a.IPv6 = 1380, "192.0.2.7", netip.Prefix{}
	mustUpdate(t, s, func(tx store.Tx) error { return tx.UpdateNetwork(a) })
	wantKind(t, update(t, s, func(tx store.Tx) error { return tx.UpdateNetwork(Network("ghost", 3)) }), wirefleet.KindNotFound)
	mustUpdate(t, s, func(tx store.Tx) error { return tx.InsertPeer(Peer("alpha", 1)) })
	mustUpdate(t, s, func(tx store.Tx) error { return tx.DeleteNetwork("alpha") })
	wantKind(t, update(t, s, func(tx store.Tx) error { return tx.DeleteNetwork("alpha") }), wirefleet.KindNotFound)
	view(t, s, func(tx store.ReadTx) error {
		got, err := tx.GetNetwork("beta")
		if err != nil {
			return err
		}
		if diff := cmp.Diff(a, got, cmpOpts...); diff != "" {
			t.Errorf("after update (-want +got):\n%s", diff)
		}
		ps, err := tx.ListPeers(store.PeerQuery{Network: "alpha"})
		if err != nil {
			return err
		}
		addrs, err := tx.PeerAddresses("alpha")
		if err != nil {
			return err
		}
		if len(ps) != 0 || len(addrs) != 0 {
			t.Errorf("deleting a network left %d peers and %d addresses", len(ps), len(addrs))
		}
		return nil
	})
	ops := verifyLog(t, s)
	want := []string{"network.put network/beta", "network.put network/alpha", "network.put network/beta",
		"peer.put " + wirefleet.PeerKey("alpha", Key(1)), "network.delete network/alpha"}
	if diff := cmp.Diff(want, opTypes(ops)); diff != "" {
		t.Errorf("ops (-want +got):\n%s", diff)
	}
	// The network.put value carries the private key for privileged consumers.
	var v wirefleet.NetworkValue
	if err := json.Unmarshal(ops[0].Value, &v); err != nil {
		t.Fatal(err)
	}
	if v.PrivateKey != Network("beta", 1).PrivateKey.Reveal() || v.ToNetwork().PublicKey != Network("beta", 1).PublicKey {
		t.Errorf("network.put value does not carry the key pair")
	}
}

func testPeers(t *testing.T, open Opener) {
	s := openStore(t, open)
	mustUpdate(t, s, func(tx store.Tx) error { return tx.InsertNetwork(Network("net", 0)) })
	p := Peer("net", 1)
	psk := wirefleet.Key{9, 9, 9}
	p.PresharedKey = wirefleet.NewSecretKey(psk)
	exp := t0.Add(time.Hour)
	p.ExpiresAt = &exp
	mustUpdate(t, s, func(tx store.Tx) error { return tx.InsertPeer(p) })
	wantKind(t, update(t, s, func(tx store.Tx) error { return tx.InsertPeer(p) }), wirefleet.KindConflict)
	wantKind(t, update(t, s, func(tx store.Tx) error { return tx.InsertPeer(Peer("nonet", 2)) }), wirefleet.KindNotFound)
	bad := Peer("net", 3)
	bad.Addresses = nil
	wantKind(t, update(t, s, func(tx store.Tx) error { return tx.InsertPeer(bad) }), wirefleet.KindInvalid)
	view(t, s, func(tx store.ReadTx) error {
		got, err := tx.GetPeer("net", p.PublicKey)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(p, got, cmpOpts...); diff != "" {
			t.Errorf("GetPeer (-want +got):\n%s", diff)
		}
		_, err = tx.GetPeer("net", Key(77))
		wantKind(t, err, wirefleet.KindNotFound)
		return nil
	})
	p.Name, p.Enabled, p.Expired, p.ExpiresAt, p.PresharedKey = "renamed", false, true, nil, wirefleet.SecretKey{}
	mustUpdate(t, s, func(tx store.Tx) error { return tx.UpdatePeer(p) })
	wantKind(t, update(t, s, func(tx store.Tx) error { return tx.UpdatePeer(Peer("net", 50)) }), wirefleet.KindNotFound)
	view(t, s, func(tx store.ReadTx) error {
		got, err := tx.GetPeer("net", p.PublicKey)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(p, got, cmpOpts...); diff != "" {
			t.Errorf("after UpdatePeer (-want +got):\n%s", diff)
		}
		return nil
	})
	mustUpdate(t, s, func(tx store.Tx) error { return tx.DeletePeer("net", p.PublicKey) })
	wantKind(t, update(t, s, func(tx store.Tx) error { return tx.DeletePeer("net", p.PublicKey) }), wirefleet.KindNotFound)
	ops := verifyLog(t, s)
	pk := wirefleet.PeerKey("net", p.PublicKey)
	if diff := cmp.Diff([]string{"network.put network/net", "peer.put " + pk, "peer.put " + pk, "peer.delete " + pk}, opTypes(ops)); diff != "" {
		t.Errorf("ops (-want +got):\n%s", diff)
	}
	var v wirefleet.PeerValue
	if err := json.Unmarshal(ops[1].Value, &v); err != nil {
		t.Fatal(err)
	}
	if v.PresharedKey == nil || *v.PresharedKey != psk {
		t.Errorf("peer.put value lost the preshared key")
	}
}

func testPeerAddresses(t *testing.T, open Opener) {
	s := openStore(t, open)
	mustUpdate(t, s, func(tx store.Tx) error {
		if err := tx.InsertNetwork(Network("net", 0)); err != nil {
			return err
		}
		return tx.InsertNetwork(Network("other", 1))
	})
	p1 := Peer("net", 1)
	mustUpdate(t, s, func(tx store.Tx) error { return tx.InsertPeer(p1) })
	// Same address, other key: conflict naming the owner. Same address in another network: fine.
	p2 := Peer("net", 2)
	p2.Addresses = []netip.Addr{p1.Addresses[0]}
	err := update(t, s, func(tx store.Tx) error { return tx.InsertPeer(p2) })
	wantKind(t, err, wirefleet.KindConflict)
	if !strings.Contains(err.Error(), p1.PublicKey.String()) {
		t.Errorf("conflict %q does not name the owner", err)
	}
	p3 := Peer("other", 1)
	mustUpdate(t, s, func(tx store.Tx) error { return tx.InsertPeer(p3) })
	// Moving p1 to new addresses frees the old ones for p2.
	moved := p1
	moved.Addresses = []netip.Addr{netip.MustParseAddr("198.51.100.200")}
	mustUpdate(t, s, func(tx store.Tx) error { return tx.UpdatePeer(moved) })
	mustUpdate(t, s, func(tx store.Tx) error { return tx.InsertPeer(p2) })
	mustUpdate(t, s, func(tx store.Tx) error { return tx.DeletePeer("net", p2.PublicKey) })
	view(t, s, func(tx store.ReadTx) error {
		got, err := tx.PeerAddresses("net")
		if err != nil {
			return err
		}
		if diff := cmp.Diff([]netip.Addr{netip.MustParseAddr("198.51.100.200")}, got, cmpOpts...); diff != "" {
			t.Errorf("PeerAddresses (-want +got):\n%s", diff)
		}
		n, err := tx.CountPeers("other")
		if err != nil || n != 1 {
			t.Errorf("CountPeers(other) = %d, %v; want 1", n, err)
		}
		return nil
	})
	verifyLog(t, s)
}

func testListPeers(t *testing.T, open Opener) {
	s := openStore(t, open)
	var all []wirefleet.Peer
	mustUpdate(t, s, func(tx store.Tx) error {
		for i, name := range []string{"net-b", "net-a"} {
			if err := tx.InsertNetwork(Network(name, i)); err != nil {
				return err
			}
			for j := range 37 {
				p := Peer(name, i*100+j)
				p.Enabled = j%3 != 0
				p.Expired = j%4 == 0
				if j%5 == 0 {
					p.Name = "phone-" + p.Name
				}
				e := t0.Add(time.Duration(j-18) * time.Hour)
				if j%2 == 0 {
					p.ExpiresAt = &e
				}
				if err := tx.InsertPeer(p); err != nil {
					return err
				}
				all = append(all, p)
			}
		}
		return nil
	})
	slices.SortFunc(all, func(a, b wirefleet.Peer) int {
		if c := strings.Compare(a.Network, b.Network); c != 0 {
			return c
		}
		return strings.Compare(a.PublicKey.String(), b.PublicKey.String())
	})
	yes, no := true, false
	cut := t0
	tests := []struct {
		name string
		q    store.PeerQuery
		keep func(p wirefleet.Peer) bool
	}{
		{"all", store.PeerQuery{}, func(wirefleet.Peer) bool { return true }},
		{"network", store.PeerQuery{Network: "net-a"}, func(p wirefleet.Peer) bool { return p.Network == "net-a" }},
		{"enabled", store.PeerQuery{Enabled: &yes}, func(p wirefleet.Peer) bool { return p.Enabled }},
		{"disabled", store.PeerQuery{Enabled: &no}, func(p wirefleet.Peer) bool { return !p.Enabled }},
		{"expired", store.PeerQuery{Expired: &yes}, func(p wirefleet.Peer) bool { return p.Expired }},
		{"name prefix", store.PeerQuery{NamePrefix: "phone-"}, func(p wirefleet.Peer) bool { return strings.HasPrefix(p.Name, "phone-") }},
		{"expires before", store.PeerQuery{ExpiresBefore: &cut, Expired: &no}, func(p wirefleet.Peer) bool {
			return p.ExpiresAt != nil && !p.ExpiresAt.After(cut) && !p.Expired
		}},
		{"combined", store.PeerQuery{Network: "net-b", Enabled: &yes, NamePrefix: "peer"}, func(p wirefleet.Peer) bool {
			return p.Network == "net-b" && p.Enabled && strings.HasPrefix(p.Name, "peer")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var want []wirefleet.Peer
			for _, p := range all {
				if tc.keep(p) {
					want = append(want, p)
				}
			}
			// Whole list, then the same in pages of 7 via the cursor.
			var got, paged []wirefleet.Peer
			view(t, s, func(tx store.ReadTx) (err error) {
				got, err = tx.ListPeers(tc.q)
				if err != nil {
					return err
				}
				q := tc.q
				q.Limit = 7
				for {
					page, err := tx.ListPeers(q)
					if err != nil {
						return err
					}
					paged = append(paged, page...)
					if len(page) < q.Limit {
						return nil
					}
					last := page[len(page)-1]
					q.After = &store.PeerID{Network: last.Network, PublicKey: last.PublicKey}
				}
			})
			if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
				t.Errorf("ListPeers (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want, paged, cmpOpts...); diff != "" {
				t.Errorf("paged ListPeers (-want +got):\n%s", diff)
			}
		})
	}
}

func testTokens(t *testing.T, open Opener) {
	s := openStore(t, open)
	exp := t0.Add(24 * time.Hour)
	tok := wirefleet.Token{ID: "abcd1234", Name: "ci", Roles: []wirefleet.Role{wirefleet.RoleOperator, wirefleet.RoleViewer},
		Networks: []string{"net"}, ExpiresAt: &exp, CreatedAt: t0, Hash: wirefleet.HashTokenSecret("wft_abcd1234_x")}
	tok2 := wirefleet.Token{ID: "efgh5678", Roles: []wirefleet.Role{wirefleet.RoleAdmin}, CreatedAt: t0.Add(time.Second), Hash: wirefleet.HashTokenSecret("s2")}
	mustUpdate(t, s, func(tx store.Tx) error {
		if err := tx.InsertToken(tok); err != nil {
			return err
		}
		return tx.InsertToken(tok2)
	})
	wantKind(t, update(t, s, func(tx store.Tx) error { return tx.InsertToken(tok) }), wirefleet.KindConflict)
	before := verifyLog(t, s)
	used := t0.Add(time.Minute)
	mustUpdate(t, s, func(tx store.Tx) error {
		return tx.TouchTokens(map[string]time.Time{tok.ID: used, "unknown1": used})
	})
	// An older touch never moves last_used backwards.
	mustUpdate(t, s, func(tx store.Tx) error { return tx.TouchTokens(map[string]time.Time{tok.ID: t0}) })
	if after := verifyLog(t, s); len(after) != len(before) {
		t.Errorf("TouchTokens appended %d ops; it must append none", len(after)-len(before))
	}
	view(t, s, func(tx store.ReadTx) error {
		got, err := tx.GetToken(tok.ID)
		if err != nil {
			return err
		}
		want := tok
		want.LastUsedAt = &used
		if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
			t.Errorf("GetToken (-want +got):\n%s", diff)
		}
		list, err := tx.ListTokens()
		if err != nil {
			return err
		}
		if len(list) != 2 || list[0].ID != tok.ID || list[1].ID != tok2.ID {
			t.Errorf("ListTokens = %v, want [%s %s]", list, tok.ID, tok2.ID)
		}
		return nil
	})
	mustUpdate(t, s, func(tx store.Tx) error { return tx.DeleteToken(tok.ID) })
	wantKind(t, update(t, s, func(tx store.Tx) error { return tx.DeleteToken(tok.ID) }), wirefleet.KindNotFound)
	ops := verifyLog(t, s)
	var v wirefleet.TokenValue
	if err := json.Unmarshal(ops[0].Value, &v); err != nil {
		t.Fatal(err)
	}
	if v.Hash != tok.Hash || strings.Contains(string(ops[0].Value), "wft_") {
		t.Errorf("token.put value must carry the hash and never the secret: %s", ops[0].Value)
	}
}

// testIsolation: a failing or panicking call in a batch leaves no trace; the others commit.
func testIsolation(t *testing.T, open Opener) {
	s := openStore(t, open)
	mustUpdate(t, s, func(tx store.Tx) error { return tx.InsertNetwork(Network("net", 0)) })
	var failed atomic.Int32
	concurrently(60, func(i int) {
		err := s.Update(context.Background(), func(tx store.Tx) error {
			if err := tx.InsertPeer(Peer("net", i)); err != nil {
				return err
			}
			switch i % 3 {
			case 1:
				return errBoom // after a write and an op
			case 2:
				if i%6 == 5 {
					panic("deliberate")
				}
			}
			return nil
		})
		if err != nil {
			failed.Add(1)
			if i%3 == 1 && err != errBoom {
				t.Errorf("call %d: error %v, want errBoom unchanged", i, err)
			}
		}
	})
	if failed.Load() != 30 {
		t.Errorf("%d calls failed, want 30", failed.Load())
	}
	view(t, s, func(tx store.ReadTx) error {
		ps, err := tx.ListPeers(store.PeerQuery{})
		if err != nil {
			return err
		}
		if len(ps) != 30 {
			t.Errorf("%d peers stored, want 30", len(ps))
		}
		for _, p := range ps {
			i := int(p.PublicKey[0])
			if i%3 == 1 || i%6 == 5 {
				t.Errorf("peer %d of a failed call was stored", i)
			}
		}
		return nil
	})
	if ops := verifyLog(t, s); len(ops) != 31 {
		t.Errorf("%d ops, want 31", len(ops))
	}
	// A cancelled context fails fast and writes nothing.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.InsertPeer(Peer("net", 200)) }); err == nil {
		t.Errorf("Update with a cancelled context succeeded")
	}
}

func testHooks(t *testing.T, open Opener) {
	s := openStore(t, open)
	var events []string // only touched by hooks (on the writer) and after Update returns
	ev := func(e string) func() { return func() { events = append(events, e) } }
	mustUpdate(t, s, func(tx store.Tx) error {
		tx.AfterCommit(ev("commit-1"))
		tx.AfterRollback(ev("rollback-1"))
		return tx.InsertNetwork(Network("net", 0))
	})
	err := update(t, s, func(tx store.Tx) error {
		tx.AfterCommit(ev("commit-2"))
		tx.AfterRollback(ev("rollback-2"))
		return tx.InsertNetwork(Network("net", 0))
	})
	wantKind(t, err, wirefleet.KindConflict)
	if diff := cmp.Diff([]string{"commit-1", "rollback-2"}, events); diff != "" {
		t.Errorf("hooks (-want +got):\n%s", diff)
	}
	// A tx kept beyond its call is refused.
	var kept store.Tx
	mustUpdate(t, s, func(tx store.Tx) error { kept = tx; return nil })
	mustUpdate(t, s, func(store.Tx) error {
		wantKind(t, kept.InsertNetwork(Network("late", 1)), wirefleet.KindInternal)
		return nil
	})
}

func testLog(t *testing.T, s0 Opener) {
	s := openStore(t, s0)
	view(t, s, func(tx store.ReadTx) error {
		seq, h, err := tx.Head()
		if err != nil || seq != 0 || !h.IsZero() {
			t.Errorf("empty log Head() = %d, %s, %v", seq, h, err)
		}
		_, err = tx.Op(1)
		wantKind(t, err, wirefleet.KindNotFound)
		return nil
	})
	for i := range 5 {
		mustUpdate(t, s, func(tx store.Tx) error { return tx.InsertNetwork(Network("n"+string(rune('a'+i)), i)) })
	}
	ops := verifyLog(t, s)
	if len(ops) != 5 {
		t.Fatalf("%d ops, want 5", len(ops))
	}
	view(t, s, func(tx store.ReadTx) error {
		op, err := tx.Op(3)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(ops[2], op); diff != "" {
			t.Errorf("Op(3) (-want +got):\n%s", diff)
		}
		after, err := tx.OpsAfter(2, 2)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(ops[2:4], after); diff != "" {
			t.Errorf("OpsAfter(2, 2) (-want +got):\n%s", diff)
		}
		none, err := tx.OpsAfter(5, 0)
		if err != nil || len(none) != 0 {
			t.Errorf("OpsAfter(head) = %v, %v", none, err)
		}
		return nil
	})
	for _, op := range ops {
		if op.Time.Nanosecond()%1000 != 0 || op.Time.Location() != time.UTC {
			t.Errorf("op %d time %v is not UTC µs", op.Seq, op.Time)
		}
	}
}

func testConcurrent(t *testing.T, open Opener) {
	s := openStore(t, open)
	mustUpdate(t, s, func(tx store.Tx) error { return tx.InsertNetwork(Network("net", 0)) })
	const workers, each = 32, 8
	concurrently(workers, func(w int) {
		for j := range each {
			i := w*each + j
			p := Peer("net", i)
			p.Addresses = []netip.Addr{netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 14: byte(i >> 8), 15: byte(i)}).Next()}
			if err := s.Update(context.Background(), func(tx store.Tx) error { return tx.InsertPeer(p) }); err != nil {
				t.Errorf("insert %d: %v", i, err)
			}
			// Readers run concurrently with the writer.
			if err := s.View(context.Background(), func(tx store.ReadTx) error { _, err := tx.GetPeer("net", p.PublicKey); return err }); err != nil {
				t.Errorf("read own write %d: %v", i, err)
			}
		}
	})
	if ops := verifyLog(t, s); len(ops) != 1+workers*each {
		t.Errorf("%d ops, want %d", len(ops), 1+workers*each)
	}
}

func testPersistence(t *testing.T, open Opener) {
	s := open(t)
	mustUpdate(t, s, func(tx store.Tx) error {
		if err := tx.InsertNetwork(Network("net", 0)); err != nil {
			return err
		}
		return tx.InsertPeer(Peer("net", 1))
	})
	before := verifyLog(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(context.Background(), func(store.Tx) error { return nil }); !wirefleet.IsKind(err, wirefleet.KindUnavailable) {
		t.Errorf("Update after Close = %v, want unavailable", err)
	}
	s = openStore(t, open)
	mustUpdate(t, s, func(tx store.Tx) error { return tx.InsertPeer(Peer("net", 2)) })
	after := verifyLog(t, s)
	if len(after) != len(before)+1 {
		t.Fatalf("after reopen: %d ops, want %d", len(after), len(before)+1)
	}
	if diff := cmp.Diff(before, after[:len(before)]); diff != "" {
		t.Errorf("log changed across reopen (-want +got):\n%s", diff)
	}
}

func testWaitOps(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	woke := make(chan error, 1)
	go func() { woke <- s.WaitOps(ctx, 0) }()
	mustUpdate(t, s, func(tx store.Tx) error { return tx.InsertNetwork(Network("net", 0)) })
	if err := <-woke; err != nil {
		t.Fatalf("WaitOps: %v", err)
	}
	// Already beyond: returns at once. Not yet: honours ctx.
	if err := s.WaitOps(ctx, 0); err != nil {
		t.Errorf("WaitOps(0) with head 1: %v", err)
	}
	short, cancel2 := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel2()
	if err := s.WaitOps(short, 1); err == nil {
		t.Errorf("WaitOps(1) with head 1 returned nil before any new op")
	}
}
