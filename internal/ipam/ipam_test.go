package ipam

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wirefleet/wirefleet"
)

func network(v4, v6 string, mode wirefleet.AllocationMode) wirefleet.Network {
	n := wirefleet.Network{Name: "net", Allocation: mode}
	if v4 != "" {
		n.IPv4 = netip.MustParsePrefix(v4)
	}
	if v6 != "" {
		n.IPv6 = netip.MustParsePrefix(v6)
	}
	return n
}

var cmpAddr = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

func TestSequential(t *testing.T) {
	tests := []struct {
		name   string
		v4, v6 string
		want   [][]string // successive allocations
	}{
		{"dual stack", "198.51.100.1/24", "2001:db8::1/64", [][]string{{"198.51.100.2", "2001:db8::2"}, {"198.51.100.3", "2001:db8::3"}}},
		{"own address in the middle", "198.51.100.3/29", "", [][]string{{"198.51.100.1"}, {"198.51.100.2"}, {"198.51.100.4"}}},
		{"v6 only", "", "2001:db8:5::1/120", [][]string{{"2001:db8:5::2"}}},
		{"v6 wide prefix", "", "2001:db8::1/48", [][]string{{"2001:db8::2"}}},
		{"/30 has one peer", "192.0.2.1/30", "", [][]string{{"192.0.2.2"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := New(network(tc.v4, tc.v6, wirefleet.AllocSequential), nil)
			for i, want := range tc.want {
				got, err := p.Allocate()
				if err != nil {
					t.Fatalf("allocation %d: %v", i, err)
				}
				var w []netip.Addr
				for _, s := range want {
					w = append(w, netip.MustParseAddr(s))
				}
				if diff := cmp.Diff(w, got, cmpAddr); diff != "" {
					t.Errorf("allocation %d (-want +got):\n%s", i, diff)
				}
			}
		})
	}
}

func TestExhaustionAndRelease(t *testing.T) {
	p := New(network("192.0.2.1/29", "2001:db8::1/64", wirefleet.AllocSequential), nil)
	var got []netip.Addr
	for range 5 { // .2-.6: never .0 (network), .1 (own) or .7 (broadcast)
		a, err := p.Allocate()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, a[0])
	}
	want := []netip.Addr{netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3"), netip.MustParseAddr("192.0.2.4"), netip.MustParseAddr("192.0.2.5"), netip.MustParseAddr("192.0.2.6")}
	if diff := cmp.Diff(want, got, cmpAddr); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	v6Before := p.Len()
	if _, err := p.Allocate(); !wirefleet.IsKind(err, wirefleet.KindConflict) {
		t.Fatalf("exhausted pool: %v, want conflict", err)
	}
	if p.Len() != v6Before {
		t.Errorf("a failed allocation reserved the other family")
	}
	p.Release([]netip.Addr{netip.MustParseAddr("192.0.2.4")})
	a, err := p.Allocate()
	if err != nil || a[0] != netip.MustParseAddr("192.0.2.4") {
		t.Errorf("after release: %v, %v; want 192.0.2.4", a, err)
	}
}

func TestReserve(t *testing.T) {
	p := New(network("198.51.100.1/24", "2001:db8::1/64", wirefleet.AllocSequential), nil)
	ok := []netip.Addr{netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("2001:db8::abcd")}
	if err := p.Reserve(ok); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr string
		kind wirefleet.Kind
	}{
		{"198.51.100.2", wirefleet.KindConflict},
		{"198.51.100.1", wirefleet.KindConflict},
		{"198.51.100.0", wirefleet.KindInvalid},
		{"198.51.100.255", wirefleet.KindInvalid},
		{"203.0.113.5", wirefleet.KindInvalid},
		{"2001:db8::", wirefleet.KindInvalid},
		{"2001:db8:1::5", wirefleet.KindInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			err := p.Reserve([]netip.Addr{netip.MustParseAddr("198.51.100.77"), netip.MustParseAddr(tc.addr)})
			if !wirefleet.IsKind(err, tc.kind) {
				t.Fatalf("Reserve(%s) = %v, want kind %s", tc.addr, err, tc.kind)
			}
			if p.Check(netip.MustParseAddr("198.51.100.77")) != nil {
				t.Errorf("a failed Reserve kept part of its addresses")
			}
		})
	}
	// The sequential allocator skips the reserved address.
	a, err := p.Allocate()
	if err != nil || a[0] != netip.MustParseAddr("198.51.100.3") {
		t.Errorf("Allocate = %v, %v; want 198.51.100.3", a, err)
	}
}

