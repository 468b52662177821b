package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/api/wire"
	"github.com/wirefleet/wirefleet/internal/apiclient"
)

func init() {
	register(command{name: "peer", summary: "add, list, show, remove, enable and disable peers", run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		return subcommands{
			"add": runPeerAdd, "list": runPeerList, "show": runPeerShow, "remove": runPeerRemove,
			"enable": runPeerSetEnabled(true), "disable": runPeerSetEnabled(false),
		}.run(ctx, "peer", args, stdout, stderr)
	}})
}

func runPeerAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("peer add", "NETWORK -key PUBLIC_KEY [flags]", stderr)
	api := addAPIFlags(fs)
	key := fs.String("key", "", "the peer's WireGuard public key (base64)")
	name := fs.String("name", "", "label of the peer")
	var addrs stringList
	fs.Var(&addrs, "address", "static tunnel `address` (repeatable; default: allocated)")
	psk := fs.String("psk", "", "preshared key (base64; `wg genpsk`)")
	expires := fs.String("expires", "", "expiry: RFC 3339 time or duration from now (720h); default never")
	disabled := fs.Bool("disabled", false, "create the peer disabled")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("peer add", pos, "NETWORK"); err != nil {
		return err
	}
	if err := api.validate(); err != nil {
		return err
	}
	req := wire.PeerCreate{Name: *name, Addresses: addrs}
	if req.PublicKey, err = parseKeyArg("-key", *key); err != nil {
		return err
	}
	if *psk != "" {
		k, err := parseKeyArg("-psk", *psk)
		if err != nil {
			return err
		}
		req.PresharedKey = &k
	}
	if *disabled {
		f := false
		req.Enabled = &f
	}
	if req.ExpiresAt, err = parseExpiry(*expires, time.Now()); err != nil {
		return err
	}
	c, err := api.client()
	if err != nil {
		return err
	}
	p, err := c.CreatePeer(ctx, pos[0], req)
	if err != nil {
		return err
	}
	return printPeer(stdout, api, p)
}

func runPeerList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("peer list", "NETWORK [flags]", stderr)
	api := addAPIFlags(fs)
	enabled := fs.String("enabled", "", "only enabled (true) or disabled (false) peers")
	expired := fs.String("expired", "", "only expired (true) or unexpired (false) peers")
	prefix := fs.String("name-prefix", "", "only peers whose name starts with this")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("peer list", pos, "NETWORK"); err != nil {
		return err
	}
	if err := api.validate(); err != nil {
		return err
	}
	q := apiclient.PeerQuery{NamePrefix: *prefix, Limit: 1000}
	for _, f := range []struct {
		name, v string
		out     **bool
	}{{"-enabled", *enabled, &q.Enabled}, {"-expired", *expired, &q.Expired}} {
		if f.v == "" {
			continue
		}
		b, err := strconv.ParseBool(f.v)
		if err != nil {
			return usageError("%s %q: use true or false", f.name, f.v)
		}
		*f.out = &b
	}
	c, err := api.client()
	if err != nil {
		return err
	}
	ps, err := c.ListAllPeers(ctx, pos[0], q)
	if err != nil {
		return err
	}
	if api.json() {
		return printJSON(stdout, ps)
	}
	tw := newTable(stdout)
	fmt.Fprintln(tw, "PUBLIC KEY\tNAME\tADDRESSES\tSTATE\tEXPIRES")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.PublicKey, p.Name, addrList(p.Peer), peerState(p.Peer), fmtTime(p.ExpiresAt))
	}
	return tw.Flush()
}

func addrList(p wirefleet.Peer) string {
	s := make([]string, len(p.Addresses))
	for i, a := range p.Addresses {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

func peerState(p wirefleet.Peer) string {
	switch {
	case p.Expired:
		return "expired"
	case !p.Enabled:
		return "disabled"
	default:
		return "enabled"
	}
}

func printPeer(w io.Writer, api *apiFlags, p wire.Peer) error {
	if api.json() {
		return printJSON(w, p)
	}
	tw := newTable(w)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("network", p.Network)
	row("public key", p.PublicKey.String())
	row("name", p.Name)
	row("addresses", addrList(p.Peer))
	row("state", peerState(p.Peer))
	row("preshared key", strconv.FormatBool(p.HasPresharedKey))
	row("expires", fmtTime(p.ExpiresAt))
	row("created", p.CreatedAt.UTC().Format(time.RFC3339))
	return tw.Flush()
}

func runPeerShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("peer show", "NETWORK PUBLIC_KEY [flags]", stderr)
	api := addAPIFlags(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("peer show", pos, "NETWORK", "PUBLIC_KEY"); err != nil {
		return err
	}
	if err := api.validate(); err != nil {
		return err
	}
	k, err := parseKeyArg("PUBLIC_KEY", pos[1])
	if err != nil {
		return err
	}
	c, err := api.client()
	if err != nil {
		return err
	}
	p, err := c.GetPeer(ctx, pos[0], k)
	if err != nil {
		return err
	}
	return printPeer(stdout, api, p)
}

func runPeerRemove(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("peer remove", "NETWORK PUBLIC_KEY [flags]", stderr)
	api := addAPIFlags(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("peer remove", pos, "NETWORK", "PUBLIC_KEY"); err != nil {
		return err
	}
	k, err := parseKeyArg("PUBLIC_KEY", pos[1])
	if err != nil {
		return err
	}
	c, err := api.client()
	if err != nil {
		return err
	}
	if err := c.DeletePeer(ctx, pos[0], k); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "peer %s removed from %s\n", k, pos[0])
	return nil
}

func runPeerSetEnabled(enabled bool) func(context.Context, []string, io.Writer, io.Writer) error {
	verb := "disable"
	if enabled {
		verb = "enable"
	}
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		fs := newFlagSet("peer "+verb, "NETWORK PUBLIC_KEY [flags]", stderr)
		api := addAPIFlags(fs)
		pos, err := parseInterspersed(fs, args)
		if err != nil {
			return err
		}
		if err := wantArgs("peer "+verb, pos, "NETWORK", "PUBLIC_KEY"); err != nil {
			return err
		}
		if err := api.validate(); err != nil {
			return err
		}
		k, err := parseKeyArg("PUBLIC_KEY", pos[1])
		if err != nil {
			return err
		}
		c, err := api.client()
		if err != nil {
			return err
		}
		p, err := c.SetPeerEnabled(ctx, pos[0], k, enabled)
		if err != nil {
			return err
		}
		return printPeer(stdout, api, p)
	}
}
