package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strconv"

	"github.com/wirefleet/wirefleet/internal/autowg"
)

func init() {
	register(command{
		name:    "autowg",
		summary: "autowg-compatible zero-touch registration server for an existing WireGuard interface",
		run:     runAutowg,
	})
}

func runAutowg(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	def := autowg.Default()
	fs := newFlagSet("autowg", "--pool PREFIX --route PREFIX --endpoint HOST [flags] INTERFACE", stderr)
	pool := fs.String("pool", envDefault("AUTOWG_POOL", ""), "IPv6 `prefix` to assign to clients [AUTOWG_POOL]")
	route := fs.String("route", envDefault("AUTOWG_ROUTE", ""), "IPv6 `prefix` pushed to clients as their route [AUTOWG_ROUTE]")
	endpoint := fs.String("endpoint", envDefault("AUTOWG_ENDPOINT", ""), "WireGuard endpoint `host` (the port is the interface's) [AUTOWG_ENDPOINT]")
	host := fs.String("http-host", envDefault("AUTOWG_HTTP_HOST", ""), "HTTP `address` to listen on; empty: every address [AUTOWG_HTTP_HOST]")
	port := fs.String("http-port", envDefault("AUTOWG_HTTP_PORT", strconv.Itoa(def.HTTPPort)), "HTTP `port` [AUTOWG_HTTP_PORT]")
	prefix := fs.String("http-prefix", envDefault("AUTOWG_HTTP_PREFIX", def.HTTPPrefix), "URL `prefix` of v1/register and v1/peers.json [AUTOWG_HTTP_PREFIX]")
	pattern := fs.String("cn-pattern", envDefault("AUTOWG_CN_PATTERN", def.CNPattern), "`regex` extracting the peer name (group 1) from the start of the CN [AUTOWG_CN_PATTERN]")
	conv := fs.String("converter", envDefault("AUTOWG_CONVERTER", def.Converter), "name-to-IP converter: direct-bcd, metans or sequential [AUTOWG_CONVERTER]")
	tmpl := fs.String("metans-template", envDefault("AUTOWG_METANS_TEMPLATE", ""), "metans name `template` with one %s (default %s) [AUTOWG_METANS_TEMPLATE]")
	var proxies stringList
	fs.Var(&proxies, "trusted-proxy", "`CIDR` of a reverse proxy allowed to send X-Client-Subject (repeatable; loopback is trusted unless --no-trust-loopback)")
	noLoop := fs.Bool("no-trust-loopback", false, "do not trust X-Client-Subject from loopback")
	tlsCert := fs.String("tls-cert", envDefault("AUTOWG_TLS_CERT", ""), "serve HTTPS with this certificate `file` (for direct mTLS) [AUTOWG_TLS_CERT]")
	tlsKey := fs.String("tls-key", envDefault("AUTOWG_TLS_KEY", ""), "private key `file` of --tls-cert [AUTOWG_TLS_KEY]")
	var cas stringList
	fs.Var(&cas, "client-ca", "PEM `file` of the CA that signs device certificates (repeatable; direct mTLS, needs --tls-cert)")
	crl := fs.String("crl", envDefault("AUTOWG_CRL", ""), "certificate revocation list `file` (PEM or DER) of the client CA, re-read when it changes [AUTOWG_CRL]")
	data := fs.String("data", envDefault("WIREFLEET_DATA", ""), "keep registrations in this `DIR` across restarts; empty: a temporary store, as upstream [WIREFLEET_DATA]")
	restListen := fs.String("rest-listen", envDefault("REST_LISTEN", ""), "also serve the Wirefleet REST API (/api/v1) on this `host:port` (an admin token is printed on first start) [REST_LISTEN]")
	network := fs.String("network", envDefault("WIREFLEET_NETWORK", ""), "Wirefleet network `name`; empty: the interface name [WIREFLEET_NETWORK]")

	// Like upstream's argparse, the interface may stand before, between or after the flags.
	var positional []string
	rest := args
	for {
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(positional) != 1 {
		fs.Usage()
		return usageError("autowg needs exactly one WireGuard interface, got %q", positional)
	}
	p, err := strconv.Atoi(*port)
	if err != nil {
		return usageError("--http-port %q is not a number", *port)
	}
	cfg := def
	cfg.Interface, cfg.Pool, cfg.Route, cfg.Endpoint = positional[0], *pool, *route, *endpoint
	cfg.HTTPHost, cfg.HTTPPort, cfg.HTTPPrefix = *host, p, *prefix
	cfg.CNPattern, cfg.Converter, cfg.MetansTemplate = *pattern, *conv, *tmpl
	cfg.TrustedProxies, cfg.NoTrustLoopback = proxies, *noLoop
	cfg.TLSCert, cfg.TLSKey, cfg.ClientCAFiles, cfg.CRLFile = *tlsCert, *tlsKey, cas, *crl
	cfg.DataDir, cfg.Network, cfg.RESTListen = *data, *network, *restListen
	// Upstream's monitoring credentials come from the environment only (a password on a
	// command line is visible in the process list).
	cfg.HTTPAuth = os.Getenv("HTTP_AUTH")
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	cfg.Stdout = stdout
	if err := cfg.Validate(); err != nil {
		return usageError("%v", err)
	}
	return autowg.Run(ctx, cfg)
}
