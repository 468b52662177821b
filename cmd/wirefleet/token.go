package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/api/wire"
	"github.com/wirefleet/wirefleet/internal/control"
	"github.com/wirefleet/wirefleet/internal/server"
)

func init() {
	register(command{name: "token", summary: "create, list and revoke API tokens", run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		return subcommands{"create": runTokenCreate, "list": runTokenList, "revoke": runTokenRevoke}.run(ctx, "token", args, stdout, stderr)
	}})
}

func runTokenCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("token create", "[-data DIR] -role ROLE [-network NAME] [flags]", stderr)
	api := addAPIFlags(fs)
	data := fs.String("data", "", "create the token offline in the store of this data `directory` (bootstrap; no server needed)")
	var roles, networks stringList
	fs.Var(&roles, "role", "`role` of the token: admin, operator, viewer, gateway, follower, registrar (repeatable)")
	fs.Var(&networks, "network", "limit the token to this `network` (repeatable; default all)")
	name := fs.String("name", "", "label of the token")
	expires := fs.String("expires", "", "expiry: RFC 3339 time or duration from now (720h); default never")
	_, err := api.parse(fs, args, "token create")
	if err != nil {
		return err
	}
	if len(roles) == 0 {
		return usageError("token create needs at least one -role (admin, operator, viewer, gateway, follower, registrar)")
	}
	in := control.TokenInput{Name: *name, Networks: networks}
	for _, r := range roles {
		role, err := wirefleet.ParseRole(r)
		if err != nil {
			return usageError("-role: %v", err)
		}
		in.Roles = append(in.Roles, role)
	}
	if in.ExpiresAt, err = parseExpiry(*expires, time.Now()); err != nil {
		return err
	}
	var created wire.TokenCreated
	if *data != "" {
		// Offline: the store's own log goes to stderr only on warnings, stdout gets the secret.
		log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		created.Token, created.Secret, err = server.CreateTokenOffline(ctx, *data, in, log)
	} else {
		c, cerr := api.client()
		if cerr != nil {
			return cerr
		}
		created, err = c.CreateToken(ctx, wire.TokenCreate{Name: in.Name, Roles: in.Roles, Networks: in.Networks, ExpiresAt: in.ExpiresAt})
	}
	if err != nil {
		return err
	}
	if api.json() {
		return printJSON(stdout, created)
	}
	// Only the secret on stdout, so that scripts can do TOKEN=$(wirefleet token create …).
	fmt.Fprintln(stdout, created.Secret)
	return nil
}

func runTokenList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("token list", "[flags]", stderr)
	api := addAPIFlags(fs)
	_, err := api.parse(fs, args, "token list")
	if err != nil {
		return err
	}
	c, err := api.client()
	if err != nil {
		return err
	}
	ts, err := c.ListTokens(ctx)
	if err != nil {
		return err
	}
	return api.print(stdout, ts, func(tw io.Writer) {
		row(tw, "ID", "NAME", "ROLES", "NETWORKS", "EXPIRES", "LAST USED")
		for _, t := range ts {
			roles := make([]string, len(t.Roles))
			for i, r := range t.Roles {
				roles[i] = string(r)
			}
			scope := "all"
			if len(t.Networks) > 0 {
				scope = strings.Join(t.Networks, ",")
			}
			row(tw, t.ID, t.Name, strings.Join(roles, ","), scope, fmtTime(t.ExpiresAt), fmtTime(t.LastUsedAt))
		}
	})
}

func runTokenRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("token revoke", "ID [flags]", stderr)
	api := addAPIFlags(fs)
	pos, err := positionals(fs, args, "token revoke", "ID")
	if err != nil {
		return err
	}
	c, err := api.client()
	if err != nil {
		return err
	}
	if err := c.RevokeToken(ctx, pos[0]); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "token %s revoked\n", pos[0])
	return nil
}
