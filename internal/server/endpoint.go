package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"
)

// Destinations of the route lookups that find the host's primary addresses. Documentation
// addresses (RFC 5737, RFC 3849) are not routed on the internet, so no host has a more
// specific route to them: the kernel answers with the default route's source address,
// which is what a route to any public destination would use. No packet is sent.
var (
	probeDst4 = netip.MustParseAddr("192.0.2.1")
	probeDst6 = netip.MustParseAddr("2001:db8::1")
)

// endpointProbe finds the host clients should dial when the first run is not told
// (-default-endpoint): the hooks are the system's, replaced in tests.
type endpointProbe struct {
	// source returns the preferred source address of the route to dst.
	source func(ctx context.Context, dst netip.Addr) (netip.Addr, error)
	// hostname is os.Hostname.
	hostname func() (string, error)
}

func systemProbe() endpointProbe { return endpointProbe{source: routeSource, hostname: os.Hostname} }

// routeSource asks the kernel for the source address of the route to dst: "connecting" a
// UDP socket only does the route lookup and sends nothing.
func routeSource(ctx context.Context, dst netip.Addr) (netip.Addr, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", netip.AddrPortFrom(dst, 51820).String())
	if err != nil {
		return netip.Addr{}, err
	}
	defer c.Close()
	ap, err := netip.ParseAddrPort(c.LocalAddr().String())
	if err != nil {
		return netip.Addr{}, err
	}
	return ap.Addr().Unmap(), nil
}

// Non-public IPv4 ranges besides RFC 1918 (netip.Addr.IsPrivate): carrier-grade NAT
// (RFC 6598), never reachable from outside, and benchmarking (RFC 2544), lab networks.
var notPublic4 = []netip.Prefix{netip.MustParsePrefix("100.64.0.0/10"), netip.MustParsePrefix("198.18.0.0/15")}

func public4(a netip.Addr) bool {
	for _, p := range notPublic4 {
		if p.Contains(a) {
			return false
		}
	}
	return !a.IsPrivate()
}

// choose picks the endpoint host and says why, in order: the IPv4 default route's source
// address (public, else private with the caveat that only clients on that network reach
// it), a global IPv6 source address, the host name. It returns "" when none is usable.
func (p endpointProbe) choose(ctx context.Context) (host, why string) {
	usable := func(a netip.Addr) bool {
		return a.IsValid() && !a.IsUnspecified() && !a.IsLoopback() && !a.IsLinkLocalUnicast()
	}
	var reasons []string
	src4, err4 := p.source(ctx, probeDst4)
	switch {
	case err4 != nil:
		reasons = append(reasons, fmt.Sprintf("no IPv4 route to the internet (%v)", err4))
	case !usable(src4):
		reasons = append(reasons, fmt.Sprintf("the IPv4 route's source %s is not usable", src4))
	case public4(src4):
		return src4.String(), "the source address of this host's IPv4 route to the internet (public)"
	}
	src6, err6 := p.source(ctx, probeDst6)
	if err6 == nil && usable(src6) && src6.IsGlobalUnicast() && !src6.IsPrivate() {
		if err4 == nil && usable(src4) {
			// A public IPv6 address beats a private IPv4 one: it is reachable from outside
			// (firewall permitting); IPv4-only clients are the exception then.
			return src6.String(), fmt.Sprintf("the source address of this host's IPv6 route to the internet (public; the IPv4 one, %s, is private)", src4)
		}
		return src6.String(), "the source address of this host's IPv6 route to the internet (public; there is no IPv4 route)"
	}
	if err4 == nil && usable(src4) {
		return src4.String(), "the source address of this host's IPv4 route to the internet; it is private, so only clients on that network reach it (behind NAT, forward the UDP port and set the public name)"
	}
	if err6 != nil {
		reasons = append(reasons, fmt.Sprintf("no IPv6 route to the internet (%v)", err6))
	} else {
		reasons = append(reasons, fmt.Sprintf("the IPv6 route's source %s is not a public address", src6))
	}
	name, err := p.hostname()
	if err == nil && name != "" && !strings.EqualFold(name, "localhost") {
		return name, "the host name: " + strings.Join(reasons, "; ")
	}
	if err == nil {
		err = errors.New("it is empty or localhost")
	}
	return "", strings.Join(append(reasons, fmt.Sprintf("no usable host name (%v)", err)), "; ")
}
