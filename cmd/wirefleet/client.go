package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/wirefleet/wirefleet/internal/api/wire"
	"github.com/wirefleet/wirefleet/internal/qrcode"
	"github.com/wirefleet/wirefleet/internal/wgquick"
)

func init() {
	register(command{name: "client", summary: "create a client with a server-generated key and print its config", run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		return subcommands{"new": runClientNew}.run(ctx, "client", args, stdout, stderr)
	}})
}

func runClientNew(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("client new", "NETWORK -name NAME [-qr] [flags]", stderr)
	api := addAPIFlags(fs)
	name := fs.String("name", "", "label of the client (required)")
	qr := fs.Bool("qr", false, "print the config as a QR code for the WireGuard mobile apps")
	out := fs.String("out", "", "write the config to this `file` (mode 0600) instead of stdout")
	var addrs stringList
	fs.Var(&addrs, "address", "static tunnel `address` (repeatable; default: allocated)")
	noPSK := fs.Bool("no-psk", false, "do not generate a preshared key")
	expires := fs.String("expires", "", "expiry: RFC 3339 time or duration from now (720h); default never")
	pos, err := api.parse(fs, args, "client new", "NETWORK")
	if err != nil {
		return err
	}
	if *name == "" {
		return usageError("client new needs -name (a label such as laptop or alice-phone)")
	}
	req := wire.ClientCreate{Name: *name, Addresses: addrs}
	if *noPSK {
		f := false
		req.PresharedKey = &f
	}
	if req.ExpiresAt, err = parseExpiry(*expires, time.Now()); err != nil {
		return err
	}
	c, err := api.client()
	if err != nil {
		return err
	}
	cl, err := c.CreateClient(ctx, pos[0], req)
	if err != nil {
		return err
	}
	if !hasEndpoint(cl.Config) {
		fmt.Fprintf(stderr, "warning: network %q has no endpoint, so this config has no Endpoint and a phone cannot connect with it: set the network's endpoint (PATCH /api/v1/networks/%s {\"endpoint\":\"HOST\"}) and create the client again\n", pos[0], pos[0])
	}
	if *out != "" {
		if err := os.WriteFile(*out, []byte(cl.Config), 0o600); err != nil {
			return fmt.Errorf("write the config (the client %s exists now; delete it with 'wirefleet peer remove %s %s' and retry): %w", *name, pos[0], cl.Peer.PublicKey, err)
		}
		fmt.Fprintf(stderr, "wrote %s for client %s (%s)\n", *out, *name, addrList(cl.Peer.Peer))
	}
	switch {
	case api.json():
		return printJSON(stdout, cl)
	case *qr:
		s, err := qrcode.Terminal(cl.Config)
		if err != nil {
			return err
		}
		fmt.Fprint(stdout, s)
	case *out == "":
		fmt.Fprint(stdout, cl.Config)
	}
	fmt.Fprintln(stderr, "the private key is shown only this once: the server does not keep it")
	return nil
}

// hasEndpoint reports whether a client config tells the client where the server is. A
// config the parser refuses is given the benefit of the doubt (no warning).
func hasEndpoint(conf string) bool {
	cfg, err := wgquick.Parse(strings.NewReader(conf))
	if err != nil {
		return true
	}
	for _, p := range cfg.Peers {
		if p.Endpoint != "" {
			return true
		}
	}
	return false
}
