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
	if ss == nil {
		ss = []wire.Session{} // JSON: [], not null
	}
	// The table: one line per session, newest first as the server sorts them.
	return api.print(stdout, ss, func(tw io.Writer) {
		row(tw, "NETWORK", "PEER", "GATEWAY", "START", "LAST SEEN", "END", "RX", "TX")
		for _, s := range ss {
			network, peer := s.Network, s.PublicKey.String()
			if s.Protocol == "openvpn" {
				network, peer = "(openvpn)", "cn:"+s.CommonName
			}
			end := "open"
			if s.End != nil {
				end = fmtTime(s.End)
			}
			row(tw, network, peer, s.Gateway, fmtTime(&s.Start), fmtTime(&s.LastSeen), end, fmtBytes(s.RxBytes), fmtBytes(s.TxBytes))
		}
	})
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
