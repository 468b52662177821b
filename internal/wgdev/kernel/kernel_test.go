package kernel_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/testenv"
	"github.com/wirefleet/wirefleet/internal/wgdev"
	"github.com/wirefleet/wirefleet/internal/wgdev/kernel"
	"github.com/wirefleet/wirefleet/internal/wgdev/wgdevtest"
)

// TestKernel runs the conformance suite on real kernel links where the kernel has
// WireGuard; where it has not (this project's CI machine), it asserts the clean failure
// that makes wgdev/auto fall back to userspace, and that nothing is left behind.
func TestKernel(t *testing.T) {
	testenv.Privileged(t)
	ns := testenv.NewNetNS(t, "wfk")
	name := testenv.UniqueName("wfk")
	d, err := kernel.Open(context.Background(), kernel.Config{Name: name, NetNS: ns.Name, Logger: wgdevtest.Logger(t)})
	if err != nil {
		if !errors.Is(err, kernel.ErrNoKernelSupport) {
			t.Fatalf("kernel.Open: %v (want success, or ErrNoKernelSupport)", err)
		}
		if !wirefleet.IsKind(err, wirefleet.KindUnavailable) ||
			!strings.Contains(err.Error(), "kernel has no WireGuard support (modprobe wireguard failed?)") ||
			!strings.Contains(err.Error(), "use -wg-backend userspace") {
			t.Errorf("error does not tell the user what to do: %v", err)
		}
		if out, err := ns.Command("ip", "link", "show", name).CombinedOutput(); err == nil {
			t.Errorf("failed Open left interface %s behind:\n%s", name, out)
		}
		t.Logf("no kernel WireGuard here, as expected by the fallback: %v", err)
		return
	}
	d.Delete()
	d.Close()
	wgdevtest.Run(t, func(t *testing.T) wgdev.Device {
		name := testenv.UniqueName("wfk")
		d, err := kernel.Open(context.Background(), kernel.Config{Name: name, NetNS: ns.Name, Logger: wgdevtest.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Delete(); d.Close() })
		return d
	})
}

// TestKernelCodePathOnWireguardGo runs the conformance suite through the kernel backend's
// wgctrl code (apply with ReplaceAllowedIPs, read, key/port via wgctrl, addresses and MTU
// via netlink, adoption of an existing link) against a stock wireguard-go device, which
// wgctrl drives over UAPI exactly as it drives a kernel link over netlink.
func TestKernelCodePathOnWireguardGo(t *testing.T) {
	testenv.Privileged(t, "wireguard-go")
	ns := testenv.NewNetNS(t, "wfk")
	wgdevtest.Run(t, func(t *testing.T) wgdev.Device {
		name := testenv.UniqueName("wfg")
		wgdevtest.StartWireguardGo(t, ns, name)
		d, err := kernel.OpenAdoptingAny(context.Background(), kernel.Config{Name: name, NetNS: ns.Name, Logger: wgdevtest.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	})
}

// Open must not take over an interface that is not WireGuard.
func TestOpenRefusesOtherLinkType(t *testing.T) {
	testenv.Privileged(t)
	ns := testenv.NewNetNS(t, "wfk")
	name := testenv.UniqueName("wfk")
	ns.Exec(t, "ip", "tuntap", "add", "name", name, "mode", "tun")
	_, err := kernel.Open(context.Background(), kernel.Config{Name: name, NetNS: ns.Name, Logger: wgdevtest.Logger(t)})
	if !wirefleet.IsKind(err, wirefleet.KindConflict) {
		t.Fatalf("Open on a tun interface: got %v, want a conflict", err)
	}
}
