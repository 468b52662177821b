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
	pos, err := api.parse(fs, args, "peer add", "NETWORK")
	if err != nil {
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
	pos, err := api.parse(fs, args, "peer list", "NETWORK")
	if err != nil {
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
	return api.print(stdout, ps, func(tw io.Writer) {
		row(tw, "PUBLIC KEY", "NAME", "ADDRESSES", "STATE", "EXPIRES")
		for _, p := range ps {
			row(tw, p.PublicKey.String(), p.Name, addrList(p.Peer), peerState(p.Peer), fmtTime(p.ExpiresAt))
		}
	})
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
	return api.print(w, p, func(tw io.Writer) {
		row(tw, "network", p.Network)
		row(tw, "public key", p.PublicKey.String())
		row(tw, "name", p.Name)
		row(tw, "addresses", addrList(p.Peer))
		row(tw, "state", peerState(p.Peer))
		row(tw, "preshared key", strconv.FormatBool(p.HasPresharedKey))
		row(tw, "expires", fmtTime(p.ExpiresAt))
		row(tw, "created", p.CreatedAt.UTC().Format(time.RFC3339))
	})
}

// peerRef is what "peer show|remove|enable|disable NETWORK PUBLIC_KEY" act on.
type peerRef struct {
	api     *apiFlags
	c       *apiclient.Client
	network string
	key     wirefleet.Key
}

// parsePeerRef parses the flags and arguments of such a command (checking -o when the
// command prints a peer) and connects to the API.
func parsePeerRef(cmd string, args []string, stderr io.Writer, prints bool) (peerRef, error) {
	fs := newFlagSet(cmd, "NETWORK PUBLIC_KEY [flags]", stderr)
	ref := peerRef{api: addAPIFlags(fs)}
	parse := positionals
	if prints {
		parse = ref.api.parse
	}
	pos, err := parse(fs, args, cmd, "NETWORK", "PUBLIC_KEY")
	if err != nil {
		return ref, err
	}
	ref.network = pos[0]
	if ref.key, err = parseKeyArg("PUBLIC_KEY", pos[1]); err != nil {
		return ref, err
	}
	ref.c, err = ref.api.client()
	return ref, err
}

func runPeerShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	ref, err := parsePeerRef("peer show", args, stderr, true)
	if err != nil {
		return err
	}
	p, err := ref.c.GetPeer(ctx, ref.network, ref.key)
	if err != nil {
		return err
	}
	return printPeer(stdout, ref.api, p)
}

func runPeerRemove(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	ref, err := parsePeerRef("peer remove", args, stderr, false)
	if err != nil {
		return err
	}
	if err := ref.c.DeletePeer(ctx, ref.network, ref.key); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "peer %s removed from %s\n", ref.key, ref.network)
	return nil
}

func runPeerSetEnabled(enabled bool) func(context.Context, []string, io.Writer, io.Writer) error {
	verb := "disable"
	if enabled {
		verb = "enable"
	}
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		ref, err := parsePeerRef("peer "+verb, args, stderr, true)
		if err != nil {
			return err
		}
		p, err := ref.c.SetPeerEnabled(ctx, ref.network, ref.key, enabled)
		if err != nil {
			return err
		}
		return printPeer(stdout, ref.api, p)
	}
}
