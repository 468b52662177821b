package kernel_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/wirefleet/wirefleet/internal/testenv"
	"github.com/wirefleet/wirefleet/internal/wgdev"
	"github.com/wirefleet/wirefleet/internal/wgdev/kernel"
	"github.com/wirefleet/wirefleet/internal/wgdev/wgdevtest"
)

// BenchmarkApplyOnePeerWgctrl: the kernel backend's apply path (wgctrl, ReplaceAllowedIPs
// when a prefix goes) with 0, 1k and 10k peers present, against Debian's wireguard-go over
// UAPI since this machine has no kernel module. It shows the backend's own cost does not
// grow with the peer count (no device read per change).
func BenchmarkApplyOnePeerWgctrl(b *testing.B) {
	testenv.Privileged(b, "wireguard-go")
	ns := testenv.NewNetNS(b, "wfk")
	for _, n := range []int{0, 1000, 10000} {
		name := testenv.UniqueName("wfk")
		stop := wgdevtest.StartWireguardGo(b, ns, name)
		d, err := kernel.OpenAdoptingAny(context.Background(), kernel.Config{Name: name, NetNS: ns.Name, Logger: wgdevtest.Logger(b)})
		if err != nil {
			b.Fatal(err)
		}
		if err := d.ApplyPeers(context.Background(), wgdevtest.MakePeers(b, 0, n), nil); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("move/peers=%d", n), func(b *testing.B) {
			p := wgdev.Peer{PublicKey: wgdevtest.NewKey(b)}
			i := 0
			for b.Loop() {
				i++
				p.AllowedIPs = []netip.Prefix{wgdevtest.Host(100000 + i%2)}
				if err := d.ApplyPeers(context.Background(), []wgdev.Peer{p}, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		d.Close()
		stop()
	}
}
