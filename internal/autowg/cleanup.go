package autowg

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// splitAllowed sorts a peer's allowed IPs into those inside the pool and the others.
// IPv4 prefixes, supernets of the pool and the pool itself count as outside: only host
// routes (and sub-prefixes) a registration could have made are the pool's.
func splitAllowed(pool netip.Prefix, allowed []net.IPNet) (in, out []net.IPNet) {
	for _, a := range allowed {
		p, ok := prefixOf(a)
		if ok && p.Addr().Is6() && p.Bits() > pool.Bits() && pool.Contains(p.Addr()) {
			in = append(in, a)
		} else {
			out = append(out, a)
		}
	}
	return in, out
}

func prefixOf(n net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}

// trimMixedPeers removes the pool's addresses from peers that also hold addresses outside
// it (upstream's startup cleanup would drop the whole peer, or crash on IPv4). Peers fully
// inside the pool are left to the gateway's full diff, which removes the unregistered ones;
// peers fully outside, and peers without allowed IPs, are never touched.
func trimMixedPeers(iface string, pool netip.Prefix, log *slog.Logger) (int, error) {
	c, err := wgctrl.New()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	d, err := c.Device(iface)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", iface, err)
	}
	var cfg wgtypes.Config
	for _, p := range d.Peers {
		in, out := splitAllowed(pool, p.AllowedIPs)
		if len(in) == 0 || len(out) == 0 {
			continue
		}
		log.Warn("startup cleanup: peer holds addresses inside and outside the pool; removing only the pool's", "public_key", p.PublicKey.String(),
			"removed", fmt.Sprint(in), "kept", fmt.Sprint(out))
		cfg.Peers = append(cfg.Peers, wgtypes.PeerConfig{PublicKey: p.PublicKey, UpdateOnly: true, ReplaceAllowedIPs: true, AllowedIPs: out})
	}
	if len(cfg.Peers) == 0 {
		return 0, nil
	}
	return len(cfg.Peers), c.ConfigureDevice(iface, cfg)
}
