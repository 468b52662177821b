package ipam

// Converters turn a device name (from its certificate) into an address in a registration
// pool, the autowg way (specs/autowg.md): direct-bcd and metans are pure functions of the
// name, so a device keeps its address across re-registrations and server restarts with no
// state; sequential takes the first free address of the pool and relies on the store to
// keep it stable per name.

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"golang.org/x/crypto/blake2b"

	"github.com/wirefleet/wirefleet"
)

// The converter names accepted by NewConverter.
const (
	ConvDirectBCD  = "direct-bcd"
	ConvMetans     = "metans"
	ConvSequential = "sequential"
)

// Converters lists the accepted converter names.
var Converters = []string{ConvDirectBCD, ConvMetans, ConvSequential}

// Converter maps a device name to its canonical form and address.
type Converter interface {
	// Convert returns the canonical name (two names with one canonical form are one
	// device) and its address. A zero address means the converter is stateful: the caller
	// allocates the first free address of the pool (Pool.FirstFreeIn) and keeps it per name.
	// Errors are KindInvalid and say what is wrong with the name.
	Convert(name string) (canonical string, addr netip.Addr, err error)
}

// NewConverter checks pool for the converter and returns it. template is the metans
// template ("" means "%s"); it is refused for the other converters.
func NewConverter(kind string, pool netip.Prefix, template string) (Converter, error) {
	if err := ValidatePool(pool); err != nil {
		return nil, err
	}
	if template != "" && kind != ConvMetans {
		return nil, wirefleet.Errorf(wirefleet.KindInvalid, "a metans template (%q) only applies to the metans converter, not %q", template, kind)
	}
	switch kind {
	case ConvDirectBCD, "":
		if pool.Bits() > 112 {
			return nil, wirefleet.Errorf(wirefleet.KindInvalid, "pool %s is too small for direct-bcd: its addresses use the last 16 bits; use a /112 or shorter pool", pool)
		}
		return directBCD{pool: pool}, nil
	case ConvMetans:
		t, err := parseTemplate(template)
		if err != nil {
			return nil, err
		}
		return metans{pool: pool, prefix: t[0], suffix: t[1]}, nil
	case ConvSequential:
		return sequential{}, nil
	}
	return nil, wirefleet.Errorf(wirefleet.KindInvalid, "unknown converter %q: use %s", kind, strings.Join(Converters, ", "))
}

// ValidatePool checks a registration pool: an IPv6 prefix with host bits cleared, at most a
// /126 (the pool's network address is never handed out, and a network needs room), and at
// least a /64 (addresses are offsets in the lowest 64 bits, see the package doc).
func ValidatePool(pool netip.Prefix) error {
	switch {
	case !pool.IsValid():
		return wirefleet.Errorf(wirefleet.KindInvalid, "pool is missing: give an IPv6 prefix like fd00:1::/64")
	case !pool.Addr().Is6() || pool.Addr().Is4In6():
		return wirefleet.Errorf(wirefleet.KindInvalid, "pool %s is not an IPv6 prefix: registration assigns IPv6 addresses (use a ULA like fd00:1::/64)", pool)
	case pool.Masked() != pool:
		return wirefleet.Errorf(wirefleet.KindInvalid, "pool %s has host bits set; did you mean %s?", pool, pool.Masked())
	case pool.Bits() > 126:
		return wirefleet.Errorf(wirefleet.KindInvalid, "pool %s is too small: use a /126 or shorter prefix", pool)
	case pool.Bits() < 64:
		return wirefleet.Errorf(wirefleet.KindInvalid, "pool %s is larger than a /64: Wirefleet hands out addresses within the lowest 64 bits; use a /64 (or longer) pool", pool)
	}
	return nil
}

// directBCD reads the decimal digits of the name as hex into the last 16 bits.
type directBCD struct{ pool netip.Prefix }

func (c directBCD) Convert(name string) (string, netip.Addr, error) {
	if name == "" {
		return "", netip.Addr{}, wirefleet.Errorf(wirefleet.KindInvalid, "name is empty: direct-bcd needs a number 1-9999")
	}
	for i := 0; i < len(name); i++ {
		if name[i] < '0' || name[i] > '9' {
			return "", netip.Addr{}, wirefleet.Errorf(wirefleet.KindInvalid, "name %q is not a decimal number: direct-bcd needs 1-9999 (use --cn-pattern to extract the digits, or another converter)", name)
		}
	}
	canon := strings.TrimLeft(name, "0")
	if canon == "" {
		return "", netip.Addr{}, wirefleet.Errorf(wirefleet.KindInvalid, "name %q is 0: direct-bcd needs 1-9999 (0 is the pool's subnet-router address)", name)
	}
	if len(canon) > 4 {
		return "", netip.Addr{}, wirefleet.Errorf(wirefleet.KindInvalid, "name %q is out of range: direct-bcd needs 1-9999", name)
	}
	var v uint16
	for i := 0; i < len(canon); i++ {
		v = v<<4 | uint16(canon[i]-'0')
	}
	b := c.pool.Addr().As16()
	b[14] |= byte(v >> 8)
	b[15] |= byte(v)
	return canon, netip.AddrFrom16(b), nil
}

