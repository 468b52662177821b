package main

import (
	"context"
	"fmt"
	"io"

	"github.com/wirefleet/wirefleet/internal/api/wire"
	"github.com/wirefleet/wirefleet/internal/apiclient"
)

func init() {
	register(command{name: "session", summary: "list peers' sessions (connections) seen by the gateways", run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		return subcommands{"list": runSessionList}.run(ctx, "session", args, stdout, stderr)
	}})
}

func runSessionList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("session list", "[NETWORK] [-peer KEY] [-open] [flags]", stderr)
	api := addAPIFlags(fs)
	peer := fs.String("peer", "", "only the sessions of this peer (public key, base64)")
	open := fs.Bool("open", false, "only open sessions")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usageError("session list takes at most 1 argument (NETWORK), got %d: %q", len(pos), pos)
	}
	if err := api.validate(); err != nil {
		return err
	}
	var q apiclient.SessionQuery
	if len(pos) == 1 {
		q.Network = pos[0]
	}
	if *peer != "" {
		k, err := parseKeyArg("-peer", *peer)
		if err != nil {
			return err
		}
		q.PublicKey = &k
	}
	if *open {
		q.State = "open"
	}
	c, err := api.client()
	if err != nil {
		return err
	}
	ss, err := c.ListSessions(ctx, q)
	if err != nil {
		return err
	}
	if api.json() {
		if ss == nil {
			ss = []wire.Session{}
		}
		return printJSON(stdout, ss)
	}
	return printSessions(stdout, ss)
}

// printSessions renders the session table: one line per session, newest first as the
// server sorts them.
func printSessions(w io.Writer, ss []wire.Session) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "NETWORK\tPEER\tGATEWAY\tSTART\tLAST SEEN\tEND\tRX\tTX")
	for _, s := range ss {
		network, peer := s.Network, s.PublicKey.String()
		if s.Protocol == "openvpn" {
			network, peer = "(openvpn)", "cn:"+s.CommonName
		}
		end := "open"
		if s.End != nil {
			end = fmtTime(s.End)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", network, peer, s.Gateway, fmtTime(&s.Start), fmtTime(&s.LastSeen), end, fmtBytes(s.RxBytes), fmtBytes(s.TxBytes))
	}
	return tw.Flush()
}

// fmtBytes renders a byte count with binary units (1.5 MiB).
func fmtBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

