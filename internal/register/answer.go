package register

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/wirefleet/wirefleet"
)

// Answer is a validated registration answer (specs/autowg.md, "Response").
type Answer struct {
	// Host and Port of the endpoint (the host may be a DNS name, resolved when applied).
	Host      string
	Port      uint16
	PublicKey wirefleet.Key
	Route     netip.Prefix
	IP        netip.Addr
	Keepalive time.Duration
}

// DefaultKeepalive applies when the answer has no keepalive line (as upstream's client).
const DefaultKeepalive = 25 * time.Second

// ParseAnswer parses and validates the five key=value lines before anything is applied:
// endpoint (host:port), pubkey, route (one IPv6 prefix), ip (IPv6) and, optionally,
// keepalive (seconds). Unknown keys are ignored (forward compatibility); a missing, repeated
// or invalid required key is an error.
func ParseAnswer(body string) (Answer, error) {
	vals := map[string]string{}
	for i, line := range strings.Split(body, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return Answer{}, fmt.Errorf("answer line %d %q is not key=value", i+1, trunc(line))
		}
		if _, dup := vals[k]; dup {
			return Answer{}, fmt.Errorf("answer repeats %q", trunc(k))
		}
		vals[k] = strings.TrimSpace(v)
	}
	for _, k := range []string{"endpoint", "pubkey", "route", "ip"} {
		if _, ok := vals[k]; !ok {
			return Answer{}, fmt.Errorf("answer has no %s= line", k)
		}
	}
	var a Answer
	host, port, err := net.SplitHostPort(vals["endpoint"])
	if err != nil || host == "" {
		return Answer{}, fmt.Errorf("answer endpoint %q is not host:port", trunc(vals["endpoint"]))
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return Answer{}, fmt.Errorf("answer endpoint %q has no valid port", trunc(vals["endpoint"]))
	}
	if _, err := netip.ParseAddr(host); err != nil && wirefleet.ValidateEndpointHost(host) != nil {
		return Answer{}, fmt.Errorf("answer endpoint host %q is not a host name or address", trunc(host))
	}
	a.Host, a.Port = host, uint16(p)
	if a.PublicKey, err = wirefleet.ParseKey(vals["pubkey"]); err != nil || a.PublicKey.IsZero() {
		return Answer{}, fmt.Errorf("answer pubkey %q is not a WireGuard public key", trunc(vals["pubkey"]))
	}
	if a.Route, err = netip.ParsePrefix(vals["route"]); err != nil || !a.Route.Addr().Is6() || a.Route.Addr().Is4In6() || a.Route.Addr().Zone() != "" {
		return Answer{}, fmt.Errorf("answer route %q is not an IPv6 prefix", trunc(vals["route"]))
	}
	a.Route = a.Route.Masked()
	if a.IP, err = netip.ParseAddr(vals["ip"]); err != nil || !a.IP.Is6() || a.IP.Is4In6() || a.IP.Zone() != "" || a.IP.IsUnspecified() {
		return Answer{}, fmt.Errorf("answer ip %q is not an IPv6 address", trunc(vals["ip"]))
	}
	a.Keepalive = DefaultKeepalive
	if v, ok := vals["keepalive"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 65535 {
			return Answer{}, fmt.Errorf("answer keepalive %q is not 0-65535 seconds", trunc(v))
		}
		a.Keepalive = time.Duration(n) * time.Second
	}
	return a, nil
}

// trunc keeps error messages about hostile answers short.
func trunc(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