// TestNeverTwice is the property test: random sequences of allocations, static reservations
// and releases, in both modes, never hand out an address in use, never the network,
// broadcast or own address, and the pool's view always equals a reference set.
func TestNeverTwice(t *testing.T) {
	for _, mode := range []wirefleet.AllocationMode{wirefleet.AllocSequential, wirefleet.AllocRandom} {
		for seed := range uint64(20) {
			rnd := rand.New(rand.NewPCG(seed, 99))
			n := network("198.51.100.77/25", "2001:db8::1/121", mode) // 125 and 126 usable
			p := New(n, rand.New(rand.NewPCG(seed, 7)))
			used := map[netip.Addr]bool{}
			forbidden := map[netip.Addr]bool{
				netip.MustParseAddr("198.51.100.0"): true, netip.MustParseAddr("198.51.100.127"): true,
				netip.MustParseAddr("198.51.100.77"): true, netip.MustParseAddr("2001:db8::"): true,
				netip.MustParseAddr("2001:db8::1"): true,
			}
			for step := range 2000 {
				switch op := rnd.IntN(10); {
				case op < 5: // allocate
					got, err := p.Allocate()
					full := countV4(used) >= 125 || len(used)-countV4(used) >= 126
					if full != (err != nil) {
						t.Fatalf("mode %s seed %d step %d: Allocate = %v, %v with %d used (full=%v)", mode, seed, step, got, err, len(used), full)
					}
					if err != nil {
						continue
					}
					for _, a := range got {
						if used[a] || forbidden[a] {
							t.Fatalf("mode %s seed %d step %d: allocated %s twice or forbidden", mode, seed, step, a)
						}
						used[a] = true
					}
				case op < 7: // static reserve of a random address in range
					a := netip.AddrFrom4([4]byte{198, 51, 100, byte(rnd.IntN(128))})
					err := p.Reserve([]netip.Addr{a})
					if (err == nil) != (!used[a] && !forbidden[a]) {
						t.Fatalf("mode %s seed %d step %d: Reserve(%s) = %v, used=%v", mode, seed, step, a, err, used[a])
					}
					if err == nil {
						used[a] = true
					}
				default: // release a random used address
					for a := range used {
						p.Release([]netip.Addr{a})
						delete(used, a)
						break
					}
				}
				if p.Len() != len(used) {
					t.Fatalf("mode %s seed %d step %d: pool has %d, reference %d", mode, seed, step, p.Len(), len(used))
				}
			}
		}
	}
}

func countV4(m map[netip.Addr]bool) int {
	n := 0
	for a := range m {
		if a.Is4() {
			n++
		}
	}
	return n
}

// BenchmarkAllocate50k measures allocation into a pool of 50k peers (/16).
func BenchmarkAllocate50k(b *testing.B) {
	n := network("198.18.0.1/15", "2001:db8::1/64", wirefleet.AllocSequential)
	for b.Loop() {
		p := New(n, nil)
		for range 50000 {
			if _, err := p.Allocate(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// TestFarStaticIPv6: in a /48, static addresses in other /64s are accepted and
// conflict-checked like any other.
func TestFarStaticIPv6(t *testing.T) {
	p := New(network("", "2001:db8::1/48", wirefleet.AllocSequential), nil)
	far := netip.MustParseAddr("2001:db8:0:7::5")
	if err := p.Reserve([]netip.Addr{far}); err != nil {
		t.Fatal(err)
	}
	if err := p.Reserve([]netip.Addr{far}); !wirefleet.IsKind(err, wirefleet.KindConflict) {
		t.Fatalf("second Reserve = %v, want conflict", err)
	}
	if p.Len() != 1 {
		t.Errorf("Len = %d", p.Len())
	}
	p.Release([]netip.Addr{far})
	if err := p.Check(far); err != nil {
		t.Errorf("after Release: %v", err)
	}
	p.Load([]netip.Addr{far})
	if err := p.Check(far); !wirefleet.IsKind(err, wirefleet.KindConflict) {
		t.Errorf("after Load: %v, want conflict", err)
	}
}
