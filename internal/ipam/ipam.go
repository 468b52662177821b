// Package ipam allocates peer tunnel addresses inside a network's IPv4 and IPv6 prefixes.
//
// A Pool holds the used addresses of one network as offsets from the prefix base, in a hash
// set, plus a low-water mark for sequential allocation: allocating is amortised O(1) and a
// pool of 50k peers is built once in O(n) (internal/control keeps one per network, in step
// with the store through the writer's commit/rollback hooks).
//
// Never allocated: the network address (offset 0), the IPv4 broadcast address, and the
// network's own address. Allocation uses only the lowest 64 host bits of an IPv6 prefix
// shorter than /64 (2^64 addresses is plenty and keeps offsets in a uint64); static
// addresses anywhere in the prefix are accepted and conflict-checked.
//
// Allocation strategies are small (sequential, random); converters that derive addresses
// from an identity (direct-bcd, metans) are added as further strategies of the same Pool.
package ipam

import (
	"math/bits"
	"math/rand/v2"
	"net/netip"

	"github.com/wirefleet/wirefleet"
)

// Pool tracks the addresses of one network. It is not safe for concurrent use; its owner
// serialises access (the store's single writer does).
type Pool struct {
	network string
	mode    wirefleet.AllocationMode
	rnd     *rand.Rand
	fams    []*family // IPv4 first, then IPv6; only the families the network has
	// far holds static addresses beyond the lowest 64 host bits of a short IPv6 prefix
	// (e.g. another /64 of a /48): checked for conflicts, never allocated.
	far map[netip.Addr]struct{}
}

// family is one prefix: offsets 1..last-1 (or ..last for IPv6) minus own and used.
type family struct {
	prefix netip.Prefix // masked
	own    uint64       // offset of the network's own address
	first  uint64       // lowest allocatable offset
	last   uint64       // highest allocatable offset
	used   map[uint64]struct{}
	hint   uint64 // every offset in [first, hint) is used or own: sequential scan starts here
}

