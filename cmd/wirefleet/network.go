package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/api/wire"
)

func init() {
	register(command{name: "network", summary: "create, list, show, delete and import networks", run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		return subcommands{
			"create": runNetworkCreate, "list": runNetworkList, "show": runNetworkShow,
			"delete": runNetworkDelete, "import": runNetworkImport,
		}.run(ctx, "network", args, stdout, stderr)
	}})
}

func runNetworkCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("network create", "NAME -ipv4 CIDR [-ipv6 CIDR] [flags]", stderr)
	api := addAPIFlags(fs)
	var req wire.NetworkCreate
	fs.StringVar(&req.IPv4, "ipv4", "", "the network's own IPv4 address with prefix (198.51.100.1/24)")
	fs.StringVar(&req.IPv6, "ipv6", "", "the network's own IPv6 address with prefix (2001:db8:1::1/64)")
	fs.StringVar(&req.Endpoint, "endpoint", "", "host name or IP address clients dial")
	port := fs.Int("port", 0, "WireGuard listen port (default 51820)")
	var routes, dns stringList
	fs.Var(&routes, "route", "`CIDR` pushed to clients as AllowedIPs (repeatable; default the network prefixes)")
	fs.Var(&dns, "dns", "DNS server `address` pushed to clients (repeatable)")
	fs.IntVar(&req.MTU, "mtu", 0, "MTU (default 1420)")
	keepalive := fs.Int("keepalive", -1, "PersistentKeepalive `seconds` pushed to clients: 0 disables, -1 keeps the server default of 25")
	fs.StringVar(&req.Allocation, "allocation", "", "address allocation: sequential (default) or random")
	pos, err := api.parse(fs, args, "network create", "NAME")
	if err != nil {
		return err
	}
	req.Name, req.Routes, req.DNS = pos[0], routes, dns
	if *port < 0 || *port > 65535 {
		return usageError("-port %d: use 1-65535", *port)
	}
	req.ListenPort = uint16(*port)
	if *keepalive >= 0 {
		req.Keepalive = keepalive
	}
	c, err := api.client()
	if err != nil {
		return err
	}
	n, err := c.CreateNetwork(ctx, req)
	if err != nil {
		return err
	}
	return printNetwork(stdout, api, n)
}

func runNetworkList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("network list", "[flags]", stderr)
	api := addAPIFlags(fs)
	_, err := api.parse(fs, args, "network list")
	if err != nil {
		return err
	}
	c, err := api.client()
	if err != nil {
		return err
	}
	ns, err := c.ListNetworks(ctx)
	if err != nil {
		return err
	}
	return api.print(stdout, ns, func(tw io.Writer) {
		row(tw, "NAME", "PORT", "IPV4", "IPV6", "ENDPOINT", "PUBLIC KEY")
		for _, n := range ns {
			row(tw, n.Name, strconv.Itoa(int(n.ListenPort)), orDash(n.IPv4.String(), n.IPv4.IsValid()),
				orDash(n.IPv6.String(), n.IPv6.IsValid()), orDash(n.Endpoint, n.Endpoint != ""), n.PublicKey.String())
		}
	})
}

func orDash(s string, ok bool) string {
	if !ok {
		return "-"
	}
	return s
}

func runNetworkShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("network show", "NAME [flags]", stderr)
	api := addAPIFlags(fs)
	pos, err := api.parse(fs, args, "network show", "NAME")
	if err != nil {
		return err
	}
	c, err := api.client()
	if err != nil {
		return err
	}
	n, err := c.GetNetwork(ctx, pos[0])
	if err != nil {
		return err
	}
	return printNetwork(stdout, api, n)
}

func printNetwork(w io.Writer, api *apiFlags, n wirefleet.Network) error {
	return api.print(w, n, func(tw io.Writer) {
		row(tw, "name", n.Name)
		row(tw, "public key", n.PublicKey.String())
		row(tw, "listen port", strconv.Itoa(int(n.ListenPort)))
		row(tw, "ipv4", orDash(n.IPv4.String(), n.IPv4.IsValid()))
		row(tw, "ipv6", orDash(n.IPv6.String(), n.IPv6.IsValid()))
		row(tw, "endpoint", orDash(n.Endpoint, n.Endpoint != ""))
		var routes []string
		for _, r := range n.ClientRoutes() {
			routes = append(routes, r.String())
		}
		row(tw, "client routes", strings.Join(routes, ", "))
		var dns []string
		for _, d := range n.DNS {
			dns = append(dns, d.String())
		}
		row(tw, "dns", orDash(strings.Join(dns, ", "), len(dns) > 0))
		row(tw, "mtu", strconv.Itoa(n.MTU))
		row(tw, "keepalive", strconv.Itoa(n.Keepalive)+"s")
		row(tw, "allocation", string(n.Allocation))
		row(tw, "created", n.CreatedAt.UTC().Format("2006-01-02 15:04:05Z"))
	})
}

func runNetworkDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("network delete", "NAME [flags]", stderr)
	api := addAPIFlags(fs)
	pos, err := positionals(fs, args, "network delete", "NAME")
	if err != nil {
		return err
	}
	c, err := api.client()
	if err != nil {
		return err
	}
	if err := c.DeleteNetwork(ctx, pos[0]); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "network %s deleted with its peers\n", pos[0])
	return nil
}
