package main

import (
	"flag"
	"net/netip"
	"strings"

	"github.com/wirefleet/wirefleet/internal/server"
)

// registerFlags are the server's zero-touch registration flags (docs/autowg.md).
type registerFlags struct {
	listen  *string
	file    *string
	proxies stringList
}

func addRegisterFlags(fs *flag.FlagSet) *registerFlags {
	r := &registerFlags{}
	r.listen = fs.String("register-listen", envDefault("WIREFLEET_REGISTER_LISTEN", ""), "serve device registration (autowg's POST v1/register) on this `host:port`; empty: off [WIREFLEET_REGISTER_LISTEN]")
	r.file = fs.String("register-config", envDefault("WIREFLEET_REGISTER_CONFIG", ""), "YAML `file` with the per-network registration settings (pool, route, endpoint, cn_pattern, converter, CAs, TLS) [WIREFLEET_REGISTER_CONFIG]")
	fs.Var(&r.proxies, "register-trusted-proxy", "`CIDR` of a reverse proxy allowed to send X-Client-Subject to the registration listener (repeatable; none by default)")
	return r
}

func (r *registerFlags) config() (server.Registration, error) {
	out := server.Registration{Listen: *r.listen, File: *r.file}
	if out.Listen == "" {
		if out.File != "" || len(r.proxies) > 0 {
			return out, usageError("-register-config and -register-trusted-proxy need -register-listen")
		}
		return out, nil
	}
	if out.File == "" {
		return out, usageError("-register-listen needs -register-config (the per-network registration settings)")
	}
	for _, p := range r.proxies {
		pp, err := netip.ParsePrefix(strings.TrimSpace(p))
		if err != nil {
			a, aerr := netip.ParseAddr(strings.TrimSpace(p))
			if aerr != nil {
				return out, usageError("-register-trusted-proxy %q is not an address or CIDR", p)
			}
			pp = netip.PrefixFrom(a, a.BitLen())
		}
		out.TrustedProxies = append(out.TrustedProxies, pp.Masked())
	}
	return out, nil
}