// New returns an empty pool for n. rnd drives random allocation; nil uses a random seed.
func New(n wirefleet.Network, rnd *rand.Rand) *Pool {
	if rnd == nil {
		rnd = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	p := &Pool{network: n.Name, mode: n.Allocation, rnd: rnd, far: make(map[netip.Addr]struct{})}
	for _, hp := range []netip.Prefix{n.IPv4, n.IPv6} {
		if !hp.IsValid() {
			continue
		}
		f := &family{prefix: hp.Masked(), used: make(map[uint64]struct{})}
		hostBits := hp.Addr().BitLen() - hp.Bits()
		f.first = 1
		if hostBits >= 64 {
			f.last = ^uint64(0)
		} else {
			f.last = uint64(1)<<hostBits - 1
			if hp.Addr().Is4() {
				f.last-- // broadcast
			}
		}
		f.own, _ = f.offset(hp.Addr())
		f.hint = f.first
		p.fams = append(p.fams, f)
	}
	return p
}

// Len returns the number of addresses in use (not counting the network's own).
func (p *Pool) Len() int {
	n := len(p.far)
	for _, f := range p.fams {
		n += len(f.used)
	}
	return n
}

// offset returns a's offset from the prefix base, false if a is outside the usable range.
func (f *family) offset(a netip.Addr) (uint64, bool) {
	if !f.prefix.Contains(a) {
		return 0, false
	}
	base := f.prefix.Addr().As16()
	b := a.As16()
	var hiA, hiB uint64
	for i := range 8 {
		hiA = hiA<<8 | uint64(base[i])
		hiB = hiB<<8 | uint64(b[i])
	}
	var loA, loB uint64
	for i := 8; i < 16; i++ {
		loA = loA<<8 | uint64(base[i])
		loB = loB<<8 | uint64(b[i])
	}
	off, borrow := bits.Sub64(loB, loA, 0)
	if hiB-hiA-borrow != 0 { // beyond the lowest 64 host bits
		return 0, false
	}
	return off, true
}

func (f *family) addr(off uint64) netip.Addr {
	b := f.prefix.Addr().As16()
	var lo uint64
	for i := 8; i < 16; i++ {
		lo = lo<<8 | uint64(b[i])
	}
	lo += off // no carry: offsets stay within the host bits of a masked prefix
	for i := 15; i >= 8; i-- {
		b[i] = byte(lo)
		lo >>= 8
	}
	a := netip.AddrFrom16(b)
	if f.prefix.Addr().Is4() {
		a = a.Unmap()
	}
	return a
}

func (f *family) free(off uint64) bool {
	if off == f.own || off < f.first || off > f.last {
		return false
	}
	_, used := f.used[off]
	return !used
}

// capacity returns the number of allocatable offsets (saturating).
func (f *family) capacity() uint64 {
	c := f.last - f.first + 1
	if c == 0 { // wrapped: 2^64
		c = ^uint64(0)
	}
	if f.own >= f.first && f.own <= f.last {
		c--
	}
	return c
}

func (f *family) full() bool { return uint64(len(f.used)) >= f.capacity() }

// nextFree scans upwards from start (wrapping once) for a free offset.
func (f *family) nextFree(start uint64) (uint64, bool) {
	if f.full() {
		return 0, false
	}
	for off := start; ; off++ {
		if off > f.last || off < f.first {
			off = f.first
		}
		if f.free(off) {
			return off, true
		}
	}
}

// pick chooses an offset per mode without reserving it.
func (p *Pool) pick(f *family) (uint64, bool) {
	switch p.mode {
	case wirefleet.AllocRandom:
		span := f.last - f.first + 1
		for range 32 {
			var off uint64
			if span == 0 {
				off = p.rnd.Uint64()
			} else {
				off = f.first + p.rnd.Uint64N(span)
			}
			if f.free(off) {
				return off, true
			}
		}
		// Dense pool: scan from a random point so the choice stays spread but terminates.
		return f.nextFree(f.first + p.rnd.Uint64N(max(span, 1)))
	default:
		off, ok := f.nextFree(f.hint)
		if ok {
			f.hint = off
		}
		return off, ok
	}
}

// Allocate reserves one address per family (IPv4 first). On exhaustion of either family
// nothing is reserved and the error is KindConflict.
func (p *Pool) Allocate() ([]netip.Addr, error) {
	out := make([]netip.Addr, 0, len(p.fams))
	offs := make([]uint64, 0, len(p.fams))
	for _, f := range p.fams {
		off, ok := p.pick(f)
		if !ok {
			return nil, wirefleet.Errorf(wirefleet.KindConflict, "network %q has no free address left in %s (%d in use): delete peers or use a larger prefix", p.network, f.prefix, len(f.used))
		}
		offs = append(offs, off)
		out = append(out, f.addr(off))
	}
	for i, f := range p.fams {
		f.used[offs[i]] = struct{}{}
	}
	return out, nil
}

// Reserve marks static addresses as used after checking each: inside a network prefix, not
// the network, broadcast or own address, not in use, not listed twice. All or nothing.
func (p *Pool) Reserve(addrs []netip.Addr) error {
	type res struct {
		f   *family // nil for a far address
		off uint64
		a   netip.Addr
	}
	rs := make([]res, 0, len(addrs))
	for _, a := range addrs {
		f, off, err := p.check(a)
		if err != nil {
			return err
		}
		for _, r := range rs {
			if r.a == a {
				return wirefleet.Errorf(wirefleet.KindInvalid, "address %s is listed twice", a)
			}
		}
		rs = append(rs, res{f, off, a})
	}
	for _, r := range rs {
		if r.f == nil {
			p.far[r.a] = struct{}{}
		} else {
			r.f.used[r.off] = struct{}{}
		}
	}
	return nil
}

// Check validates one static address without reserving it.
func (p *Pool) Check(a netip.Addr) error {
	_, _, err := p.check(a)
	return err
}

// check validates a static address; a nil family with no error means a far address.
func (p *Pool) check(a netip.Addr) (*family, uint64, error) {
	for _, f := range p.fams {
		if !f.prefix.Contains(a) {
			continue
		}
		off, ok := f.offset(a)
		switch {
		case !ok: // IPv6 beyond the lowest 64 host bits: valid, tracked exactly
			if _, used := p.far[a]; used {
				return nil, 0, wirefleet.Errorf(wirefleet.KindConflict, "address %s is already used by another peer of network %q", a, p.network)
			}
			return nil, 0, nil
		case off == 0:
			return nil, 0, wirefleet.Errorf(wirefleet.KindInvalid, "address %s is the network address of %s", a, f.prefix)
		case off > f.last:
			return nil, 0, wirefleet.Errorf(wirefleet.KindInvalid, "address %s is the broadcast address of %s", a, f.prefix)
		case off == f.own:
			return nil, 0, wirefleet.Errorf(wirefleet.KindConflict, "address %s is the network %q's own address", a, p.network)
		}
		if _, used := f.used[off]; used {
			return nil, 0, wirefleet.Errorf(wirefleet.KindConflict, "address %s is already used by another peer of network %q", a, p.network)
		}
		return f, off, nil
	}
	return nil, 0, wirefleet.Errorf(wirefleet.KindInvalid, "address %s is outside the prefixes of network %q", a, p.network)
}

// Release frees addresses (unknown ones are ignored).
func (p *Pool) Release(addrs []netip.Addr) {
	for _, a := range addrs {
		delete(p.far, a)
		for _, f := range p.fams {
			off, ok := f.offset(a)
			if !ok {
				continue
			}
			if _, used := f.used[off]; used {
				delete(f.used, off)
				if off < f.hint {
					f.hint = off
				}
			}
		}
	}
}

// Load marks addresses already stored as used, without the checks of Reserve: the store is
// the truth, even for addresses a later network change left outside the range.
func (p *Pool) Load(addrs []netip.Addr) {
	for _, a := range addrs {
		for _, f := range p.fams {
			if !f.prefix.Contains(a) {
				continue
			}
			if off, ok := f.offset(a); ok {
				f.used[off] = struct{}{}
			} else {
				p.far[a] = struct{}{}
			}
		}
	}
}
