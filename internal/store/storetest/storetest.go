// Package storetest is the conformance suite of store.Store: every backend (SQLite now,
// PostgreSQL later) runs Run against a real database.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/oplog"
	"github.com/wirefleet/wirefleet/internal/store"
)

// Opener opens the database under test. Each call after the previous store was closed must
// open the same database again (for persistence tests).
type Opener func(t *testing.T) store.Store

// Factory returns an Opener for a fresh, empty database.
type Factory func(t *testing.T) Opener

// Run runs the whole suite.
func Run(t *testing.T, newDB Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"Networks", testNetworks},
		{"Peers", testPeers},
		{"PeerAddresses", testPeerAddresses},
		{"ReplacePeer", testReplacePeer},
		{"ListPeers", testListPeers},
		{"Tokens", testTokens},
		{"Isolation", testIsolation},
		{"Hooks", testHooks},
		{"Log", testLog},
		{"Concurrent", testConcurrent},
		{"Persistence", testPersistence},
		{"WaitOps", testWaitOps},
		{"Compaction", testCompaction},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newDB(t)) })
	}
	t.Run("Replication", func(t *testing.T) { testReplication(t, newDB) })
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)

// Network returns a valid dual-stack network for tests (addresses from documentation ranges).
func Network(name string, i int) wirefleet.Network {
	priv := wirefleet.Key{byte(i + 1), 2, 3}
	priv[0] &= 248
	priv[31] = 64
	return wirefleet.Network{
		Name:       name,
		ListenPort: uint16(51820 + i),
		IPv4:       netip.MustParsePrefix(fmt.Sprintf("198.51.%d.1/24", 100+i%100)),
		IPv6:       netip.MustParsePrefix(fmt.Sprintf("2001:db8:%x::1/64", i+1)),
		Endpoint:   "vpn.example.net",
		Routes:     []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")},
		DNS:        []netip.Addr{netip.MustParseAddr("192.0.2.53")},
		MTU:        1420,
		Keepalive:  25,
		Allocation: wirefleet.AllocSequential,
		PublicKey:  priv.PublicKey(),
		PrivateKey: wirefleet.NewSecretKey(priv),
		CreatedAt:  t0,
		UpdatedAt:  t0,
	}
}

// Key returns a distinct test public key.
func Key(i int) wirefleet.Key {
	var k wirefleet.Key
	k[0], k[1], k[2], k[31] = byte(i), byte(i>>8), byte(i>>16), 0xaa
	return k
}

// Peer returns a valid peer of network with addresses derived from i.
func Peer(network string, i int) wirefleet.Peer {
	return wirefleet.Peer{
		Network:   network,
		PublicKey: Key(i),
		Name:      fmt.Sprintf("peer-%03d", i),
		Addresses: []netip.Addr{
			netip.AddrFrom4([4]byte{198, 51, 100, byte(2 + i%250)}),
			netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 12: byte(i >> 24), 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)}).Next().Next(),
		},
		Enabled:   true,
		CreatedAt: t0,
		UpdatedAt: t0,
	}
}

func update(t *testing.T, s store.Store, fn func(tx store.Tx) error) error {
	t.Helper()
	return s.Update(context.Background(), fn)
}

func mustUpdate(t *testing.T, s store.Store, fn func(tx store.Tx) error) {
	t.Helper()
	if err := update(t, s, fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func view(t *testing.T, s store.Store, fn func(tx store.ReadTx) error) {
	t.Helper()
	if err := s.View(context.Background(), fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

func wantKind(t *testing.T, err error, k wirefleet.Kind) {
	t.Helper()
	if !wirefleet.IsKind(err, k) {
		t.Fatalf("error = %v (kind %s), want kind %s", err, wirefleet.KindOf(err), k)
	}
}

// cmpOpts compare domain values (SecretKey has an Equal method).
var cmpOpts = []cmp.Option{cmpopts.EquateEmpty(), cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })}

func openStore(t *testing.T, open Opener) store.Store {
	s := open(t)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// verifyLog checks the whole log is gap-free from seq 1 and its chain verifies.
func verifyLog(t *testing.T, s store.Store) []wirefleet.Op {
	t.Helper()
	var ops []wirefleet.Op
	var seq uint64
	var h wirefleet.Hash
	var base oplog.Head
	view(t, s, func(tx store.ReadTx) (err error) {
		if base.Seq, base.Hash, err = tx.LogBase(); err != nil {
			return err
		}
		if ops, err = tx.OpsAfter(base.Seq, 0); err != nil {
			return err
		}
		seq, h, err = tx.Head()
		return err
	})
	head, err := oplog.Verify(base, ops)
	if err != nil {
		t.Fatalf("log does not verify: %v", err)
	}
	if head.Seq != seq || head.Hash != h {
		t.Fatalf("Head() = %d %s, log ends at %d %s", seq, h, head.Seq, head.Hash)
	}
	return ops
}

func opTypes(ops []wirefleet.Op) []string {
	out := make([]string, len(ops))
	for i, op := range ops {
		out[i] = string(op.Type) + " " + op.Key
	}
	return out
}

var errBoom = errors.New("boom")

// concurrently runs n functions at once and waits.
func concurrently(n int, fn func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(i)
		}()
	}
	wg.Wait()
}
