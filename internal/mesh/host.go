package mesh

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"

	"github.com/vishvananda/netlink"
)

// Host is what the node needs from the machine beyond the WireGuard device: the kernel
// route that sends the mesh subnet into the interface, IP forwarding for gateway duty, and
// the machine's own addresses (advertised for LAN shortcuts).
type Host interface {
	EnsureRoute(iface string, subnet netip.Prefix) error
	EnableForwarding(v6 bool) error
	LocalAddrs(exclude string, subnet netip.Prefix) []netip.Addr
}

// LinuxHost is Host over netlink and /proc.
type LinuxHost struct{}

// EnsureRoute adds "subnet dev iface" unless a route for it exists (an interface address
// with the subnet's prefix length already made one). One route for the whole subnet is
// enough: WireGuard's AllowedIPs pick the peer (direct or gateway) for each node.
func (LinuxHost) EnsureRoute(iface string, subnet netip.Prefix) error {
	l, err := netlink.LinkByName(iface)
	if err != nil {
		return fmt.Errorf("route %s: interface %s: %w", subnet, iface, err)
	}
	ipn := &net.IPNet{IP: subnet.Addr().AsSlice(), Mask: net.CIDRMask(subnet.Bits(), subnet.Addr().BitLen())}
	err = netlink.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: ipn, Scope: netlink.SCOPE_LINK})
	if err != nil && !errors.Is(err, syscall.EEXIST) {
		return fmt.Errorf("route %s dev %s: %w", subnet, iface, err)
	}
	return nil
}

// EnableForwarding switches on IP forwarding, needed once the node relays for others.
func (LinuxHost) EnableForwarding(v6 bool) error {
	p := "/proc/sys/net/ipv4/ip_forward"
	if v6 {
		p = "/proc/sys/net/ipv6/conf/all/forwarding"
	}
	if b, err := os.ReadFile(p); err == nil && len(b) > 0 && b[0] == '1' {
		return nil
	}
	return os.WriteFile(p, []byte("1\n"), 0o644)
}

// LocalAddrs lists the global unicast addresses of the machine's other interfaces.
func (LinuxHost) LocalAddrs(exclude string, subnet netip.Prefix) []netip.Addr {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, ifc := range ifs {
		if ifc.Name == exclude || ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok {
				continue
			}
			ip = ip.Unmap()
			if !ip.Is4() || !ip.IsGlobalUnicast() || subnet.Contains(ip) {
				continue
			}
			out = append(out, ip)
			if len(out) == 8 {
				return out
			}
		}
	}
	return out
}