// metans is the metans.net hash scheme.
type metans struct {
	pool           netip.Prefix
	prefix, suffix string // the template around its %s, with %% already unescaped
}

var labelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

func (c metans) Convert(name string) (string, netip.Addr, error) {
	if name == "" {
		return "", netip.Addr{}, wirefleet.Errorf(wirefleet.KindInvalid, "name is empty")
	}
	canon := strings.ToLower(name)
	fqdn := c.prefix + canon + c.suffix
	labels := strings.Split(fqdn, ".")
	for _, l := range labels {
		if len(l) > 63 {
			return "", netip.Addr{}, wirefleet.Errorf(wirefleet.KindInvalid, "name %q gives the DNS label %q of %d characters: at most 63", name, l, len(l))
		}
		if !labelRE.MatchString(l) {
			return "", netip.Addr{}, wirefleet.Errorf(wirefleet.KindInvalid, "name %q gives the invalid DNS label %q in %q: use a-z, 0-9 and inner '-'", name, l, fqdn)
		}
	}
	h, _ := blake2b.New(16, nil) // a 16-byte size with no key cannot fail
	for i := len(labels) - 1; i >= 0; i-- {
		h.Write([]byte(labels[i]))
		if i > 0 {
			h.Write([]byte{0})
		}
	}
	digest := h.Sum(nil)
	net := c.pool.Addr().As16()
	var out [16]byte
	for i := range out {
		bits := min(max(c.pool.Bits()-8*i, 0), 8)
		mask := byte(0xff << (8 - bits))
		out[i] = net[i]&mask | digest[i]&^mask
	}
	return canon, netip.AddrFrom16(out), nil
}

// parseTemplate splits a metans template at its single %s; %% is a literal %.
func parseTemplate(t string) ([2]string, error) {
	if t == "" {
		t = "%s"
	}
	var parts [2]strings.Builder
	seen := 0
	for i := 0; i < len(t); i++ {
		if t[i] != '%' {
			parts[min(seen, 1)].WriteByte(t[i])
			continue
		}
		if i+1 >= len(t) {
			return [2]string{}, wirefleet.Errorf(wirefleet.KindInvalid, "metans template %q ends with a lone %%: write %%%% for a literal %%", t)
		}
		i++
		switch t[i] {
		case '%':
			parts[min(seen, 1)].WriteByte('%')
		case 's':
			seen++
		default:
			return [2]string{}, wirefleet.Errorf(wirefleet.KindInvalid, "metans template %q has %%%c: only %%s (the name) and %%%% are allowed", t, t[i])
		}
	}
	if seen != 1 {
		return [2]string{}, wirefleet.Errorf(wirefleet.KindInvalid, "metans template %q must hold exactly one %%s (it has %d)", t, seen)
	}
	return [2]string{parts[0].String(), parts[1].String()}, nil
}

// sequential is stateful: the caller allocates.
type sequential struct{}

func (sequential) Convert(name string) (string, netip.Addr, error) {
	if name == "" {
		return "", netip.Addr{}, wirefleet.Errorf(wirefleet.KindInvalid, "name is empty")
	}
	return strings.ToLower(name), netip.Addr{}, nil
}

// FirstFreeIn returns the lowest free address of sub (a prefix inside one of the pool's
// families), without reserving it. KindConflict when sub is full, KindInvalid when sub is
// not inside the network.
func (p *Pool) FirstFreeIn(sub netip.Prefix) (netip.Addr, error) {
	for _, f := range p.fams {
		if f.prefix.Addr().Is4() != sub.Addr().Is4() || f.prefix.Bits() > sub.Bits() || !f.prefix.Contains(sub.Addr()) {
			continue
		}
		start, ok := f.offset(sub.Masked().Addr())
		if !ok {
			return netip.Addr{}, wirefleet.Errorf(wirefleet.KindInvalid, "pool %s lies beyond the allocatable range of %s (its lowest 64 host bits)", sub, f.prefix)
		}
		hostBits := sub.Addr().BitLen() - sub.Bits()
		end := ^uint64(0)
		if hostBits < 64 {
			end = start + (uint64(1)<<hostBits - 1)
		}
		for off := max(start, 1); ; off++ {
			if f.free(off) {
				return f.addr(off), nil
			}
			if off >= end || off >= f.last {
				break
			}
		}
		return netip.Addr{}, wirefleet.Errorf(wirefleet.KindConflict, "pool %s of network %q has no free address left: remove devices or use a larger pool", sub, p.network)
	}
	return netip.Addr{}, wirefleet.Errorf(wirefleet.KindInvalid, "pool %s is not inside the prefixes of network %q", sub, p.network)
}

// String is for logs.
func (c directBCD) String() string { return fmt.Sprintf("direct-bcd(%s)", c.pool) }
func (c metans) String() string    { return fmt.Sprintf("metans(%s, %q)", c.pool, c.prefix+"%s"+c.suffix) }
func (sequential) String() string  { return "sequential" }
