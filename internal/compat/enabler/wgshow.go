package enabler

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/wirefleet/wirefleet/internal/wgdev"
)

// RenderShow renders what `wg show <device>` prints (wireguard-tools' pretty_print, without
// a terminal, so without colours), from the device port: keys "(hidden)", peers ordered by
// latest handshake (most recent first, never-handshaked last, device order otherwise).
// now is the clock of "… ago".
func RenderShow(info wgdev.Info, peers []wgdev.PeerStatus, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "interface: %s\n", info.Name)
	if !info.PublicKey.IsZero() {
		fmt.Fprintf(&b, "  public key: %s\n", info.PublicKey)
		// A device has a public key only when it has a private key; wg show masks it.
		b.WriteString("  private key: (hidden)\n")
	}
	if info.ListenPort != 0 {
		fmt.Fprintf(&b, "  listening port: %d\n", info.ListenPort)
	}
	sorted := slices.Clone(peers)
	slices.SortStableFunc(sorted, func(x, y wgdev.PeerStatus) int {
		xz, yz := x.LastHandshake.IsZero(), y.LastHandshake.IsZero()
		switch {
		case xz && yz:
			return 0
		case xz:
			return 1
		case yz:
			return -1
		}
		return y.LastHandshake.Compare(x.LastHandshake)
	})
	if len(sorted) > 0 {
		b.WriteString("\n")
	}
	for i, p := range sorted {
		fmt.Fprintf(&b, "peer: %s\n", p.PublicKey)
		if p.PresharedKey != nil && !p.PresharedKey.IsZero() {
			b.WriteString("  preshared key: (hidden)\n")
		}
		if p.Endpoint.IsValid() {
			fmt.Fprintf(&b, "  endpoint: %s\n", endpoint(p.Endpoint))
		}
		b.WriteString("  allowed ips: ")
		if len(p.AllowedIPs) == 0 {
			b.WriteString("(none)\n")
		} else {
			for j, a := range p.AllowedIPs {
				if j > 0 {
					b.WriteString(", ")
				}
				b.WriteString(a.String())
			}
			b.WriteString("\n")
		}
		if !p.LastHandshake.IsZero() {
			fmt.Fprintf(&b, "  latest handshake: %s\n", ago(p.LastHandshake, now))
		}
		if p.RxBytes != 0 || p.TxBytes != 0 {
			fmt.Fprintf(&b, "  transfer: %s received, %s sent\n", bytesText(p.RxBytes), bytesText(p.TxBytes))
		}
		if s := wgdev.KeepaliveSeconds(p.PersistentKeepalive); s != 0 {
			fmt.Fprintf(&b, "  persistent keepalive: every %s\n", prettyTime(uint64(s)))
		}
		if i < len(sorted)-1 {
			b.WriteString("\n")
		}
	}
	return b.String()
}

// endpoint prints an endpoint as getnameinfo does for wg: IPv4-mapped addresses unmapped.
func endpoint(ap netip.AddrPort) string {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String()
}

// ago is wireguard-tools' ago(): whole seconds, "Now" when equal.
func ago(t, now time.Time) string {
	ts, ns := t.Unix(), now.Unix()
	switch {
	case ts == ns:
		return "Now"
	case ns < ts:
		return "(System clock wound backward; connection problems may ensue.)"
	default:
		return prettyTime(uint64(ns-ts)) + " ago"
	}
}

// prettyTime is wireguard-tools' pretty_time(): years (365 days), days, hours, minutes,
// seconds, zero units left out.
func prettyTime(left uint64) string {
	units := []struct {
		name string
		secs uint64
	}{{"year", 365 * 24 * 3600}, {"day", 24 * 3600}, {"hour", 3600}, {"minute", 60}, {"second", 1}}
	var parts []string
	for _, u := range units {
		n := left / u.secs
		left %= u.secs
		if n == 0 {
			continue
		}
		s := "s"
		if n == 1 {
			s = ""
		}
		parts = append(parts, fmt.Sprintf("%d %s%s", n, u.name, s))
	}
	return strings.Join(parts, ", ")
}

// bytesText is wireguard-tools' bytes(): B, then KiB…TiB with two decimals.
func bytesText(n int64) string {
	b := uint64(max(n, 0))
	const k = 1024
	switch {
	case b < k:
		return fmt.Sprintf("%d B", b)
	case b < k*k:
		return fmt.Sprintf("%.2f KiB", float64(b)/k)
	case b < k*k*k:
		return fmt.Sprintf("%.2f MiB", float64(b)/(k*k))
	case b < k*k*k*k:
		return fmt.Sprintf("%.2f GiB", float64(b)/(k*k*k))
	default:
		return fmt.Sprintf("%.2f TiB", float64(b)/(k*k*k)/k)
	}
}

// RenderShowConf renders `wg showconf <device>` without the PrivateKey line and without
// any PresharedKey line (upstream leaks both). The result is still valid input for
// `wg addconf`/`wg setconf`.
func RenderShowConf(info wgdev.Info, peers []wgdev.PeerStatus) string {
	var b strings.Builder
	b.WriteString("[Interface]\n")
	if info.ListenPort != 0 {
		fmt.Fprintf(&b, "ListenPort = %d\n", info.ListenPort)
	}
	b.WriteString("\n")
	for i, p := range peers {
		fmt.Fprintf(&b, "[Peer]\nPublicKey = %s\n", p.PublicKey)
		if len(p.AllowedIPs) > 0 {
			b.WriteString("AllowedIPs = ")
			for j, a := range p.AllowedIPs {
				if j > 0 {
					b.WriteString(", ")
				}
				b.WriteString(a.String())
			}
			b.WriteString("\n")
		}
		if p.Endpoint.IsValid() {
			fmt.Fprintf(&b, "Endpoint = %s\n", endpoint(p.Endpoint))
		}
		if s := wgdev.KeepaliveSeconds(p.PersistentKeepalive); s != 0 {
			fmt.Fprintf(&b, "PersistentKeepalive = %d\n", s)
		}
		if i < len(peers)-1 {
			b.WriteString("\n")
		}
	}
	return b.String()
}
