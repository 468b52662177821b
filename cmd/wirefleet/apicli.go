package main

// Shared plumbing of the admin commands that talk to the REST API (network, peer, client,
// token): the connection flags, output formats and sub-command dispatch.

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wirefleet/wirefleet"
	"github.com/wirefleet/wirefleet/internal/apiclient"
)

// apiFlags are the connection and output flags of every API command.
type apiFlags struct {
	server, token, output  *string
	tlsCA, tlsCert, tlsKey *string
}

func addAPIFlags(fs *flag.FlagSet) *apiFlags {
	return &apiFlags{
		server: fs.String("server", envDefault("WIREFLEET_SERVER", "http://127.0.0.1:8080"), "`URL` of the control plane [WIREFLEET_SERVER]"),
		// Not envDefault: -h prints flag defaults, and this one is a secret.
		token:   fs.String("token", "", "bearer token secret (wft_…) [WIREFLEET_TOKEN]"),
		output:  fs.String("o", "table", "output format: table or json"),
		tlsCA:   fs.String("tls-ca", envDefault("WIREFLEET_TLS_CA", ""), "CA `file` to verify an https server [WIREFLEET_TLS_CA]"),
		tlsCert: fs.String("tls-cert", envDefault("WIREFLEET_TLS_CERT", ""), "client certificate `file` for mTLS [WIREFLEET_TLS_CERT]"),
		tlsKey:  fs.String("tls-key", envDefault("WIREFLEET_TLS_KEY", ""), "client key `file` for mTLS [WIREFLEET_TLS_KEY]"),
	}
}

func (a *apiFlags) validate() error {
	if *a.output != "table" && *a.output != "json" {
		return usageError("-o %q: use table or json", *a.output)
	}
	return nil
}

func (a *apiFlags) json() bool { return *a.output == "json" }

func (a *apiFlags) client() (*apiclient.Client, error) {
	token := *a.token
	if token == "" {
		token = os.Getenv("WIREFLEET_TOKEN")
	}
	c, err := apiclient.New(*a.server, apiclient.Options{
		Token: token, CAFile: *a.tlsCA, CertFile: *a.tlsCert, KeyFile: *a.tlsKey,
	})
	if err != nil {
		return nil, usageError("%v", err)
	}
	return c, nil
}

// parseInterspersed parses flags that may come before, between or after the positional
// arguments (wirefleet client new office --name laptop) and returns the positionals.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// subcommands dispatches "wirefleet NAME SUB args…".
type subcommands map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) error

func (s subcommands) run(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	names := make([]string, 0, len(s))
	for n := range s {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		fmt.Fprintf(stderr, "Usage: wirefleet %s <%s> [flags]\nRun 'wirefleet %s <subcommand> -h' for its flags.\n", name, strings.Join(names, "|"), name)
		if len(args) == 0 {
			return usageError("%s needs a subcommand: %s", name, strings.Join(names, ", "))
		}
		return flag.ErrHelp
	}
	f, ok := s[args[0]]
	if !ok {
		return usageError("%s: unknown subcommand %q (use %s)", name, args[0], strings.Join(names, ", "))
	}
	return f(ctx, args[1:], stdout, stderr)
}

// wantArgs checks the number of positional arguments.
func wantArgs(cmd string, pos []string, names ...string) error {
	if len(pos) != len(names) {
		return usageError("%s takes %d argument(s) (%s), got %d: %q", cmd, len(names), strings.Join(names, " "), len(pos), pos)
	}
	return nil
}

// positionals parses the flags of cmd wherever they stand and returns its positional
// arguments, which must be exactly names (usage errors otherwise).
func positionals(fs *flag.FlagSet, args []string, cmd string, names ...string) ([]string, error) {
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, err
	}
	if err := wantArgs(cmd, pos, names...); err != nil {
		return nil, err
	}
	return pos, nil
}

// parse is positionals for a command that prints a result: it also checks -o. (Commands
// that only report on stderr, such as delete, ignore -o and do not call it.)
func (a *apiFlags) parse(fs *flag.FlagSet, args []string, cmd string, names ...string) ([]string, error) {
	pos, err := positionals(fs, args, cmd, names...)
	if err != nil {
		return nil, err
	}
	return pos, a.validate()
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

// print writes v as JSON with -o json; otherwise table writes the rows of an aligned table.
func (a *apiFlags) print(w io.Writer, v any, table func(tw io.Writer)) error {
	if a.json() {
		return printJSON(w, v)
	}
	tw := newTable(w)
	table(tw)
	return tw.Flush()
}

// row writes one table row: the cells separated by tabs.
func row(tw io.Writer, cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")) }

// parseExpiry reads --expires: an RFC 3339 time or a duration from now (720h).
func parseExpiry(s string, now time.Time) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return nil, usageError("-expires %q: the duration must be positive", s)
		}
		t := now.Add(d)
		return &t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return nil, usageError("-expires %q: give an RFC 3339 time (2026-12-31T23:59:00Z) or a duration (720h)", s)
	}
	return &t, nil
}

func parseKeyArg(what, s string) (wirefleet.Key, error) {
	k, err := wirefleet.ParseKey(s)
	if err != nil {
		return k, usageError("%s: %v", what, err)
	}
	return k, nil
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}
