package replication

import (
	"context"
	"encoding/json"
	"net/netip"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/oplog"
)

// memSource is an in-memory log with the state it produces, for tests of both ends.
type memSource struct {
	mu       sync.Mutex
	first    uint64 // seq of ops[0] (compaction moves it)
	baseHash wirefleet.Hash
	ops      []wirefleet.Op
	head     oplog.Head
	state    map[string]wirefleet.Op // key → last put op (state for snapshots)
	n        *oplog.Notifier
	now      time.Time
}

func newMemSource() *memSource {
	return &memSource{first: 1, state: map[string]wirefleet.Op{}, n: oplog.NewNotifier(0), now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (s *memSource) append(t testing.TB, typ wirefleet.OpType, key string, v any) wirefleet.Op {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.now = s.now.Add(time.Second)
	op := s.head.Next(s.now, typ, key, b)
	s.ops = append(s.ops, op)
	s.head = oplog.Head{Seq: op.Seq, Hash: op.Hash}
	switch typ {
	case wirefleet.OpNetworkDelete:
		name := key[len("network/"):]
		delete(s.state, key)
		for k, o := range s.state {
			if o.Type == wirefleet.OpPeerPut {
				if n, _, _ := wirefleet.ParsePeerKey(k); n == name {
					delete(s.state, k)
				}
			}
		}
	case wirefleet.OpPeerDelete, wirefleet.OpTokenDelete:
		delete(s.state, key)
	default:
		s.state[key] = op
	}
	seq := op.Seq
	s.mu.Unlock()
	s.n.Publish(seq)
	return op
}

// compact drops ops up to and including seq.
func (s *memSource) compact(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.baseHash = s.ops[seq-s.first].Hash
	s.ops = s.ops[seq-s.first+1:]
	s.first = seq + 1
}

func (s *memSource) LogBase(ctx context.Context) (uint64, wirefleet.Hash, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first - 1, s.baseHash, nil
}

func (s *memSource) CompactLog(ctx context.Context, through uint64) error {
	s.compact(through)
	return nil
}

func (s *memSource) Snapshot(ctx context.Context) (wirefleet.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := wirefleet.Snapshot{Seq: s.head.Seq, Hash: s.head.Hash, Networks: []wirefleet.NetworkValue{}, Peers: []wirefleet.PeerValue{}, Tokens: []wirefleet.TokenValue{}}
	keys := make([]string, 0, len(s.state))
	for k := range s.state {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		op := s.state[k]
		switch op.Type {
		case wirefleet.OpNetworkPut:
			var v wirefleet.NetworkValue
			_ = json.Unmarshal(op.Value, &v)
			snap.Networks = append(snap.Networks, v)
		case wirefleet.OpPeerPut:
			var v wirefleet.PeerValue
			_ = json.Unmarshal(op.Value, &v)
			snap.Peers = append(snap.Peers, v)
		case wirefleet.OpTokenPut:
			var v wirefleet.TokenValue
			_ = json.Unmarshal(op.Value, &v)
			snap.Tokens = append(snap.Tokens, v)
		}
	}
	return snap, nil
}

func (s *memSource) Head(ctx context.Context) (uint64, wirefleet.Hash, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.head.Seq, s.head.Hash, nil
}

func (s *memSource) Op(ctx context.Context, seq uint64) (wirefleet.Op, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq < s.first || seq >= s.first+uint64(len(s.ops)) {
		return wirefleet.Op{}, wirefleet.Errorf(wirefleet.KindNotFound, "op %d not found", seq)
	}
	return s.ops[seq-s.first], nil
}

func (s *memSource) OpsAfter(ctx context.Context, after uint64, limit int) ([]wirefleet.Op, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []wirefleet.Op
	for _, op := range s.ops {
		if op.Seq > after {
			out = append(out, op)
			if limit > 0 && len(out) == limit {
				break
			}
		}
	}
	return out, nil
}

func (s *memSource) WaitOps(ctx context.Context, after uint64) error { return s.n.Wait(ctx, after) }

// Fixtures.

func testKey(t testing.TB, b byte) wirefleet.Key {
	t.Helper()
	var k wirefleet.Key
	for i := range k {
		k[i] = b
	}
	// Clamp like a private key and derive the public one, so keys look real.
	return k.PublicKey()
}

func network(t testing.TB, name string, third byte) wirefleet.NetworkValue {
	priv, err := wirefleet.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	n := wirefleet.Network{Name: name, ListenPort: 51820, IPv4: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, third, 1}), 24),
		MTU: 1420, Allocation: wirefleet.AllocSequential, PublicKey: priv.PublicKey(), PrivateKey: wirefleet.NewSecretKey(priv)}
	return wirefleet.NetworkValueOf(n)
}

func peer(t testing.TB, network string, b byte, third byte, psk bool) wirefleet.PeerValue {
	p := wirefleet.Peer{Network: network, PublicKey: testKey(t, b), Name: "p", Enabled: true,
		Addresses: []netip.Addr{netip.AddrFrom4([4]byte{198, 18, third, b})}}
	if psk {
		k, _ := wirefleet.GeneratePresharedKey()
		p.PresharedKey = wirefleet.NewSecretKey(k)
	}
	return wirefleet.PeerValueOf(p)
}

func putNetwork(t testing.TB, s *memSource, v wirefleet.NetworkValue) wirefleet.Op {
	return s.append(t, wirefleet.OpNetworkPut, wirefleet.NetworkKey(v.Name), v)
}

func putPeer(t testing.TB, s *memSource, v wirefleet.PeerValue) wirefleet.Op {
	return s.append(t, wirefleet.OpPeerPut, wirefleet.PeerKey(v.Network, v.PublicKey), v)
}

func delPeer(t testing.TB, s *memSource, network string, k wirefleet.Key) wirefleet.Op {
	return s.append(t, wirefleet.OpPeerDelete, wirefleet.PeerKey(network, k), wirefleet.DeleteValue{Network: network, PublicKey: &k})
}

func putToken(t testing.TB, s *memSource, id string) wirefleet.Op {
	tok := wirefleet.Token{ID: id, Roles: []wirefleet.Role{wirefleet.RoleAdmin}, Hash: wirefleet.HashTokenSecret("wft_" + id + "_secret")}
	return s.append(t, wirefleet.OpTokenPut, wirefleet.TokenKey(id), wirefleet.TokenValueOf(tok))
}
