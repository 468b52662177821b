package wire

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/wirefleet/wirefleet"
)

var testKey = bytes.Repeat([]byte{7}, 32)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

func testNode(t testing.TB) (Node, ed25519.PrivateKey) {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	n := Node{Name: "alpha", WgIP: netip.MustParseAddr("198.51.100.1"), WgKey: wirefleet.Key{1, 2, 3},
		KeyTime: 1700000000000, WgPort: 50001, AdminPort: 50501,
		LocalAddrs: []netip.Addr{netip.MustParseAddr("198.18.1.10")}}
	n.Sign(priv)
	return n, priv
}

func TestSealOpenRoundTrip(t *testing.T) {
	now := time.Unix(1700000000, 0)
	s, err := NewSealer(testKey, fixedClock(now))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := testNode(t)
	msgs := []Message{
		Hello{Node: n, DBVersion: 3, Sent: 5, YourAddr: netip.MustParseAddrPort("203.0.113.11:50501")},
		RouteDB{From: n.WgIP, Version: 9, Entries: []Entry{{Node: n, Path: []netip.Addr{netip.MustParseAddr("198.51.100.9")}, Seen: netip.MustParseAddrPort("203.0.113.11:50001")}},
			Bindings: []Binding{{WgIP: n.WgIP, Identity: n.Identity}}},
		RouteDBReq{From: n.WgIP},
		LocalContact{Node: n, Reply: true},
		Punch{From: n.WgIP, To: netip.MustParseAddr("198.51.100.2"), At: 77, Accept: true, Target: netip.MustParseAddrPort("203.0.113.12:50002")},
	}
	for _, m := range msgs {
		b, err := s.Seal(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Open(b)
		if err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		if diff := cmp.Diff(m, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
			t.Errorf("%T round trip (-want +got):\n%s", m, diff)
		}
	}
}

func TestOpenRefuses(t *testing.T) {
	now := time.Unix(1700000000, 0)
	s, _ := NewSealer(testKey, fixedClock(now))
	other, _ := NewSealer(bytes.Repeat([]byte{8}, 32), fixedClock(now))
	past, _ := NewSealer(testKey, fixedClock(now.Add(-Window-time.Second)))
	future, _ := NewSealer(testKey, fixedClock(now.Add(Window+time.Second)))
	m := RouteDBReq{From: netip.MustParseAddr("198.51.100.1")}
	seal := func(s *Sealer) []byte {
		b, err := s.Seal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	flipped := seal(s)
	flipped[len(flipped)-1] ^= 1
	badMagic := seal(s)
	badMagic[0] = 'X'
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"wrong shared key", seal(other), ErrAuth},
		{"tampered", flipped, ErrAuth},
		{"bad magic", badMagic, ErrMagic},
		{"short", []byte("WFM1"), ErrShort},
		{"too old", seal(past), ErrTooOld},
		{"from the future", seal(future), ErrTooOld},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Open(tc.b); !errors.Is(err, tc.want) {
				t.Errorf("Open = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestReplayRefused(t *testing.T) {
	now := time.Unix(1700000000, 0)
	s, _ := NewSealer(testKey, fixedClock(now))
	b, _ := s.Seal(RouteDBReq{From: netip.MustParseAddr("198.51.100.1")})
	if _, err := s.Open(b); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(b); !errors.Is(err, ErrReplayed) {
		t.Fatalf("second Open = %v, want ErrReplayed", err)
	}
}

func TestNodeSignature(t *testing.T) {
	n, _ := testNode(t)
	if err := n.Verify(); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*Node){
		"wg key":  func(n *Node) { n.WgKey[0] ^= 1 },
		"wg ip":   func(n *Node) { n.WgIP = netip.MustParseAddr("198.51.100.66") },
		"port":    func(n *Node) { n.WgPort++ },
		"lan":     func(n *Node) { n.LocalAddrs = nil },
		"keytime": func(n *Node) { n.KeyTime++ },
	} {
		c := n
		mutate(&c)
		if err := c.Verify(); err == nil {
			t.Errorf("changed %s: signature still verifies", name)
		}
	}
	// another identity re-signing the same claim is valid as a record: TOFU refuses it, not Verify
	_, priv2, _ := ed25519.GenerateKey(nil)
	c := n
	c.Sign(priv2)
	if err := c.Verify(); err != nil {
		t.Errorf("re-signed record: %v", err)
	}
}

// FuzzOpen feeds arbitrary datagrams to the decoder: it must never panic, and anything it
// accepts must have authenticated.
func FuzzOpen(f *testing.F) {
	now := time.Unix(1700000000, 0)
	s, _ := NewSealer(testKey, fixedClock(now))
	n, _ := testNode(f)
	for _, m := range []Message{Hello{Node: n}, RouteDB{Entries: []Entry{{Node: n}}}, Punch{At: 1}} {
		b, _ := s.Seal(m)
		f.Add(b)
	}
	f.Add([]byte("WFM1"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, _ := NewSealer(testKey, fixedClock(now))
		_, _ = s.Open(b)
	})
}

// FuzzDecodeBody exercises the JSON decoding behind the AEAD directly (an authenticated
// peer holding the shared key can still send anything).
func FuzzDecodeBody(f *testing.F) {
	f.Add(uint8(1), []byte(`{"node":{"name":"a","wg_ip":"198.51.100.1"}}`))
	f.Add(uint8(2), []byte(`{"entries":[{"path":["198.51.100.2"]}]}`))
	f.Add(uint8(5), []byte(`{"at":1,"target":"203.0.113.1:5"}`))
	f.Fuzz(func(t *testing.T, typ uint8, b []byte) {
		m, err := decodeBody(Type(typ), b)
		if err == nil && m == nil {
			t.Fatal("nil message without error")
		}
		if h, ok := m.(Hello); ok && err == nil {
			_ = h.Node.Verify()
		}
	})
}

func TestNodeEqual(t *testing.T) {
	n, _ := testNode(t)
	c := n
	c.LocalAddrs = append([]netip.Addr(nil), n.LocalAddrs...)
	if !n.Equal(&c) {
		t.Fatal("copy not equal")
	}
	c.WgPort++ // same signature, altered field: must not pass as the verified record
	if n.Equal(&c) {
		t.Fatal("altered record equal")
	}
}

func TestSplitAssemble(t *testing.T) {
	n, _ := testNode(t)
	db := RouteDB{From: n.WgIP, Version: 7, Bindings: []Binding{{WgIP: n.WgIP, Identity: n.Identity}}}
	for i := range 300 {
		e := Entry{Node: n}
		e.Node.WgIP = netip.AddrFrom4([4]byte{198, 51, byte(100 + i/250), byte(i % 250)})
		db.Entries = append(db.Entries, e)
	}
	s, _ := NewSealer(testKey, nil)
	if _, err := s.Seal(db); err == nil {
		t.Fatal("sanity: a 300-entry database fits one datagram; make it bigger")
	}
	parts := Split(db, 40000)
	if len(parts) < 2 {
		t.Fatalf("%d parts", len(parts))
	}
	var a Assembler
	// out of order, with a duplicate and a stale part of an older version in between
	order := append([]int{len(parts) - 1}, make([]int, 0)...)
	for i := range len(parts) - 1 {
		order = append(order, i)
	}
	for k, i := range order {
		b, err := s.Seal(parts[i])
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		m, err := s.Open(b)
		if err != nil {
			t.Fatal(err)
		}
		if k == 1 {
			old := parts[0]
			old.Version = 6
			if _, done := a.Add(old); done {
				t.Fatal("an older version completed")
			}
			a.Add(m.(RouteDB)) // duplicate
		}
		got, done := a.Add(m.(RouteDB))
		if done != (k == len(order)-1) {
			t.Fatalf("after %d parts done=%v", k+1, done)
		}
		if done {
			if len(got.Entries) != len(db.Entries) || len(got.Bindings) != 1 || got.Version != 7 {
				t.Fatalf("reassembled %d entries, %d bindings, version %d", len(got.Entries), len(got.Bindings), got.Version)
			}
			for j := range got.Entries {
				if got.Entries[j].Node.WgIP != db.Entries[j].Node.WgIP {
					t.Fatalf("entry %d out of order", j)
				}
			}
		}
	}
	if whole := Split(RouteDB{Entries: db.Entries[:3]}, 40000); len(whole) != 1 || whole[0].Parts != 0 {
		t.Fatalf("small database split: %+v", whole)
	}
}
