// Package link configures the network interface under a WireGuard device through netlink
// (vishvananda/netlink): addresses, MTU and state. Both the kernel and the userspace
// backends use it; it changes the interface in place and never recreates it.
package link

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/wirefleet/wirefleet/internal/wgdev"
)

// Link is one interface, found by name once and then addressed by index, so a rename by
// someone else does not make us configure another interface.
type Link struct {
	h     *netlink.Handle
	Name  string
	Index int
}

// Open finds the interface called name through h (a handle in the interface's namespace).
func Open(h *netlink.Handle, name string) (*Link, error) {
	l, err := h.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("find interface %s: %w", name, err)
	}
	return &Link{h: h, Name: name, Index: l.Attrs().Index}, nil
}

func (l *Link) link() (netlink.Link, error) {
	nl, err := l.h.LinkByIndex(l.Index)
	if err != nil {
		return nil, fmt.Errorf("interface %s (index %d): %w", l.Name, l.Index, err)
	}
	return nl, nil
}

// Up sets the interface up.
func (l *Link) Up() error {
	nl, err := l.link()
	if err != nil {
		return err
	}
	if err := l.h.LinkSetUp(nl); err != nil {
		return fmt.Errorf("set %s up: %w", l.Name, err)
	}
	return nil
}

// MTU reads the interface's MTU.
func (l *Link) MTU() (int, error) {
	nl, err := l.link()
	if err != nil {
		return 0, err
	}
	return nl.Attrs().MTU, nil
}

// SetMTU changes the MTU in place.
func (l *Link) SetMTU(mtu int) error {
	nl, err := l.link()
	if err != nil {
		return err
	}
	if nl.Attrs().MTU == mtu {
		return nil
	}
	if err := l.h.LinkSetMTU(nl, mtu); err != nil {
		return fmt.Errorf("set MTU of %s to %d: %w", l.Name, mtu, err)
	}
	return nil
}

// Addresses lists the interface's addresses (with their prefix length), IPv4 first,
// without IPv6 link-local ones, which the kernel manages.
func (l *Link) Addresses() ([]netip.Prefix, error) {
	nl, err := l.link()
	if err != nil {
		return nil, err
	}
	addrs, err := l.h.AddrList(nl, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses of %s: %w", l.Name, err)
	}
	var out []netip.Prefix
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if ip.IsLinkLocalUnicast() {
			continue
		}
		ones, _ := a.Mask.Size()
		out = append(out, netip.PrefixFrom(ip, ones))
	}
	slices.SortFunc(out, wgdev.ComparePrefix)
	return out, nil
}

// SetAddresses makes want the interface's addresses: missing ones are added before stale
// ones are removed, so the interface is never without an address it keeps.
func (l *Link) SetAddresses(want []netip.Prefix) error {
	nl, err := l.link()
	if err != nil {
		return err
	}
	have, err := l.Addresses()
	if err != nil {
		return err
	}
	for _, p := range want {
		if slices.Contains(have, p) {
			continue
		}
		if err := l.h.AddrAdd(nl, toAddr(p)); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add address %s to %s: %w", p, l.Name, err)
		}
	}
	for _, p := range have {
		if slices.Contains(want, p) {
			continue
		}
		if err := l.h.AddrDel(nl, toAddr(p)); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("remove address %s from %s: %w", p, l.Name, err)
		}
	}
	return nil
}

func toAddr(p netip.Prefix) *netlink.Addr {
	bits := 32
	if p.Addr().Is6() {
		bits = 128
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), bits)}}
	if p.Addr().Is6() {
		// No duplicate address detection: a tunnel address is ours alone, and DAD would
		// keep it tentative (unusable) for a second after every start.
		a.Flags = unix.IFA_F_NODAD
	}
	return a
}
