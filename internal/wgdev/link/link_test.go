package link_test

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/vishvananda/netlink"

	"github.com/wirefleet/wirefleet/internal/testenv"
	"github.com/wirefleet/wirefleet/internal/wgdev/link"
)

func TestAddressesAndMTU(t *testing.T) {
	testenv.Privileged(t)
	ns := testenv.NewNetNS(t, "wfl")
	name := testenv.UniqueName("wfl")
	ns.Exec(t, "ip", "tuntap", "add", "name", name, "mode", "tun")
	err := link.InNetNS(ns.Name, func() error {
		h, err := netlink.NewHandle()
		if err != nil {
			return err
		}
		defer h.Close()
		l, err := link.Open(h, name)
		if err != nil {
			return err
		}
		steps := [][]netip.Prefix{
			{netip.MustParsePrefix("2001:db8:1::1/64"), netip.MustParsePrefix("198.18.3.1/24")},
			{netip.MustParsePrefix("198.18.3.1/24"), netip.MustParsePrefix("198.18.4.1/24")},
			{},
		}
		for _, want := range steps {
			if err := l.SetAddresses(want); err != nil {
				return err
			}
			got, err := l.Addresses()
			if err != nil {
				return err
			}
			sorted := append([]netip.Prefix(nil), want...)
			if len(sorted) == 2 && sorted[0].Addr().Is6() {
				sorted[0], sorted[1] = sorted[1], sorted[0]
			}
			if diff := cmp.Diff(sorted, got, cmpopts.EquateComparable(netip.Prefix{}), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("addresses after SetAddresses(%v) (-want +got):\n%s", want, diff)
			}
		}
		if err := l.SetMTU(1280); err != nil {
			return err
		}
		if mtu, err := l.MTU(); err != nil || mtu != 1280 {
			t.Errorf("MTU = %d, %v; want 1280", mtu, err)
		}
		return l.Up()
	})
	if err != nil {
		t.Fatal(err)
	}
}
